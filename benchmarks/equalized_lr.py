"""Section 7: the cost of equalized learning rate, and a training run with it."""

from __future__ import annotations

import keras

import kerasnorm
from benchmarks import models, training
from benchmarks.config import Config
from benchmarks.report import Section, Table, Target
from benchmarks.sn_cost import batches
from benchmarks.timing import ratios, time_interleaved
from kerasnorm import demo

# One multiply per kernel per step: the bound on what it may cost.
STEP_LIMIT = 1.01


def run(config: Config) -> Section:
    section = Section(
        "equalized_lr",
        "7. Equalized learning rate",
        "The discriminator of section 1, as it is and with "
        '`apply_normalization(d, "equalized_lr")` (each kernel stored as V '
        "and used as c * V), trained side by side as in section 1: "
        f"{config.steps} interleaved rounds after {config.warmup} warm-up "
        "steps, at both batch sizes; the ratio is the median of the "
        "per-round ratios. Then the demo's GAN (16x16 blobs, "
        "`kerasnorm.demo`) trained twice from the same seed, data and "
        f"latent vectors for {config.gan_steps} steps: its generator with "
        'ProGAN\'s PixelNorm (`"progan"`) and a plain discriminator, then '
        'both with equalized learning rate as well (`["progan", '
        '"equalized_lr"]` and `"equalized_lr"`, ProGAN\'s section 4 whole). '
        "The losses are the discriminator's (real and fake) and the "
        "generator's non-saturating loss, each the mean of the steps since "
        "the row before.",
    )
    rows = []
    for flavor in config.flavors:
        for batch in (config.batch, config.small_batch):
            ratio, timings = _step_cost(flavor, config, batch)
            section.data[f"{flavor}, batch {batch}"] = {
                "median_ms": {name: 1e3 * t.median for name, t in timings.items()},
                "ratio": ratio,
            }
            for name in timings:
                rows.append(
                    [flavor, batch, name, 1e3 * timings[name].median, ratio[name]]
                )
            section.targets.append(
                Target(
                    f"equalized LR step cost, batch {batch} ({flavor})",
                    ratio["equalized_lr"],
                    STEP_LIMIT,
                )
            )
    section.tables.append(
        Table(
            "Median discriminator step time and ratio to the plain model",
            ["Keras", "batch", "variant", "step (ms)", "ratio"],
            rows,
        )
    )
    curves = _training_curves(config)
    section.data["training"] = curves
    section.tables.append(
        Table(
            "The demo's GAN trained with and without equalized learning rate",
            [
                "steps",
                "D loss, PixelNorm only",
                "G loss, PixelNorm only",
                "D loss, + equalized LR",
                "G loss, + equalized LR",
            ],
            [
                [step, *without, *with_]
                for step, without, with_ in zip(
                    curves["steps"], curves["without"], curves["with"], strict=True
                )
            ],
        )
    )
    return section


def _step_cost(flavor: str, config: Config, batch: int):
    real, fake = batches(config, batch)
    plain = models.dcgan_discriminator(
        flavor, config.image_size, config.discriminator_widths
    )
    variants = {
        "none": plain,
        "equalized_lr": kerasnorm.apply_normalization(plain, "equalized_lr"),
    }
    steps = {}
    for name, model in variants.items():
        step = training.blocking(training.discriminator_step(model, flavor), real, fake)
        step()
        steps[name] = step
    timings = time_interleaved(steps, config.steps, config.warmup)
    return ratios(timings, "none"), timings


def _training_curves(config: Config) -> dict:
    """Mean losses over each stretch of `config.gan_steps`, without and with."""
    every = max(1, config.gan_steps // 10)
    curves = {"steps": list(range(every, config.gan_steps + 1, every))}
    for label, policies in (
        ("without", ("progan", None)),
        ("with", (["progan", "equalized_lr"], "equalized_lr")),
    ):
        keras.utils.set_random_seed(0)
        generator = demo.build_generator(keras)
        discriminator = demo.build_discriminator(keras)
        generator = kerasnorm.apply_normalization(generator, policies[0])
        if policies[1] is not None:
            discriminator = kerasnorm.apply_normalization(discriminator, policies[1])
        losses = [
            (d_loss, g_loss)
            for _, d_loss, g_loss in demo.train(
                generator, discriminator, config.gan_steps, seed=0
            )
        ]
        curves[label] = [
            [
                sum(loss[0] for loss in losses[end - every : end]) / every,
                sum(loss[1] for loss in losses[end - every : end]) / every,
            ]
            for end in curves["steps"]
        ]
    return curves
