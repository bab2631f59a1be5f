"""The demo: normalize a small GAN with kerasnorm and train it on generated data.

Run it with `python -m kerasnorm`. It builds a ProGAN-style generator and a
DCGAN-style discriminator for 16x16 images, prints the plans of the `progan`
and `sngan` policies, applies them, and trains the GAN for a few hundred
steps on images of soft blobs it draws itself (nothing is downloaded). At the
end it checks, with an SVD, that every discriminator kernel left training
with spectral norm 1.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import tensorflow as tf

import kerasnorm
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


def spectral_norms(model) -> dict[str, float]:
    """The largest singular value of each kernel of `model`, by SVD."""
    norms = {}
    for layer in model.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is not None:
            matrix = np.asarray(kernel).reshape(-1, kernel.shape[-1])
            norms[layer.name] = float(np.linalg.svd(matrix, compute_uv=False)[0])
    return norms


def train(generator, discriminator, steps: int, batch: int = 32, seed: int = 0):
    """Trains the GAN with the non-saturating loss; yields (step, d_loss, g_loss)."""
    keras = kerasnorm.adapter_for(generator).keras
    data = tf.data.Dataset.from_tensor_slices(blob_images(2048, seed))
    data = iter(data.shuffle(2048, seed=seed).repeat().batch(batch))
    g_opt = keras.optimizers.Adam(2e-4, beta_1=0.5)
    d_opt = keras.optimizers.Adam(2e-4, beta_1=0.5)
    bce = keras.losses.BinaryCrossentropy(from_logits=True)

    @tf.function
    def step(real):
        z = tf.random.normal((batch, LATENT))
        with tf.GradientTape() as d_tape, tf.GradientTape() as g_tape:
            fake = generator(z, training=True)
            real_score = discriminator(real, training=True)
            fake_score = discriminator(fake, training=True)
            d_loss = bce(tf.ones_like(real_score), real_score) + bce(
                tf.zeros_like(fake_score), fake_score
            )
            g_loss = bce(tf.ones_like(fake_score), fake_score)
        d_vars = discriminator.trainable_variables
        g_vars = generator.trainable_variables
        d_opt.apply_gradients(zip(d_tape.gradient(d_loss, d_vars), d_vars, strict=True))
        g_opt.apply_gradients(zip(g_tape.gradient(g_loss, g_vars), g_vars, strict=True))
        return d_loss, g_loss

    for index in range(1, steps + 1):
        d_loss, g_loss = step(next(data))
        yield index, float(d_loss), float(g_loss)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kerasnorm", description=__doc__)
    parser.add_argument("--steps", type=int, default=300, help="training steps")
    args = parser.parse_args(argv)

    keras = active_adapter().keras
    tf.random.set_seed(0)
    generator, discriminator = build_generator(keras), build_discriminator(keras)
    print(kerasnorm.plan(generator, "progan"), end="\n\n")
    print(kerasnorm.plan(discriminator, "sngan"), end="\n\n")
    generator = kerasnorm.apply_normalization(generator, "progan")
    discriminator = kerasnorm.apply_normalization(discriminator, "sngan")

    start = time.perf_counter()
    for index, d_loss, g_loss in train(generator, discriminator, args.steps):
        if index % 50 == 0 or index == args.steps:
            print(f"step {index:4d}  d_loss {d_loss:.3f}  g_loss {g_loss:.3f}")
    print(f"trained {args.steps} steps in {time.perf_counter() - start:.1f} s")
    norms = spectral_norms(discriminator)
    for name, sigma in norms.items():
        print(f"discriminator {name}: spectral norm {sigma:.5f} (target 1)")
    worst = max(abs(sigma - 1.0) for sigma in norms.values())
    print(f"largest deviation from 1: {worst:.1e}")
    return 0
