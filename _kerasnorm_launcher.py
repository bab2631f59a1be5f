"""The `kerasnorm` console script: quiets TensorFlow, then runs the command.

TensorFlow reads `TF_CPP_MIN_LOG_LEVEL` once, as it loads, and importing any
module of the kerasnorm package loads it (`kerasnorm/__init__.py` imports
TensorFlow): the level must be set before that import, which no module
inside the package can do. So the script starts here, outside the package;
`import kerasnorm` in a user's program leaves the environment alone.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence

LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
# 1 hides INFO, 2 also WARNING, 3 also ERROR. ERROR too by default: on a
# machine without a GPU, TensorFlow logs "failed call to cuInit" as one.
DEFAULT_LEVEL = "3"
_FLAG_LEVELS = {"--quiet": "3", "-q": "3", "--verbose": "0", "-v": "0"}
_SEVERITIES = "IWEF"
_LOG_LINE = re.compile(r"([IWEF])\d{4} [\d:.]+ +\d+ \S+:\d+\] ")
_ABSL_BANNER = "WARNING: All log messages before absl::InitializeLog() is called"


def main(argv: Sequence[str] | None = None) -> int:
    """Runs `kerasnorm.cli.main` with TensorFlow's C++ logs set by the flags.

    Args:
        argv: The arguments, without the program name; defaults to
            `sys.argv[1:]`.

    Returns:
        The command's exit status.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    level = tensorflow_log_level(argv, os.environ)
    os.environ[LEVEL_VARIABLE] = level
    with _stderr_filtered_while_loading(_as_int(level)):
        from kerasnorm import cli
    return cli.main(argv)


def tensorflow_log_level(argv: Sequence[str], environ: Mapping[str, str]) -> str:
    """The `TF_CPP_MIN_LOG_LEVEL` the command runs with.

    `--verbose` ("0") and `--quiet` ("3") decide; without them, a value the
    user set is kept, else "3".

    Example:

    >>> tensorflow_log_level(["demo"], {"TF_CPP_MIN_LOG_LEVEL": "1"})
    '1'
    >>> tensorflow_log_level(["demo", "--verbose"], {})
    '0'
    """
    options = argv[: argv.index("--")] if "--" in argv else argv
    flagged = [_FLAG_LEVELS[option] for option in options if option in _FLAG_LEVELS]
    if flagged:
        return flagged[-1]
    return environ.get(LEVEL_VARIABLE, DEFAULT_LEVEL)


def _as_int(level: str) -> int:
    try:
        return int(level)
    except ValueError:
        return 0


@contextlib.contextmanager
def _stderr_filtered_while_loading(level: int) -> Iterator[None]:
    """Holds back stderr while TensorFlow loads; then writes what `level` keeps.

    TensorFlow 2.19 and later print a few lines as they load (oneDNN, CUDA
    drivers) whatever `TF_CPP_MIN_LOG_LEVEL` says (tensorflow/tensorflow
    issue 100442). They come from C++, past `sys.stderr`: only the file
    descriptor catches them. Every other line (a Python warning, an import
    error) is written out unchanged, in order.
    """
    if level < 1:
        yield
        return
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to hold back
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines = held.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if _kept(line, level)))
            sys.stderr.flush()


def _kept(line: str, level: int) -> bool:
    if line.startswith(_ABSL_BANNER):
        return False
    match = _LOG_LINE.match(line)
    return match is None or _SEVERITIES.index(match.group(1)) >= level


if __name__ == "__main__":
    raise SystemExit(main())
