"""Section 5: peak memory, each case in a fresh Python process.

`python -m benchmarks.memory CASE FLAVOR MODE` runs one case and prints a
JSON line with the process's peak resident set size; `run` starts one such
process per case.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from benchmarks.config import CONFIGS, Config
from benchmarks.report import Section, Table, Target

CASES = {
    "clone": "clone_model + set_weights",
    "apply": "apply_normalization",
    "train_none": "train steps, no normalization",
    "train_sn": "train steps, kerasnorm SN constraint",
}


def _resident_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def measure(case: str, flavor: str, config: Config) -> dict:
    """Runs `case` in this process; returns resident memory before and at peak."""
    import kerasnorm
    from benchmarks import models, sn_cost, training
    from benchmarks.rewrite_cost import normalize

    if case in ("clone", "apply"):
        if config.memory_model == "chain":
            model = models.dense_chain(flavor, config.chain_lengths[-1])
        else:
            model = models.application(flavor, config.memory_model)
        before = _resident_mb()
        normalize(model) if case == "apply" else models.clone_with_weights(model)
    else:
        model = models.dcgan_discriminator(
            flavor, config.image_size, config.discriminator_widths
        )
        if case == "train_sn":
            model = kerasnorm.apply_normalization(model, "sngan", role="discriminator")
        real, fake = sn_cost.batches(config)
        step = training.blocking(training.discriminator_step(model, flavor), real, fake)
        before = _resident_mb()
        for _ in range(config.memory_steps):
            step()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"before_mb": before, "peak_mb": peak}


def measure_in_subprocess(case: str, flavor: str, config: Config) -> dict:
    """`measure` in a fresh interpreter, so no earlier case inflates the peak."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory", case, flavor, config.mode],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def run(config: Config) -> Section:
    model = (
        f"a chain of {config.chain_lengths[-1]} Dense layers"
        if config.memory_model == "chain"
        else config.memory_model
    )
    section = Section(
        "memory",
        "5. Peak memory",
        "Peak resident set size (`resource.getrusage`) of a fresh process per "
        f"case: rewriting {model} with `apply_normalization` against "
        f"`clone_model` + `set_weights`, and {config.memory_steps} train steps "
        "of the section-1 discriminator with and without kerasnorm's SN "
        "constraint. The ratio is of whole-process peaks (TensorFlow's own "
        "footprint included); the growth column is the peak over the resident "
        "size just before the measured work.",
    )
    rows = []
    for flavor in config.flavors:
        # Two processes at a time: peak memory does not depend on CPU contention.
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = {
                case: pool.submit(measure_in_subprocess, case, flavor, config)
                for case in CASES
            }
        results = {case: future.result() for case, future in futures.items()}
        section.data[flavor] = results
        for case, description in CASES.items():
            peak, before = results[case]["peak_mb"], results[case]["before_mb"]
            rows.append([flavor, description, peak, peak - before])
        rewrite = results["apply"]["peak_mb"] / results["clone"]["peak_mb"]
        train = results["train_sn"]["peak_mb"] / results["train_none"]["peak_mb"]
        section.targets += [
            Target(f"peak memory, rewrite over clone ({flavor})", rewrite, 1.0),
            Target(
                f"peak memory, training with SN over without ({flavor})", train, 1.05
            ),
        ]
    section.tables.append(
        Table(
            "Peak resident memory", ["Keras", "case", "peak (MB)", "growth (MB)"], rows
        )
    )
    return section


if __name__ == "__main__":
    case_name, flavor_name, mode = sys.argv[1:4]
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    print(json.dumps(measure(case_name, flavor_name, CONFIGS[mode])))
