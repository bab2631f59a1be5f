"""The code base keeps its own rules: lint clean, Keras flavours only in adapters."""

import ast
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
        if not {"adapters", "ops", "layers"} & set(path.parts)
        and importer.search(path.read_text())
    ]
    assert offenders == []


def test_the_math_uses_keras_ops_and_backend_only():
    # kerasnorm/ops and kerasnorm/layers compute for both Kerases with
    # keras.ops (on TensorFlow for tf-keras): no layer, model or version
    # specific API of either Keras.
    allowed = {("keras", None), ("keras", "ops")}
    offenders = []
    for folder in ("ops", "layers"):
        for path in (PACKAGE / folder).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    found = {(alias.name, None) for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module:
                    found = {(node.module, alias.name) for alias in node.names}
                elif (
                    isinstance(node, ast.Attribute)
                    and isinstance(node.value, ast.Name)
                    and node.value.id == "keras"
                ):
                    found = {("keras", node.attr)} - {("keras", "backend")}
                else:
                    continue
                strays = {
                    (module, name)
                    for module, name in found
                    if module.split(".")[0] in ("keras", "tf_keras")
                    and (module, name) not in allowed
                }
                offenders += [(str(path.relative_to(ROOT)), *stray) for stray in strays]
    assert offenders == []
