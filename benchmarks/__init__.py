"""Benchmarks of kerasnorm against what users would pick instead.

Run `python -m benchmarks` (see `benchmarks/README.md`). Every figure is a
ratio to a baseline timed in the same process, so machines compare.
"""
