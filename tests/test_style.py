"""The code base keeps its own rules: lint clean, Keras flavours only in adapters."""

import ast
import pathlib
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
    # Above the adapters, the one Keras API imported is keras.tree: nested
    # structures, of either Keras's tensors alike. (A name `keras` that is
    # an argument, `adapter.keras`, is whichever Keras the model is from.)
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if {"adapters", "ops", "layers"} & set(path.parts):
            continue
        nodes = list(ast.walk(ast.parse(path.read_text())))
        imported = {
            alias.name.split(".")[0]
            for node in nodes
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        } | {
            node.module.split(".")[0]
            for node in nodes
            if isinstance(node, ast.ImportFrom) and node.module
        }
        used = {
            node.attr
            for node in nodes
            if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "keras"
        }
        imported_from_keras = {
            (node.module, alias.name)
            for node in nodes
            if isinstance(node, ast.ImportFrom)
            and (node.module or "").split(".")[0] == "keras"
            for alias in node.names
        }
        if (
            "tf_keras" in imported
            or imported_from_keras - {("keras", "tree")}
            or ("keras" in imported and used - {"tree"})
        ):
            offenders.append(str(path.relative_to(ROOT)))
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
