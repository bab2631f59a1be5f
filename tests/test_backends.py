"""The backend-neutral tests, run again on Keras 3's JAX and PyTorch backends.

Keras 3 fixes its backend when it is first imported, so each backend runs
in a pytest process of its own; this process runs on TensorFlow, and writes
the numbers each backend must reproduce (tests/test_every_backend.py). JAX
gets two host devices, for the data-parallel recipe of docs/backends.md.
Under `-m slow`, every page of the docs runs on each backend too.
"""

import os
import pathlib
import subprocess
import sys

import pytest
import test_every_backend

ROOT = pathlib.Path(__file__).resolve().parent.parent

# Written against keras, keras.ops and tests/backend.py only.
BACKEND_NEUTRAL = [
    "tests/test_ops_layouts.py",
    "tests/test_ops_operators.py",
    "tests/test_ops_pixel_norm.py",
    "tests/test_ops_shared.py",
    "tests/test_ops_sigma.py",
    "tests/test_pixel_norm.py",
    "tests/test_actions.py",
    "tests/test_ir.py",
    "tests/test_every_backend.py",
    "tests/test_docs.py::test_code_blocks_run[docs/backends.md]",
]


@pytest.mark.parametrize("name", ["jax", "torch"])
def test_backend_neutral_tests_pass_on(name, tmp_path):
    reference = tmp_path / "tensorflow.npz"
    test_every_backend.write_reference(reference)
    output = _pytest_on(name, BACKEND_NEUTRAL, KERASNORM_REFERENCE=str(reference))
    # The comparison with TensorFlow ran (skip reasons are listed by -rs).
    assert "no reference run" not in output


@pytest.mark.slow
@pytest.mark.parametrize("name", ["jax", "torch"])
def test_every_page_of_the_docs_runs_on(name):
    # Blocks marked `# backend: tensorflow` (tf-keras, tf.distribute) skip.
    _pytest_on(name, ["tests/test_docs.py::test_code_blocks_run"])


def _pytest_on(name: str, tests: list[str], **environment: str) -> str:
    """Runs `tests` in a pytest process on Keras 3's `name` backend; returns
    its output once they all passed."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-n",
            "0",
            "-p",
            "no:cacheprovider",
            *tests,
        ],
        cwd=ROOT,
        env={
            **os.environ,
            **environment,
            "KERAS_BACKEND": name,
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        },
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout.strip().splitlines()[-1]
    return result.stdout
