"""Every python code block in README.md and docs/ runs, so no example can rot.

The blocks of one file run in order in one namespace, like a notebook. A
block whose first line is `# not run` is skipped (for shell-only snippets
shown as python); one whose first line is `# backend: jax` (or `torch`,
`tensorflow`) runs only on that Keras 3 backend (tests/test_backends.py runs
docs/backends.md on each). A page that creates a `tf.distribute` strategy runs in a
fresh process: strategies in one process share collective keys, and the
test session has its own.
"""

import contextlib
import io
import pathlib
import re
import subprocess
import sys

import keras
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


# A block for one Keras 3 backend starts with `# backend: <name>`.
BACKEND = re.compile(r"# backend: (\w+)\n")


def python_blocks(path: pathlib.Path) -> list[str]:
    """The blocks of `path` to run on this process's Keras 3 backend."""
    blocks = []
    for block in BLOCK.findall(path.read_text()):
        marker = BACKEND.match(block)
        elsewhere = marker is not None and marker.group(1) != keras.backend.backend()
        if not (block.startswith("# not run") or elsewhere):
            blocks.append(block)
    return blocks


@pytest.mark.parametrize(
    "path",
    [p for p in DOCUMENTS if python_blocks(p)],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_code_blocks_run(path, tmp_path, monkeypatch):
    if "Strategy(" in path.read_text():
        _run_in_a_fresh_process(path, tmp_path)
        return
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__docs__"}
    for number, block in enumerate(python_blocks(path), 1):
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            exec(compile(block, f"{path.name} block {number}", "exec"), namespace)
        _check_printed(block, output.getvalue(), f"{path.name} block {number}")


def _run_in_a_fresh_process(path: pathlib.Path, tmp_path: pathlib.Path) -> None:
    blocks = python_blocks(path)
    marker = "@@ block end @@"
    script = "\n".join(f"{block}\nprint({marker!r})" for block in blocks)
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = result.stdout.split(marker)
    for number, (block, printed) in enumerate(
        zip(blocks, outputs[:-1], strict=True), 1
    ):
        _check_printed(block, printed, f"{path.name} block {number}")


def _check_printed(block: str, printed: str, where: str) -> None:
    """`print(...)` followed by `# value` lines must print that value."""
    expected = []
    lines = block.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("print(") and index + 1 < len(lines):
            following = lines[index + 1]
            if following.startswith("# "):
                expected.append(following[2:])
    for value in expected:
        assert value in printed, f"{where}: expected {value!r} in output {printed!r}"
