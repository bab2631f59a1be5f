"""The backend-neutral tests, run again on Keras 3's JAX and PyTorch backends.

Keras 3 fixes its backend when it is first imported, so each backend runs
in a pytest process of its own; this process runs on TensorFlow.
"""

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent

# Written against keras.ops and tests/backend.py only.
BACKEND_NEUTRAL = [
    "tests/test_ops_layouts.py",
    "tests/test_ops_pixel_norm.py",
    "tests/test_ops_sigma.py",
]


@pytest.mark.parametrize("name", ["jax", "torch"])
def test_backend_neutral_tests_pass_on(name):
    pytest_args = ["-q", "-p", "no:cacheprovider", "-n", "0", *BACKEND_NEUTRAL]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *pytest_args],
        cwd=ROOT,
        env={**os.environ, "KERAS_BACKEND": name, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout.strip().splitlines()[-1]
