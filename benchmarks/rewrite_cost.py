"""Section 4: the cost of `apply_normalization` against cloning the model."""

from __future__ import annotations

import kerasnorm
from benchmarks import models
from benchmarks.config import Config
from benchmarks.report import Section, Table, Target
from benchmarks.timing import time_interleaved


def normalize(model):
    """The rewrite timed: SN constraints on every kernel."""
    return kerasnorm.apply_normalization(model, "sngan", role="discriminator")


def time_rewrite(model, config: Config) -> dict:
    """Median seconds of `apply_normalization` and of clone + set_weights."""
    warmup = 1 if config.rewrite_runs > 1 else 0
    timings = time_interleaved(
        {
            "apply_normalization": lambda: normalize(model),
            "clone_model + set_weights": lambda: models.clone_with_weights(model),
        },
        config.rewrite_runs,
        warmup,
    )
    return {name: timing.median for name, timing in timings.items()}


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
        "`clone_model` followed by `set_weights`, on "
        "`keras.applications` models (`weights=None`) and on chains of Dense "
        f"layers; medians of {config.rewrite_runs} interleaved runs. Time per "
        "layer must stay flat as the chain grows.",
    )
    rows = []
    for flavor in config.flavors:
        results = {}
        for label, model in subjects(flavor, config):
            seconds = time_rewrite(model, config)
            layers = len(model.layers)
            apply, clone = (
                seconds["apply_normalization"],
                seconds["clone_model + set_weights"],
            )
            results[label] = {
                "layers": layers,
                "apply_s": apply,
                "clone_s": clone,
                "ratio": apply / clone,
                "apply_ms_per_layer": 1e3 * apply / layers,
                "clone_ms_per_layer": 1e3 * clone / layers,
            }
            rows.append(
                [
                    flavor,
                    label,
                    layers,
                    apply,
                    clone,
                    apply / clone,
                    1e3 * apply / layers,
                    1e3 * clone / layers,
                ]
            )
            section.targets.append(
                Target(f"rewrite over clone, {label} ({flavor})", apply / clone, 1.0)
            )
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
    section.tables.append(
        Table(
            "Rewrite time",
            [
                "Keras",
                "model",
                "layers",
                "apply (s)",
                "clone (s)",
                "ratio",
                "apply ms/layer",
                "clone ms/layer",
            ],
            rows,
        )
    )
    return section
