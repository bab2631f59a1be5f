"""Section 2: PixelNorm in a generator's train step, and the op alone."""

from __future__ import annotations

import math
from collections.abc import Callable

import tensorflow as tf

from benchmarks import models, training
from benchmarks.config import Config
from benchmarks.report import Section, Table, Target
from benchmarks.timing import ratios, time_interleaved
from kerasnorm.ops.pixel_norm import pixel_norm

EPSILON = 1e-8

GENERATOR_VARIANTS = {
    "none": "no normalization",
    "kerasnorm": "kerasnorm PixelNorm",
    "seed": "seed PixelNorm (the formula as a layer)",
}


def _seed_formula(x):
    return x / tf.sqrt(tf.reduce_mean(x**2, axis=-1, keepdims=True) + EPSILON)


def _rsqrt_formula(x):
    return x * tf.math.rsqrt(
        tf.reduce_mean(tf.square(x), axis=-1, keepdims=True) + EPSILON
    )


def _local_response(x):
    # A window over every channel, alpha * sum = mean and beta 1/2: pixel norm.
    channels = x.shape[-1]
    return tf.nn.local_response_normalization(
        x, depth_radius=channels, bias=EPSILON, alpha=1.0 / channels, beta=0.5
    )


# (description, function, compiled with XLA)
OP_VARIANTS = {
    "leaky_relu": (
        "LeakyReLU(0.2), the elementwise floor",
        lambda x: tf.nn.leaky_relu(x, 0.2),
        False,
    ),
    "kerasnorm": ("kerasnorm pixel_norm (as shipped)", pixel_norm, False),
    "seed": ("x / sqrt(mean(x**2) + eps), autodiff", _seed_formula, False),
    "rsqrt": ("x * rsqrt(mean(x**2) + eps), autodiff", _rsqrt_formula, False),
    "rsqrt_xla": (
        "x * rsqrt(mean(x**2) + eps), autodiff, jit_compile",
        _rsqrt_formula,
        True,
    ),
    "kerasnorm_xla": ("kerasnorm pixel_norm, jit_compile", pixel_norm, True),
    "lrn": (
        "tf.nn.local_response_normalization over all channels",
        _local_response,
        False,
    ),
}


def _forward_backward(function: Callable, jit_compile: bool) -> Callable:
    # Both results are returned: a step returning the gradient alone lets
    # Grappler prune LeakyReLU's forward pass (its gradient needs only x),
    # and the floor would be a backward pass alone.
    @tf.function(jit_compile=jit_compile)
    def step(x, upstream):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = function(x)
        return y, tape.gradient(y, x, output_gradients=upstream)

    return step


def time_generator(flavor: str, config: Config) -> dict:
    """Interleaved train steps of the generator without and with PixelNorm."""
    layers = {
        "none": None,
        "kerasnorm": models.adapter(flavor).PixelNorm,
        "seed": lambda: models.seed_pixel_norm(flavor),
    }
    latents = tf.random.stateless_normal((config.batch, config.latent), seed=(1, 2))
    target = tf.constant(models.real_images(config.batch, config.image_size))
    steps = {}
    for name, layer in layers.items():
        model = models.progan_generator(
            flavor, config.image_size, config.latent, config.generator_widths, layer
        )
        steps[name] = training.blocking(
            training.generator_step(model, flavor), latents, target
        )
    return time_interleaved(steps, config.steps, config.warmup)


def time_op(shape: tuple[int, ...], config: Config, variants=OP_VARIANTS) -> dict:
    """Interleaved forward+backward passes of each op variant on one tensor."""
    x = tf.random.stateless_normal(shape, seed=(3, 4))
    upstream = tf.random.stateless_normal(shape, seed=(5, 6))
    first = (0,) * len(shape)
    runs = {}
    for name, (_, function, jit_compile) in variants.items():
        step = _forward_backward(function, jit_compile)
        # Reading one element waits for the step without copying its results.
        runs[name] = lambda step=step: step(x, upstream)[1][first].numpy()
    return time_interleaved(runs, config.op_runs, config.warmup)


