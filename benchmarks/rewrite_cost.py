"""Section 4: the cost of `apply_normalization` against cloning the model."""

from __future__ import annotations

import contextlib
import sys

import kerasnorm
from benchmarks import models
from benchmarks.config import Config
from benchmarks.report import Section, Table, Target
from benchmarks.timing import ratios, time_interleaved


def normalize(model):
    """The rewrite timed: SN constraints on every kernel."""
    return kerasnorm.apply_normalization(model, "sngan", role="discriminator")


def insert_pixel_norms(model):
    """The rewrite timed on generators: a PixelNorm on the latent and after
    every activation."""
    return kerasnorm.apply_normalization(model, "progan", role="generator")


def time_rewrite(model, runs: int, rewrite=normalize, floor: bool = True) -> dict:
    """Median seconds of `rewrite(model)` and of its baselines, and the
    medians of the rewrite's per-round ratios to each, over `runs` rounds
    after one warm-up round (none for a single round).

    The baselines are clone + set_weights and, with `floor`, the same plus
    a state variable per kernel (`models.clone_with_states`).

    Returns:
        `apply_s`, `clone_s`, `over_clone`, and with `floor` `floor_s` and
        `over_floor`.
    """
    warmup = 1 if runs > 1 else 0
    variants = {
        "apply": lambda: rewrite(model),
        "clone": lambda: models.clone_with_weights(model),
    }
    if floor:
        variants["floor"] = lambda: models.clone_with_states(model)
    timings = time_interleaved(variants, runs, warmup, collect_garbage=True)
    result = {f"{name}_s": timing.median for name, timing in timings.items()}
    for baseline in list(variants)[1:]:
        result[f"over_{baseline}"] = ratios(timings, baseline)["apply"]
    return result


def subjects(flavor: str, config: Config):
    """(label, model) for every model rewritten, built one at a time."""
    for name in config.applications:
        yield name, models.application(flavor, name)
    for length in config.chain_lengths:
        yield f"Dense chain of {length}", models.dense_chain(flavor, length)


def run(config: Config) -> Section:
    section = Section(
        "rewrite_cost",
        "4. Rewrite cost",
        '`apply_normalization(model, "sngan", role="discriminator")` (a '
        "`SpectralNorm` constraint on every kernel; its singular vectors are "
        "solved exactly at the kernel's first use, not here) against "
        "`clone_model` followed by `set_weights`, and against a floor: the "
        "same clone plus an empty state variable per kernel, made as "
        "kerasnorm makes its own (a rewrite that keeps sigma's singular "
        "vectors between steps cannot make fewer variables), on "
        "`keras.applications` models (`weights=None`) and on chains of Dense "
        f"layers; {config.rewrite_runs} interleaved rounds, garbage collected "
        "before each run and not during it (as `timeit` does); the ratio is the "
        "median of the per-round ratios. Time per "
        "layer must stay flat as the chain grows. Then "
        '`apply_normalization(model, "progan", role="generator")` on generator '
        "chains (a latent reshaped to 1x1, then N pairs of a 1x1 `Conv2D` and "
        "`LeakyReLU`, then a 1x1 `Conv2D`), which inserts N + 1 PixelNorm "
        f"layers, timed the same way in {config.insertion_runs} rounds: time "
        "per insertion must stay flat too.",
    )
    rows, insertion_rows = [], []
    for flavor in config.flavors:
        results = {}
        for label, model in subjects(flavor, config):
            timed = time_rewrite(model, config.rewrite_runs)
            layers = len(model.layers)
            results[label] = {
                "layers": layers,
                **timed,
                "apply_ms_per_layer": 1e3 * timed["apply_s"] / layers,
            }
            rows.append(
                [
                    flavor,
                    label,
                    layers,
                    timed["apply_s"],
                    timed["clone_s"],
                    timed["floor_s"],
                    timed["over_clone"],
                    timed["over_floor"],
                    1e3 * timed["apply_s"] / layers,
                ]
            )
            section.targets += [
                Target(
                    f"rewrite over clone, {label} ({flavor})", timed["over_clone"], 1.0
                ),
                Target(
                    f"rewrite over clone + states, {label} ({flavor})",
                    timed["over_floor"],
                    1.0,
                ),
            ]
        section.data[flavor] = results
        chains = [results[f"Dense chain of {n}"] for n in config.chain_lengths]
        growth = chains[-1]["apply_ms_per_layer"] / chains[0]["apply_ms_per_layer"]
        section.data[flavor]["per_layer_growth"] = growth
        section.targets.append(
            Target(
                f"time per layer, chain {config.chain_lengths[-1]} over "
                f"{config.chain_lengths[0]} ({flavor})",
                growth,
                1.25,
            )
        )
        generators = time_insertions(flavor, config)
        section.data[flavor]["progan"] = generators
        insertion_rows += [[flavor, *row.values()] for row in generators.values()]
        lengths = config.generator_chain_lengths
        growth = (
            generators[lengths[-1]]["apply_ms_per_insertion"]
            / generators[lengths[0]]["apply_ms_per_insertion"]
        )
        section.data[flavor]["per_insertion_growth"] = growth
        section.targets.append(
            Target(
                f"time per PixelNorm insertion, generator chain {lengths[-1]} over "
                f"{lengths[0]} ({flavor})",
                growth,
                1.25,
            )
        )
    section.tables.append(
        Table(
            "Rewrite time",
            [
                "Keras",
                "model",
                "layers",
                "apply (s)",
                "clone (s)",
                "clone + states (s)",
                "over clone",
                "over clone + states",
                "apply ms/layer",
            ],
            rows,
        )
    )
    section.tables.append(
        Table(
            "progan on generator chains: time per PixelNorm insertion",
            [
                "Keras",
                "activations",
                "layers",
                "insertions",
                "apply (s)",
                "clone (s)",
                "ratio",
                "apply ms/insertion",
            ],
            insertion_rows,
        )
    )
    return section


def time_insertions(flavor: str, config: Config) -> dict[int, dict]:
    """The `progan` rewrite of each generator chain, against its clone.

    Returns:
        Activations to the chain's figures, in table-column order.
    """
    results = {}
    for length in config.generator_chain_lengths:
        # The chain is 2 layers deep per activation, its rewrite 3, and Keras
        # recurses about once per layer of depth: 12 frames per activation
        # leave room for what each level calls.
        with recursion_limit(12 * length):
            model = models.generator_chain(flavor, length)
            insertions = len(kerasnorm.plan(model, "progan", role="generator"))
            timed = time_rewrite(
                model, config.insertion_runs, insert_pixel_norms, floor=False
            )
        results[length] = {
            "activations": length,
            "layers": len(model.layers),
            "insertions": insertions,
            "apply_s": timed["apply_s"],
            "clone_s": timed["clone_s"],
            "ratio": timed["over_clone"],
            "apply_ms_per_insertion": 1e3 * timed["apply_s"] / insertions,
        }
    return results


@contextlib.contextmanager
def recursion_limit(limit: int):
    """Raises Python's recursion limit to at least `limit` within the block.

    Both Kerases build a functional model by recursing about once per layer
    of its depth, and TensorFlow sets the limit to 3000: without this,
    Keras cannot build a chain of 2000 activations (4003 layers deep) nor
    the rewrite of one of 1000 (3004).
    """
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(max(previous, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)
