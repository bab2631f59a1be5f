"""Section 5: peak memory, each case in a fresh Python process.

`python -m benchmarks.memory CASE FLAVOR MODE` runs one case and prints a
JSON line with its resident memory just before the measured work and at its
peak during it; `run` starts one such process per case.

The peak is Linux's high-water mark of the resident set (`VmHWM` in
/proc/self/status), reset just before the work by writing 5 to
/proc/self/clear_refs. The mark belongs to the address space, which exec
replaces; `getrusage`'s `ru_maxrss` outlives exec: on this machine, a child
started by a parent holding 1 GB read 1051 MB there and 13 MB in `VmHWM`.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from benchmarks.config import CONFIGS, Config
from benchmarks.report import Section, Table, Target

# The calibration case holds an array of this size on top of the clone's work.
BALLAST_MB = 256
CASES = {
    "clone": "clone_model + set_weights",
    "apply": "apply_normalization",
    "train_none": "train steps, no normalization",
    "train_sn": "train steps, kerasnorm SN constraint",
    "calibration": f"calibration: clone_model + set_weights + {BALLAST_MB} MB array",
}


def _status_mb(field: str) -> float:
    """A memory field of /proc/self/status (`VmRSS`, `VmHWM`), in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> None:
    """Sets `VmHWM` to the current resident size (Linux 4.0 and later)."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def _touched_array(megabytes: int):
    """An array of `megabytes` MB with every page written, so all are resident."""
    import numpy as np

    array = np.empty(megabytes * 2**20, np.uint8)
    array[:: resource.getpagesize()] = 1
    return array


def measure(case: str, flavor: str, config: Config) -> dict:
    """Runs `case` in this process; returns resident memory before and at peak."""
    import kerasnorm
    from benchmarks import models, sn_cost, training
    from benchmarks.rewrite_cost import normalize

    # The calibration case's array, held until the peak is read.
    ballast = None
    if case in ("clone", "apply", "calibration"):
        if config.memory_model == "chain":
            model = models.dense_chain(flavor, config.chain_lengths[-1])
        else:
            model = models.application(flavor, config.memory_model)
        before = _status_mb("VmRSS")
        _reset_peak()
        if case == "calibration":
            ballast = _touched_array(BALLAST_MB)
        normalize(model) if case == "apply" else models.clone_with_weights(model)
    else:
        model = models.dcgan_discriminator(
            flavor, config.image_size, config.discriminator_widths
        )
        if case == "train_sn":
            model = kerasnorm.apply_normalization(model, "sngan", role="discriminator")
        real, fake = sn_cost.batches(config)
        step = training.blocking(training.discriminator_step(model, flavor), real, fake)
        before = _status_mb("VmRSS")
        _reset_peak()
        for _ in range(config.memory_steps):
            step()
    peak = _status_mb("VmHWM")
    del ballast
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


def _median_run(runs: list[dict]) -> dict:
    """The medians of the peak and of the growth over runs of one case,
    with every run's readings."""
    growths = [run["peak_mb"] - run["before_mb"] for run in runs]
    return {
        "peak_mb": statistics.median(run["peak_mb"] for run in runs),
        "growth_mb": statistics.median(growths),
        "runs": runs,
    }


def run(config: Config) -> Section:
    model = (
        f"a chain of {config.chain_lengths[-1]} Dense layers"
        if config.memory_model == "chain"
        else config.memory_model
    )
    section = Section(
        "memory",
        "5. Peak memory",
        f"Each case runs {config.memory_runs} times, each time in a fresh "
        "process, which builds what the case needs, "
        "then resets Linux's high-water mark of its resident set (writing 5 to "
        "`/proc/self/clear_refs`) and does the measured work: rewriting "
        f"{model} with `apply_normalization`, or `clone_model` + "
        f"`set_weights`; {config.memory_steps} train steps of the section-1 "
        "discriminator (the first one traces) with and without kerasnorm's SN "
        "constraint. The peak is the mark after the work (`VmHWM` in "
        "`/proc/self/status`): the largest resident size during the work, "
        "TensorFlow's own footprint and the model included; the growth is the "
        "peak over the resident size just before the work, and the targets "
        "are ratios of peaks. The table shows each case's median peak and "
        "median growth over its processes, whose peaks differ by tens of MB. "
        "(`getrusage`'s `ru_maxrss` cannot be used: a "
        "process started by fork/exec keeps its parent's peak there.) The "
        f"calibration case is the clone's work with a {BALLAST_MB} MB array "
        "allocated first, every page written and held to the end: the probe "
        f"must read about {BALLAST_MB} MB more than for the clone.",
    )
    rows, notes = [], []
    for flavor in config.flavors:
        # Two processes at a time: peak memory does not depend on CPU
        # contention. Submitted case after case, run after run, so that a
        # drift of the machine during the section reaches every case alike.
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = [
                (case, pool.submit(measure_in_subprocess, case, flavor, config))
                for _ in range(config.memory_runs)
                for case in CASES
            ]
        results = {
            case: _median_run([run.result() for name, run in futures if name == case])
            for case in CASES
        }
        for case, description in CASES.items():
            peak, growth = results[case]["peak_mb"], results[case]["growth_mb"]
            rows.append([flavor, description, peak, growth])
        extra = results["calibration"]["peak_mb"] - results["clone"]["peak_mb"]
        results["calibration_extra_mb"] = extra
        section.data[flavor] = results
        notes.append(
            f"{flavor}: the calibration case read {extra:.1f} MB more than the "
            f"clone for the {BALLAST_MB} MB array."
        )
        rewrite = results["apply"]["peak_mb"] / results["clone"]["peak_mb"]
        train = results["train_sn"]["peak_mb"] / results["train_none"]["peak_mb"]
        section.targets += [
            Target(f"peak memory, rewrite over clone ({flavor})", rewrite, 1.0),
            Target(
                f"peak memory, training with SN over without ({flavor})", train, 1.05
            ),
            Target(
                f"memory probe: calibration reading and {BALLAST_MB} MB, larger "
                f"over smaller ({flavor})",
                max(extra, BALLAST_MB) / min(extra, BALLAST_MB) if extra > 0 else None,
                1.05,
            ),
        ]
    section.tables.append(
        Table(
            "Peak resident memory",
            ["Keras", "case", "peak (MB)", "growth (MB)"],
            rows,
            " ".join(notes),
        )
    )
    return section


if __name__ == "__main__":
    case_name, flavor_name, mode = sys.argv[1:4]
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    print(json.dumps(measure(case_name, flavor_name, CONFIGS[mode])))
