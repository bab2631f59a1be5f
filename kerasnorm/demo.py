"""The demo: the same small GAN trained without and with kerasnorm, side by side.

Run it with `kerasnorm demo` (or `python -m kerasnorm`). It builds a
ProGAN-style generator and a DCGAN-style discriminator for 16x16 images,
prints the plans of the `progan` and `sngan` policies, applies them, and
trains both GANs, the one as built and the normalized one, from the same
weights on the same batches of images of soft blobs it draws itself
(nothing is downloaded), computing the spectral norm of every discriminator
kernel with an SVD after each step. It writes into its output folder:

- `generator.svg`, `discriminator.svg`: each model's graph with the layers
  the plan changes or inserts highlighted (`kerasnorm.plot_plan`);
- `sigma.svg`: each discriminator kernel's spectral norm over the steps,
  without kerasnorm (free to grow) and with it (held at 1), side by side;
- `samples.png`: real images, and the two generators' images from the same
  latent vectors, side by side;
- `report.txt`: what the pictures show, in numbers (also printed).
"""

from __future__ import annotations

import os
import pathlib
import sys
import textwrap
import time

import numpy as np

import kerasnorm
from kerasnorm import pictures
from kerasnorm.adapters import active_adapter

LATENT = 32
IMAGE = 16


def build_generator(keras):
    """z (32) -> 4x4x32 -> two upsampling conv blocks -> 16x16x3 tanh image."""
    layers = keras.layers
    z = keras.Input((LATENT,), name="z")
    x = layers.Dense(4 * 4 * 32, name="fc")(z)
    x = layers.LeakyReLU(0.2, name="fc_act")(x)
    x = layers.Reshape((4, 4, 32), name="reshape")(x)
    for block, filters in ((1, 32), (2, 16)):
        x = layers.UpSampling2D(name=f"up{block}")(x)
        x = layers.Conv2D(filters, 3, padding="same", name=f"conv{block}")(x)
        x = layers.LeakyReLU(0.2, name=f"act{block}")(x)
    image = layers.Conv2D(3, 1, activation="tanh", name="to_rgb")(x)
    return keras.Model(z, image, name="generator")


def build_discriminator(keras):
    """16x16x3 image -> two stride-2 convs -> a score."""
    layers = keras.layers
    image = keras.Input((IMAGE, IMAGE, 3), name="image")
    x = layers.Conv2D(32, 4, strides=2, padding="same", name="conv1")(image)
    x = layers.LeakyReLU(0.2, name="act1")(x)
    x = layers.Conv2D(64, 4, strides=2, padding="same", name="conv2")(x)
    x = layers.LeakyReLU(0.2, name="act2")(x)
    x = layers.Flatten(name="flatten")(x)
    score = layers.Dense(1, name="score")(x)
    return keras.Model(image, score, name="discriminator")


