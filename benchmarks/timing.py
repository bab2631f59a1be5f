"""Interleaved timing: every variant is timed round-robin, so noise hits all alike."""

from __future__ import annotations

import dataclasses
import gc
import statistics
import time
from collections.abc import Callable


@dataclasses.dataclass(frozen=True)
class Timing:
    """The timed runs of one variant.

    Attributes:
        median: Median seconds per run.
        low: 25th percentile, seconds.
        high: 75th percentile, seconds.
        runs: How many runs were timed.
        seconds: Every timed run, in order: run `i` of every variant timed
            by one `time_interleaved` call fell in the same round.
    """

    median: float
    low: float
    high: float
    runs: int
    seconds: tuple[float, ...] = ()


def time_interleaved(
    variants: dict[str, Callable[[], object]],
    runs: int,
    warmup: int = 2,
    collect_garbage: bool = False,
) -> dict[str, Timing]:
    """Times each callable `runs` times, one run of each in turn.

    Each callable must block until its work is done (e.g. by returning a
    number read back from TensorFlow). The first `warmup` runs of each
    (tracing, first allocations) are not timed. The order within a round
    rotates, so no variant always runs right after the same other one.

    Args:
        variants: Name to a callable doing one run.
        runs: Timed runs per variant.
        warmup: Untimed runs per variant before timing.
        collect_garbage: Collect garbage before each run and keep the
            collector off during it, as `timeit` does: for runs that build
            thousands of Python objects, where a collection would otherwise
            fall in whichever run crosses the threshold, and its cost grows
            with everything the earlier runs left behind.

    Returns:
        Name to its `Timing`.
    """
    for run in variants.values():
        for _ in range(warmup):
            run()
    names = list(variants)
    seconds = {name: [] for name in names}
    for round_index in range(runs):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            if collect_garbage:
                gc.collect()
                gc.disable()
            try:
                start = time.perf_counter()
                variants[name]()
                seconds[name].append(time.perf_counter() - start)
            finally:
                if collect_garbage:
                    gc.enable()
    return {name: summarize(values) for name, values in seconds.items()}


def summarize(seconds: list[float]) -> Timing:
    """The median and quartiles of a list of durations."""
    if len(seconds) == 1:
        return Timing(seconds[0], seconds[0], seconds[0], 1, tuple(seconds))
    quartiles = statistics.quantiles(seconds, n=4)
    return Timing(
        statistics.median(seconds),
        quartiles[0],
        quartiles[2],
        len(seconds),
        tuple(seconds),
    )


def ratios(timings: dict[str, Timing], baseline: str) -> dict[str, float]:
    """Each variant's time over the baseline's: the median of per-round ratios.

    Each round of `time_interleaved` runs every variant once within about a
    second, so dividing within a round cancels what drifts slower than that
    (another process, the clock). Four runs of 30 rounds of the SN
    constraint's step gave ratios of 1.014-1.030 this way, 1.015-1.064 as a
    ratio of two medians.
    """
    base = timings[baseline].seconds
    return {
        name: statistics.median(
            run / base_run for run, base_run in zip(timing.seconds, base, strict=True)
        )
        for name, timing in timings.items()
    }
