"""`python -m benchmarks`: runs the benchmarks, prints tables, writes JSON and docs.

python -m benchmarks            # full, about an hour; writes docs/benchmarks.md
python -m benchmarks --quick    # about 4 minutes, smaller sizes
python -m benchmarks --tiny     # seconds per section, for the smoke test
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf

from benchmarks import (
    backends,
    equalized_lr,
    machine,
    memory,
    operator_norm,
    pixel_norm,
    report,
    rewrite_cost,
    sigma_accuracy,
    sn_cost,
)
from benchmarks.config import CONFIGS

ROOT = pathlib.Path(__file__).resolve().parent.parent
SECTIONS = {
    "sn_cost": sn_cost,
    "pixel_norm": pixel_norm,
    "sigma_accuracy": sigma_accuracy,
    "rewrite_cost": rewrite_cost,
    "memory": memory,
    "backends": backends,
    "equalized_lr": equalized_lr,
    "operator_norm": operator_norm,
}
DOCS_COMMAND = "TF_CPP_MIN_LOG_LEVEL=3 python -m benchmarks"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--quick", action="store_true", help="smaller sizes, about 4 minutes"
    )
    size.add_argument(
        "--tiny", action="store_true", help="tiny sizes, for the smoke test"
    )
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated sections to run (default: all of {', '.join(SECTIONS)})",
    )
    parser.add_argument(
        "--flavors", help="comma-separated Kerases: keras3, tf_keras (default: both)"
    )
    parser.add_argument(
        "--json",
        type=pathlib.Path,
        help="JSON output (default: benchmarks/results/MODE.json)",
    )
    parser.add_argument(
        "--docs",
        type=pathlib.Path,
        help="markdown output (default: docs/benchmarks.md for a full run of "
        "every section, none otherwise)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    """Runs the chosen sections; returns what was written to the JSON file."""
    args = parse_args(argv)
    tf.get_logger().setLevel("ERROR")
    config = CONFIGS["quick" if args.quick else "tiny" if args.tiny else "full"]
    if args.flavors:
        config = dataclasses.replace(config, flavors=tuple(args.flavors.split(",")))
    chosen = args.sections.split(",")
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        sys.exit(f"Unknown sections {unknown}; choose from {list(SECTIONS)}")
    sections = []
    counters = machine.cpu_counters()
    for key in chosen:
        start = time.perf_counter()
        section = SECTIONS[key].run(config)
        report.print_section(section)
        print(f"({key}: {time.perf_counter() - start:.0f} s)", flush=True)
        sections.append(section)
    description = {**machine.describe(), **machine.load_since(counters)}
    results = report.to_json(sections, description, dataclasses.asdict(config))
    json_path = args.json or ROOT / "benchmarks" / "results" / f"{config.mode}.json"
    report.write_json(json_path, results)
    print(f"\nWrote {json_path}")
    docs_path = args.docs
    if docs_path is None and config.mode == "full" and chosen == list(SECTIONS):
        docs_path = ROOT / "docs" / "benchmarks.md"
    if docs_path is not None:
        # The page names the command that made it: a --quick page says so.
        command = " ".join(
            [DOCS_COMMAND, *(argv if argv is not None else sys.argv[1:])]
        )
        docs_path.write_text(report.markdown(sections, description, command))
        print(f"Wrote {docs_path}")
    return results


if __name__ == "__main__":
    main()
