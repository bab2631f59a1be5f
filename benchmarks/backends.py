"""Section 6: spectral normalization's cost and sigma on each Keras 3 backend."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import tempfile

from benchmarks.backend_worker import VARIANTS
from benchmarks.config import Config
from benchmarks.report import Section, Table, Target
from benchmarks.sn_cost import CONSTRAINT_LIMIT, WRAPPER_LIMIT, noise_target

BACKENDS = ("tensorflow", "jax", "torch")
ROOT = pathlib.Path(__file__).resolve().parent.parent


def _measure_on(backend: str, config: Config) -> dict:
    """`benchmarks.backend_worker`'s figures, from a process on `backend`."""
    with tempfile.TemporaryDirectory() as folder:
        out = pathlib.Path(folder) / "result.json"
        subprocess.run(
            [sys.executable, "-m", "benchmarks.backend_worker", config.mode, str(out)],
            cwd=ROOT,
            env={**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"},
            check=True,
            timeout=3600,
        )
        return json.loads(out.read_text())


def run(config: Config) -> Section:
    section = Section(
        "backends",
        "6. Spectral normalization on each Keras 3 backend",
        f"The discriminator of section 1 (batch {config.batch} real + "
        f"{config.batch} fake, {config.image_size}x{config.image_size}x3), "
        "trained with `train_on_batch` on each backend, in a process of its "
        "own: compiled as each backend compiles `fit` (`tf.function` on "
        "TensorFlow, jit on JAX, eager on PyTorch). Variants timed "
        f"round-robin, {config.steps} rounds after {config.warmup} warm-up "
        "steps; the ratio is the median of per-round ratios to no "
        "normalization (a second unnormalized model shows the timer's "
        "noise). sigma error: max |sigma - 1| over the kernels after "
        "the timed steps, by SVD in float64 (for Keras's wrapper, of the "
        "kernel it last normalized). On JAX, `fit` does not carry the "
        "constraint's state (docs/backends.md): each step starts from the "
        "state solved before training.",
    )
    rows = []
    for backend in BACKENDS:
        result = _measure_on(backend, config)
        section.data[backend] = result
        for name, description in VARIANTS.items():
            rows.append(
                [
                    backend,
                    description,
                    result["median_ms"][name],
                    result["ratio"][name],
                    result["sigma_error"].get(name),
                ]
            )
        section.targets += [
            Target(
                f"SN constraint step cost, batch {config.batch} ({backend})",
                result["ratio"]["constraint"],
                CONSTRAINT_LIMIT["large"],
            ),
            Target(
                f"SN wrapper step cost, batch {config.batch} ({backend})",
                result["ratio"]["reparam"],
                WRAPPER_LIMIT["large"],
            ),
            noise_target(result["ratio"], f"batch {config.batch} ({backend})"),
        ]
    section.tables.append(
        Table(
            "Median step time, ratio to no normalization, and sigma error",
            ["backend", "variant", "step (ms)", "ratio", "sigma error"],
            rows,
        )
    )
    return section
