"""The demo: normalize a small GAN with kerasnorm and train it on generated data.

Run it with `kerasnorm demo` (or `python -m kerasnorm`). It builds a
ProGAN-style generator and a DCGAN-style discriminator for 16x16 images,
prints the plans of the `progan` and `sngan` policies, applies them, and
trains the GAN for a few hundred steps on images of soft blobs it draws
itself (nothing is downloaded), checking the spectral norm of every
discriminator kernel with an SVD after each step. It writes into its output
folder:

- `generator.svg`, `discriminator.svg`: each model's graph with the layers
  the plan changes or inserts highlighted (`Plan.plot`);
- `sigma.svg`: each normalized kernel's spectral norm over the steps;
- `samples.png`: 64 generated images.
"""

from __future__ import annotations

import os
import pathlib
import sys
import time

import numpy as np

import kerasnorm
from kerasnorm import plotting
from kerasnorm.adapters import active_adapter
from kerasnorm.callbacks import SpectralNormMonitor

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
        steps: Training steps.
        out: The folder to write the pictures into; created if needed.
        seed: Seeds the data, the weights and the latent vectors.

    Returns:
        The spectral norm of each discriminator kernel after training.
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
        written.append(plan.plot(out / f"{name}.svg"))
    generator = kerasnorm.apply_normalization(generator, "progan")
    discriminator = kerasnorm.apply_normalization(discriminator, "sngan")

    # A custom training loop drives the monitor as `fit` would.
    monitor = SpectralNormMonitor.for_model(discriminator)
    monitor.set_model(discriminator)
    sigmas: dict[str, list[float]] = {}
    # A bar redrawn in place on a terminal; in a log file, one line at the end.
    progress = keras.utils.Progbar(
        steps,
        verbose=1 if sys.stdout.isatty() else 2,
        stateful_metrics=["d_loss", "g_loss"],
    )
    start = time.perf_counter()
    for index, d_loss, g_loss in train(generator, discriminator, steps, seed=seed):
        logs: dict[str, float] = {}
        monitor.on_train_batch_end(index - 1, logs)
        for key, sigma in logs.items():
            sigmas.setdefault(key.removeprefix("sigma/"), []).append(sigma)
        progress.update(index, [("d_loss", d_loss), ("g_loss", g_loss)])
    print(f"trained {steps} steps in {time.perf_counter() - start:.1f} s")

    sigma_chart = plotting.plot_lines(
        out / "sigma.svg",
        sigmas,
        title="Spectral norm of each discriminator kernel after each step (SVD)",
        x_label="training step",
        y_label="sigma",
    )
    latent = np.random.default_rng(seed + 1).standard_normal((64, LATENT))
    samples = plotting.save_image_grid(
        out / "samples.png",
        generator.predict_on_batch(latent.astype("float32")),
        columns=8,
    )
    written += [sigma_chart, samples]
    final = {name: values[-1] for name, values in sigmas.items()}
    for name, sigma in final.items():
        print(f"discriminator {name}: spectral norm {sigma:.5f} (target 1)")
    worst = max(abs(sigma - 1.0) for sigma in final.values())
    print(f"largest deviation from 1: {worst:.1e}")
    print(f"wrote {', '.join(path.name for path in written)} into {out}{os.sep}")
    return final
