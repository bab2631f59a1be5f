"""Section 8: spectral normalization by each convolution's operator norm."""

from __future__ import annotations

import time

import numpy as np
import tensorflow as tf

from benchmarks import models, training
from benchmarks.config import Config
from benchmarks.report import Section, Table, Target
from benchmarks.sigma_accuracy import image_pool
from benchmarks.sn_cost import normalized_discriminator, prepared_steps
from benchmarks.timing import ratios, time_interleaved
from kerasnorm.ops import sigma as sigma_ops
from kerasnorm.ops.operators import ConvGeometry, ConvOperator

# The reshaped kernel's default tolerance, given to the operator norm: the
# cheaper, looser point of its trade-off.
LOOSE = {"tol": 1e-2, "max_iter": 6}
# Variant to (`apply_normalization` SN options, description); "none" is
# section 1's unnormalized model.
VARIANTS = {
    "none": (None, "no normalization"),
    "constraint": ({}, "constraint, reshaped kernel's norm (defaults)"),
    "constraint_operator": (
        {"operator_norm": True},
        "constraint, operator norm (operator_norm=True: tol=1e-4, max_iter=24)",
    ),
    "constraint_operator_loose": (
        {"operator_norm": True, **LOOSE},
        "constraint, operator norm, tol=1e-2, max_iter=6",
    ),
    "reparam": ({"mode": "reparam"}, "wrapper, reshaped kernel's norm"),
    "reparam_operator": (
        {"mode": "reparam", "operator_norm": True},
        "wrapper, operator norm",
    ),
}
# The accuracy bound on the operator norm after each constraint step.
OPERATOR_LIMIT = 1e-3
# Label to the constraint's options in the accuracy run.
ACCURACY_VARIANTS = {
    "reshaped kernel (SNGAN)": {},
    "operator_norm=True": {"operator_norm": True},
    "operator_norm=True, tol=1e-2, max_iter=6": {"operator_norm": True, **LOOSE},
}


def run(config: Config) -> Section:
    section = Section(
        "operator_norm",
        "8. The operator norm of convolutions",
        "The discriminator of section 1 normalized by SNGAN's reshaped-kernel "
        "norm and by each convolution's operator norm on its input "
        "(`operator_norm=True`), constraint and wrapper, timed as in section "
        f"1 ({config.steps} interleaved rounds after {config.warmup} warm-up "
        "steps, both batch sizes; the ratio is the median of the per-round "
        "ratios to no normalization). Then the constraint trained as in "
        f"section 3 for {config.accuracy_steps} steps: after steps "
        f"{_ranges(checkpoints(config.accuracy_steps))}, every "
        "convolution's operator norm on its input, solved by block Lanczos to "
        "a residual of 1e-6 (the tests hold that solve to the SVD of the "
        "unrolled operator within 1e-4, measured 1e-7 to 1e-8), for each "
        "normalization; the product of the four is a bound of the "
        "discriminator's Lipschitz constant (LeakyReLU is 1-Lipschitz, the "
        "Dense layer's norm is 1 either way). Last, per convolution: the first "
        "solve (from a fixed start, compiled as the train step compiles it) "
        "and one tracking iteration (a convolution and its adjoint on a block "
        "of two inputs) against the same for the reshaped kernel.",
    )
    options = {name: o for name, (o, _) in VARIANTS.items() if o is not None}
    rows = []
    for flavor in config.flavors:
        for batch in (config.batch, config.small_batch):
            steps, failures = prepared_steps(flavor, config, VARIANTS, options, batch)
            timings = time_interleaved(steps, config.steps, config.warmup)
            ratio = ratios(timings, "none")
            section.data[f"{flavor}, batch {batch}"] = {
                "median_ms": {name: 1e3 * t.median for name, t in timings.items()},
                "ratio": ratio,
                "failures": failures,
            }
            for name, (_, description) in VARIANTS.items():
                if name in failures:
                    measured = [None, f"fails: {failures[name]}"]
                else:
                    measured = [1e3 * timings[name].median, ratio[name]]
                rows.append([flavor, batch, description, *measured])
    section.tables.append(
        Table(
            "Median discriminator step time and ratio to no normalization",
            ["Keras", "batch", "variant", "step (ms)", "ratio"],
            rows,
        )
    )
    accuracy_rows = []
    for flavor in config.flavors:
        result = _accuracy(flavor, config)
        section.data[f"{flavor}, accuracy"] = result
        for label, summary in result.items():
            accuracy_rows.append(
                [
                    flavor,
                    label,
                    summary["max_error"],
                    summary["median_error"],
                    summary["largest_norm"],
                    summary["product"],
                ]
            )
        section.targets.append(
            Target(
                f"operator norm max |sigma-1|, {config.accuracy_steps} steps "
                f"({flavor})",
                result["operator_norm=True"]["max_error"],
                OPERATOR_LIMIT,
            )
        )
    section.tables.append(
        Table(
            "Each convolution's operator norm after the constraint's steps",
            [
                "Keras",
                "normalization",
                "max |norm-1|",
                "median |norm-1|",
                "largest norm",
                "product, last step",
            ],
            accuracy_rows,
        )
    )
    solve_rows = _solve_costs(config)
    section.data["solves"] = solve_rows
    section.tables.append(
        Table(
            "Per convolution (Keras 3): the first solve, and one tracking iteration",
            [
                "layer",
                "input",
                "operator",
                "first solve (ms)",
                "iteration (ms)",
                "reshaped: solve (ms)",
                "reshaped: iteration (ms)",
            ],
            solve_rows,
        )
    )
    return section


