"""Section 1: what spectral normalization adds to a discriminator's train step."""

from __future__ import annotations

import tensorflow as tf

import kerasnorm
from benchmarks import models, training
from benchmarks.config import Config
from benchmarks.report import Section, Table, Target
from benchmarks.timing import ratios, time_interleaved

VARIANTS = {
    "none": "no normalization",
    "constraint": "kerasnorm SpectralNorm constraint (defaults)",
    "reparam": "kerasnorm SpectralNormalization wrapper (defaults)",
    "keras": "Keras's SpectralNormalization wrapper",
    "seed": "seed constraint (5 power iterations from a random u)",
}


def build_variant(variant: str, flavor: str, config: Config):
    """The discriminator normalized as `variant` says.

    Raises:
        Exception: Whatever the Keras in question raises when the variant
            does not work there (Keras's own wrapper on tf-keras).
    """
    build = dict(
        flavor=flavor, size=config.image_size, widths=config.discriminator_widths
    )
    if variant == "keras":
        wrapper = models.keras_of(flavor).layers.SpectralNormalization
        return models.dcgan_discriminator(**build, wrapper=wrapper)
    if variant == "seed":
        return models.dcgan_discriminator(
            **build, kernel_constraint=lambda: models.seed_spectral_norm(flavor)
        )
    if variant == "none":
        return models.dcgan_discriminator(**build)
    return normalized_discriminator(flavor, config, mode=variant)


def normalized_discriminator(flavor: str, config: Config, **options):
    """The discriminator with kerasnorm's SNGAN normalization and `options`."""
    plain = models.dcgan_discriminator(
        flavor, config.image_size, config.discriminator_widths
    )
    return kerasnorm.apply_normalization(
        plain, "sngan", role="discriminator", **options
    )


def batches(config: Config) -> tuple[tf.Tensor, tf.Tensor]:
    """One real and one fake batch."""
    return (
        tf.constant(models.real_images(config.batch, config.image_size)),
        tf.constant(models.fake_images(config.batch, config.image_size)),
    )


def prepared_steps(flavor: str, config: Config, variants, options=None):
    """Blocking train steps of each variant that builds, and why the others fail.

    Args:
        flavor: The Keras.
        config: Sizes.
        variants: Variant names.
        options: Variant name to `apply_normalization` SN options (with
            `mode`, else the constraint), for variants named other than
            those in `VARIANTS`.

    Returns:
        `(steps, failures)`: name to a no-argument callable, name to the
        error message.
    """
    real, fake = batches(config)
    steps, failures = {}, {}
    for variant in variants:
        try:
            if options and variant in options:
                model = normalized_discriminator(flavor, config, **options[variant])
            else:
                model = build_variant(variant, flavor, config)
            run = training.blocking(
                training.discriminator_step(model, flavor), real, fake
            )
            run()
        except Exception as error:  # reported in the table, not hidden
            failures[variant] = f"{type(error).__name__}: {str(error).splitlines()[0]}"
            continue
        steps[variant] = run
    return steps, failures


def run(config: Config) -> Section:
    section = Section(
        "sn_cost",
        "1. Train-step cost of spectral normalization",
        f"One discriminator update (Adam, BCE on a real and a fake batch of "
        f"{config.batch}) of the DCGAN discriminator on "
        f"{config.image_size}x{config.image_size}x3 images (Conv2D "
        f"{'-'.join(map(str, config.discriminator_widths))}, kernel 4, stride 2, "
        "LeakyReLU 0.2, Dense 1), normalized five ways; "
        f"{config.steps} rounds after {config.warmup} warm-up steps; the ratio "
        "to the unnormalized model is the median of the per-round ratios, the "
        "step time a plain median. The seed constraint is the "
        "article kerasnorm started from, with its `call` renamed `__call__` so "
        "Keras applies it.",
    )
    rows = []
    for flavor in config.flavors:
        steps, failures = prepared_steps(flavor, config, VARIANTS)
        timings = time_interleaved(steps, config.steps, config.warmup)
        ratio = ratios(timings, "none")
        section.data[flavor] = {
            "median_ms": {name: 1e3 * t.median for name, t in timings.items()},
            "ratio": ratio,
            "failures": failures,
        }
        for name, description in VARIANTS.items():
            if name in failures:
                rows.append([flavor, description, None, f"fails: {failures[name]}"])
            else:
                rows.append(
                    [flavor, description, 1e3 * timings[name].median, ratio[name]]
                )
        section.targets += [
            Target(
                f"SN constraint step cost ({flavor})", ratio.get("constraint"), 1.03
            ),
            Target(f"SN reparam step cost ({flavor})", ratio.get("reparam"), 1.05),
        ]
        if "keras" in ratio:
            section.targets.append(
                Target(
                    f"SN reparam cost over Keras's wrapper ({flavor})",
                    ratio["reparam"] / ratio["keras"],
                    1.0,
                )
            )
    section.tables.append(
        Table(
            "Median step time and ratio to no normalization",
            ["Keras", "variant", "step (ms)", "ratio"],
            rows,
        )
    )
    return section
