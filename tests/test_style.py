"""The code base keeps its own rules: lint clean, Keras flavours only in adapters."""

import pathlib
import re
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "kerasnorm"


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is not installed")
def test_ruff_is_clean():
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_only_adapters_import_a_keras_package():
    importer = re.compile(r"^\s*(from|import)\s+(keras|tf_keras)\b", re.MULTILINE)
    offenders = [
        str(path.relative_to(ROOT))
        for path in PACKAGE.rglob("*.py")
        if "adapters" not in path.parts and importer.search(path.read_text())
    ]
    assert offenders == []