def blob_images(count: int, seed: int = 0) -> np.ndarray:
    """Images of one soft coloured blob each, in [-1, 1]."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(np.arange(IMAGE), np.arange(IMAGE), indexing="ij"), -1)
    centres = rng.uniform(4, IMAGE - 4, size=(count, 1, 1, 2))
    radius = rng.uniform(2, 4, size=(count, 1, 1, 1))
    blob = np.exp(-np.sum((grid - centres) ** 2, -1, keepdims=True) / (2 * radius**2))
    colour = rng.uniform(-1, 1, size=(count, 1, 1, 3))
    return (blob * colour + (1 - blob) * -0.8).astype("float32")


def train(generator, discriminator, steps: int, batch: int = 32, seed: int = 0):
    """Trains the GAN with the non-saturating loss; yields (step, d_loss, g_loss).

    Each step trains the discriminator on a real and a generated batch,
    then the generator through the frozen discriminator, with
    `train_on_batch`: the same code on every backend, compiled as each
    compiles `fit` (jit on JAX).
    """
    keras = kerasnorm.adapter_for(generator).keras
    rng = np.random.default_rng(seed)
    images = blob_images(2048, seed)
    discriminator.compile(
        optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
    )
    # The discriminator is frozen inside the stack, whose optimizer then
    # sees only the generator's weights (tf-keras fixes this at compile
    # time, Keras 3 at each call: the flag is set before each).
    discriminator.trainable = False
    stack = keras.Sequential([generator, discriminator], name="gan")
    stack.compile(
        optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
    )
    real_and_fake = np.concatenate([np.ones((batch, 1)), np.zeros((batch, 1))])
    for index in range(1, steps + 1):
        real = images[rng.integers(0, len(images), batch)]
        z = rng.standard_normal((batch, LATENT)).astype("float32")
        fake = generator.predict_on_batch(z)
        discriminator.trainable = True
        d_loss = discriminator.train_on_batch(
            np.concatenate([real, fake]), real_and_fake
        )
        discriminator.trainable = False
        z = rng.standard_normal((batch, LATENT)).astype("float32")
        g_loss = stack.train_on_batch(z, np.ones((batch, 1)))
        yield index, 2 * float(d_loss), float(g_loss)


def run(
    steps: int = 300, out: str | os.PathLike = "kerasnorm-demo", seed: int = 0
) -> dict[str, float]:
    """Runs the demo (see the module docstring), printing as it goes.

    Args:
        steps: Training steps of each GAN.
        out: The folder to write the pictures and the report into; created
            if needed.
        seed: Seeds the data, the weights and the latent vectors.

    Returns:
        The spectral norm of each kernel of the normalized discriminator
        after training.
    """
    keras = active_adapter().keras
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    generator, discriminator = build_generator(keras), build_discriminator(keras)
    plans = {
        "generator": kerasnorm.plan(generator, "progan"),
        "discriminator": kerasnorm.plan(discriminator, "sngan"),
    }
    written = []
    for name, plan in plans.items():
        print(plan, end="\n\n")
        written.append(kerasnorm.plot_plan(plan, out / f"{name}.svg"))
    # The rewrite keeps every weight and leaves the originals alone: both
    # GANs start from the same weights.
    gans = {
        WITHOUT: (generator, discriminator),
        WITH: (
            kerasnorm.apply_normalization(generator, "progan"),
            kerasnorm.apply_normalization(discriminator, "sngan"),
        ),
    }
    sigmas = {label: {} for label in gans}
    losses = {}
    # A bar redrawn in place on a terminal; in a log file, one line at the end.
    progress = keras.utils.Progbar(
        steps,
        verbose=1 if sys.stdout.isatty() else 2,
        stateful_metrics=["largest sigma, without", "largest sigma, with"],
    )
    start = time.perf_counter()
    # The same seed gives both the same batches and latent vectors.
    runs = {label: train(*gan, steps, seed=seed) for label, gan in gans.items()}
    for index in range(1, steps + 1):
        largest = []
        for label, run_ in runs.items():
            _, *losses[label] = next(run_)
            for name, sigma in kernel_sigmas(gans[label][1]).items():
                sigmas[label].setdefault(name, []).append(sigma)
            largest.append(max(values[-1] for values in sigmas[label].values()))
        progress.update(
            index,
            list(
                zip(
                    ["largest sigma, without", "largest sigma, with"],
                    largest,
                    strict=True,
                )
            ),
        )
    print(f"trained {steps} steps of each GAN in {time.perf_counter() - start:.1f} s")

    written.append(
        pictures.plot_line_panels(
            out / "sigma.svg",
            sigmas,
            title="Spectral norm of each discriminator kernel after each step (SVD)",
            x_label="training step",
            y_label="sigma",
        )
    )
    latent = np.random.default_rng(seed + 1).standard_normal((16, LATENT))
    samples = {"real images": blob_images(16, seed + 2)}
    for label, (trained_generator, _) in gans.items():
        samples[label] = trained_generator.predict_on_batch(latent.astype("float32"))
    written.append(pictures.plot_image_grids(out / "samples.png", samples))
    text = report(sigmas, losses, steps)
    (out / "report.txt").write_text(text)
    written.append(out / "report.txt")
    print(text, end="")
    print(f"wrote {', '.join(path.name for path in written)} into {out}{os.sep}")
    return {name: values[-1] for name, values in sigmas[WITH].items()}


WITHOUT = "without kerasnorm"
WITH = "with kerasnorm"


def kernel_sigmas(model) -> dict[str, float]:
    """The largest singular value of each layer's kernel, by SVD in float64.

    Of the kernel's matrix view, `(-1, filters)`, as spectral normalization
    sees it; for the normalized discriminator, the kernel after the
    constraint.
    """
    return {
        layer.name: float(
            np.linalg.norm(
                np.asarray(layer.kernel, "float64").reshape(-1, layer.kernel.shape[-1]),
                2,
            )
        )
        for layer in model.layers
        if hasattr(layer, "kernel")
    }


def report(
    sigmas: dict[str, dict[str, list[float]]],
    losses: dict[str, list[float]],
    steps: int,
) -> str:
    """What the demo showed, in a few lines of text.

    Args:
        sigmas: GAN label -> kernel name -> spectral norm after each step.
        losses: GAN label -> the last step's discriminator and generator
            losses.
        steps: The training steps of each GAN.

    Returns:
        The report, a table of each kernel's spectral norm after the first
        and the last step and at its largest, then the losses.
    """
    names = list(sigmas[WITHOUT])
    width = max(len(name) for name in ["kernel", *names])
    intro = (
        f"The same GAN trained {steps} steps twice, from the same weights on "
        "the same batches: as built, and normalized by kerasnorm's progan "
        "(generator) and sngan (discriminator) policies. "
        "Spectral norm of each discriminator kernel (SVD): after the first "
        "step -> after the last (largest over the steps)."
    )
    lines = [
        *textwrap.wrap(intro, 76),
        "",
        f"{'kernel':<{width}}  {WITHOUT:<28}  {WITH}",
    ]
    for name in names:
        cells = [
            f"{values[0]:.5f} -> {values[-1]:.5f} ({max(values):.5f})"
            for values in (sigmas[label][name] for label in (WITHOUT, WITH))
        ]
        lines.append(f"{name:<{width}}  {cells[0]:<28}  {cells[1]}")
    worst = max(
        abs(sigma - 1.0) for values in sigmas[WITH].values() for sigma in values
    )
    lines += [
        "",
        f"{WITH}: every kernel within {worst:.1e} of 1 at every step.",
        *(
            f"last losses {label}: discriminator {d:.3f}, generator {g:.3f}"
            for label, (d, g) in losses.items()
        ),
    ]
    return "\n".join(lines) + "\n"
