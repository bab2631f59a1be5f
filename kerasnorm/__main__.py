"""`python -m kerasnorm`: the `kerasnorm` command; with no arguments, the demo."""

from kerasnorm.cli import main

raise SystemExit(main(prog="python -m kerasnorm"))