def op_error(config: Config) -> float:
    """Largest absolute difference of kerasnorm's op from the seed formula."""
    x = tf.random.stateless_normal(config.op_shape, seed=(3, 4))
    return float(tf.reduce_max(tf.abs(pixel_norm(x) - _seed_formula(x))))


SIZE_VARIANTS = ("leaky_relu", "kerasnorm", "kerasnorm_xla")


def _by_size(config: Config, largest: dict) -> tuple[Table, dict]:
    """The op's ratio to LeakyReLU on smaller tensors and on the largest.

    Args:
        config: The benchmark's configuration.
        largest: Timings of every variant on `config.op_shape`, already run.
    """
    variants = {name: OP_VARIANTS[name] for name in SIZE_VARIANTS}
    rows, data = [], {}
    for shape in (*config.op_smaller_shapes, config.op_shape):
        timings = (
            largest if shape == config.op_shape else time_op(shape, config, variants)
        )
        ratio = ratios(timings, "leaky_relu")
        label = "x".join(map(str, shape))
        data[label] = {name: ratio[name] for name in SIZE_VARIANTS[1:]}
        rows.append(
            [label, 4 * math.prod(shape) / 2**20, 1e3 * timings["leaky_relu"].median]
            + [ratio[name] for name in SIZE_VARIANTS[1:]]
        )
    table = Table(
        "The op by tensor size, ratio to LeakyReLU",
        ["tensor", "MiB", "LeakyReLU (ms)", "kerasnorm", "kerasnorm, jit_compile"],
        rows,
    )
    return table, data


def run(config: Config) -> Section:
    shape = "x".join(map(str, config.op_shape))
    section = Section(
        "pixel_norm",
        "2. PixelNorm",
        "A ProGAN-style generator (latent "
        f"{config.latent}, 4x4 up to {config.image_size}x{config.image_size}, two "
        "3x3 convolutions per resolution with filters "
        f"{'-'.join(map(str, config.generator_widths))}, LeakyReLU 0.2, PixelNorm on "
        "the latent and after every activation) trained on a mean squared error "
        f"with batch {config.batch}, without PixelNorm, with kerasnorm's and with "
        "the seed's; then the op alone, forward and backward on a "
        f"{shape} float32 tensor (channels last), against LeakyReLU forward and "
        "backward on the same tensor. Medians of "
        f"{config.steps} steps and {config.op_runs} op runs.",
    )
    rows = []
    for flavor in config.flavors:
        timings = time_generator(flavor, config)
        ratio = ratios(timings, "none")
        section.data[f"generator_{flavor}"] = {
            "median_ms": {name: 1e3 * t.median for name, t in timings.items()},
            "ratio": ratio,
        }
        rows += [
            [flavor, GENERATOR_VARIANTS[name], 1e3 * timings[name].median, ratio[name]]
            for name in GENERATOR_VARIANTS
        ]
        section.targets.append(
            Target(
                f"Generator step with PixelNorm ({flavor})", ratio["kerasnorm"], 1.05
            )
        )
    section.tables.append(
        Table(
            "Generator train step, ratio to no normalization",
            ["Keras", "variant", "step (ms)", "ratio"],
            rows,
        )
    )
    timings = time_op(config.op_shape, config)
    ratio = ratios(timings, "leaky_relu")
    section.data["op"] = {
        "median_ms": {name: 1e3 * t.median for name, t in timings.items()},
        "ratio": ratio,
        "max_abs_error": op_error(config),
    }
    section.tables.append(
        Table(
            f"The op alone, forward+backward on {shape}, ratio to LeakyReLU",
            ["variant", "time (ms)", "ratio"],
            [
                [description, 1e3 * timings[name].median, ratio[name]]
                for name, (description, _, _) in OP_VARIANTS.items()
            ],
        )
    )
    table, section.data["op_by_size"] = _by_size(config, timings)
    section.tables.append(table)
    section.targets.append(
        Target("PixelNorm op over LeakyReLU", ratio["kerasnorm"], 1.25)
    )
    return section