def _convolutions(model) -> list:
    """`(layer, geometry)` of each convolution, on its input in the model."""
    return [
        (layer, ConvGeometry.of_layer(layer, layer.input.shape))
        for layer in model.layers
        if type(layer).__name__ == "Conv2D"
    ]


def _norm_of(geometry: ConvGeometry):
    """A compiled function: a kernel's operator norm on `geometry`."""

    @tf.function
    def norm(kernel):
        return sigma_ops.solve(ConvOperator(kernel, "dense", geometry), 2).sigma

    return norm


def checkpoints(steps: int) -> list[int]:
    """The steps after which the operator norms are solved: each of the
    first twenty, where a new top direction rises most often, then every
    tenth (a solve of the four convolutions of the full discriminator takes
    about 7 s here)."""
    return sorted({*range(1, min(steps, 20) + 1), *range(30, steps + 1, 10)})


def _ranges(steps: list[int]) -> str:
    """`[1, 2, 3, 30, 40]` as `"1-3, 30, 40"`."""
    runs = []
    for step in steps:
        if runs and step == runs[-1][1] + 1:
            runs[-1][1] = step
        else:
            runs.append([step, step])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def _accuracy(flavor: str, config: Config) -> dict:
    results = {}
    for label, options in ACCURACY_VARIANTS.items():
        model = normalized_discriminator(flavor, config, **options)
        convolutions = _convolutions(model)
        norms_of = [_norm_of(geometry) for _, geometry in convolutions]
        step = training.discriminator_step(model, flavor)
        history = []
        checked = checkpoints(config.accuracy_steps)
        for number, (real, fake) in enumerate(
            image_pool(config, config.accuracy_steps), 1
        ):
            step(real, fake)
            if number not in checked:
                continue
            history.append(
                [
                    float(norm(tf.convert_to_tensor(layer.kernel)))
                    for (layer, _), norm in zip(convolutions, norms_of, strict=True)
                ]
            )
        norms = np.array(history)
        errors = np.abs(norms - 1).max(axis=1)
        results[label] = {
            "max_error": float(errors.max()),
            "median_error": float(np.median(errors)),
            "largest_norm": float(norms.max()),
            "product": float(np.prod(norms[-1])),
            "last_norms": norms[-1].tolist(),
        }
    return results


def _solve_costs(config: Config) -> list[list]:
    """Per convolution of the Keras 3 discriminator: solve and iteration times."""
    model = models.dcgan_discriminator(
        "keras3", config.image_size, config.discriminator_widths
    )
    rows = []
    for layer, geometry in _convolutions(model):
        kernel = tf.convert_to_tensor(layer.kernel)
        operator = ConvOperator(kernel, "dense", geometry)
        matrix = tf.reshape(kernel, (-1, kernel.shape[-1]))
        timings = []
        for operand in (operator, matrix):
            state = sigma_ops.solve(operand, 2).state
            solve = tf.function(lambda k, operand=operand: _solved(operand, k))
            iterate = tf.function(
                lambda k, s, operand=operand: _iterated(operand, k, s)
            )
            timings += [_best_ms(solve, kernel), _best_ms(iterate, kernel, state)]
        rows.append(
            [
                layer.name,
                "x".join(map(str, geometry.input_shape)),
                f"{operator.shape[0]} x {operator.shape[1]}",
                *timings,
            ]
        )
    return rows


def _rebuilt(operand, kernel):
    if isinstance(operand, ConvOperator):
        return ConvOperator(kernel, operand.layout, operand.geometry)
    return tf.reshape(kernel, (-1, kernel.shape[-1]))


def _solved(operand, kernel):
    return sigma_ops.solve(_rebuilt(operand, kernel), 2).sigma


def _iterated(operand, kernel, state):
    return sigma_ops.track(_rebuilt(operand, kernel), state, n_iter=1).sigma


def _best_ms(function, *args, runs: int = 3) -> float:
    """The fastest of `runs` calls after one that traces, in milliseconds."""
    function(*args)
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        np.asarray(function(*args))
        best = min(best, time.perf_counter() - start)
    return 1e3 * best
