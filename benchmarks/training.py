"""Train steps inside `tf.function`, the unit every cost section times."""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from benchmarks.models import keras_of


def discriminator_step(
    model,
    flavor: str,
    probe: Callable[[], list] | None = None,
    jit_compile: bool = False,
) -> Callable:
    """A compiled discriminator update: BCE on a real and a fake batch, Adam.

    Adam with learning rate 2e-4 and beta_1 0.5, as DCGAN and SNGAN train.
    Kernel constraints act inside `apply_gradients`.

    Args:
        model: The discriminator, returning one logit per image.
        flavor: The Keras of `model`.
        probe: Called inside the step after both forward passes and before
            the update, for values only visible then (Keras's own wrapper
            writes the kernel it uses into the layer during the call).
        jit_compile: Compile the step with XLA.

    Returns:
        `step(real, fake)` returning the loss and the probe's values.
    """
    keras = keras_of(flavor)
    optimizer = keras.optimizers.Adam(2e-4, beta_1=0.5)
    optimizer.build(model.trainable_variables)
    cross_entropy = keras.losses.BinaryCrossentropy(from_logits=True)

    @tf.function(jit_compile=jit_compile)
    def step(real, fake):
        with tf.GradientTape() as tape:
            real_logits = model(real, training=True)
            fake_logits = model(fake, training=True)
            loss = cross_entropy(tf.ones_like(real_logits), real_logits)
            loss += cross_entropy(tf.zeros_like(fake_logits), fake_logits)
        probed = probe() if probe else []
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(
            zip(gradients, model.trainable_variables, strict=True)
        )
        return loss, probed

    return step


def generator_step(model, flavor: str) -> Callable:
    """A compiled generator update: mean squared error to a fixed target, Adam.

    The loss stands in for a discriminator's: what is timed is the
    generator's forward and backward passes, where PixelNorm acts.

    Returns:
        `step(latents, target)` returning the loss.
    """
    keras = keras_of(flavor)
    optimizer = keras.optimizers.Adam(1e-3, beta_1=0.0, beta_2=0.99)
    optimizer.build(model.trainable_variables)

    @tf.function
    def step(latents, target):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(latents, training=True) - target))
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(
            zip(gradients, model.trainable_variables, strict=True)
        )
        return loss

    return step


def blocking(step: Callable, *args) -> Callable[[], float]:
    """A no-argument callable running `step(*args)` and waiting for its loss."""

    def run():
        result = step(*args)
        loss = result[0] if isinstance(result, tuple) else result
        return float(loss)

    return run
