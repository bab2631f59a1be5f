"""The models and baselines the benchmarks time, built in either Keras.

`flavor` is `"keras3"` or `"tf_keras"`; the Keras package comes from the
kerasnorm adapter of that name, so a model is always of the Keras whose
kerasnorm classes are used on it.
"""

from __future__ import annotations

import types

import numpy as np
import tensorflow as tf

from kerasnorm.adapters import adapter_for, keras3, tf_keras
from kerasnorm.layers.kernels import find_kernels
from kerasnorm.layers.tracking import Tracking
from kerasnorm.ops import layouts
from kerasnorm.ops import sigma as sigma_ops

FLAVORS = ("keras3", "tf_keras")
_ADAPTERS = {"keras3": keras3.ADAPTER, "tf_keras": tf_keras.ADAPTER}


def adapter(flavor: str):
    """The kerasnorm adapter of `flavor`; its `.keras` is the Keras package."""
    return _ADAPTERS[flavor]


def keras_of(flavor: str) -> types.ModuleType:
    """The Keras package of `flavor`: `keras` or `tf_keras`."""
    return _ADAPTERS[flavor].keras


def dcgan_discriminator(
    flavor: str,
    size: int = 64,
    widths: tuple[int, ...] = (64, 128, 256, 512),
    kernel_constraint=None,
    wrapper=None,
    seed: int = 0,
):
    """The DCGAN discriminator: strided 4x4 convolutions, LeakyReLU, one score.

    Args:
        flavor: `"keras3"` or `"tf_keras"`.
        size: Height and width of the input images.
        widths: Filters of the convolutions, one per halving of the size.
        kernel_constraint: A callable returning a fresh constraint for each
            kernel, or None.
        wrapper: A callable wrapping each kernel layer (e.g. Keras's
            `SpectralNormalization`), or None.
        seed: Seeds the kernel initializers, so every variant starts from
            the same weights.

    Returns:
        A functional model with kernels named `conv1`...`convN`, `score`.
    """
    keras = keras_of(flavor)
    keras.utils.set_random_seed(seed)
    wrap = wrapper or (lambda layer: layer)

    def constraint():
        return kernel_constraint() if kernel_constraint else None

    image = keras.Input((size, size, 3))
    x = image
    for index, filters in enumerate(widths, 1):
        conv = keras.layers.Conv2D(
            filters,
            4,
            strides=2,
            padding="same",
            kernel_constraint=constraint(),
            name=f"conv{index}",
        )
        x = keras.layers.LeakyReLU(0.2)(wrap(conv)(x))
    x = keras.layers.Flatten()(x)
    score = wrap(keras.layers.Dense(1, kernel_constraint=constraint(), name="score"))
    return keras.Model(image, score(x), name="discriminator")


def kernel_layer_names(model) -> list[str]:
    """Names of the layers of `model` holding a kernel, in order."""
    return [layer.name for layer in model.layers if layer.weights]


def progan_generator(
    flavor: str,
    size: int = 64,
    latent: int = 128,
    widths: tuple[int, ...] = (256, 256, 128, 64, 32),
    pixel_norm=None,
    seed: int = 1,
):
    """A ProGAN-style generator: PixelNorm on the latent and after every activation.

    From a 4x4 base, each stage doubles the resolution (nearest upsampling)
    and applies two 3x3 convolutions, each followed by LeakyReLU 0.2 and
    `pixel_norm`, as ProGAN's generator does; a 1x1 convolution maps to RGB.

    Args:
        flavor: `"keras3"` or `"tf_keras"`.
        size: Output height and width, a power of two from 4.
        latent: Size of the latent vector.
        widths: Filters per resolution, from 4x4 up; needs one entry per
            resolution up to `size`.
        pixel_norm: A callable returning a fresh normalization layer, or
            None for no normalization.
        seed: Seeds the kernel initializers.

    Returns:
        A functional model from `(latent,)` to `(size, size, 3)`.
    """
    keras = keras_of(flavor)
    keras.utils.set_random_seed(seed)

    def normalized(x):
        return pixel_norm()(x) if pixel_norm else x

    def conv_block(x, filters, kernel_size):
        x = keras.layers.Conv2D(filters, kernel_size, padding="same")(x)
        return normalized(keras.layers.LeakyReLU(0.2)(x))

    z = keras.Input((latent,))
    x = keras.layers.Dense(4 * 4 * widths[0])(normalized(z))
    x = normalized(keras.layers.LeakyReLU(0.2)(x))
    x = keras.layers.Reshape((4, 4, widths[0]))(x)
    x = conv_block(x, widths[0], 3)
    resolution, stage = 4, 1
    while resolution < size:
        x = keras.layers.UpSampling2D(2)(x)
        x = conv_block(x, widths[stage], 3)
        x = conv_block(x, widths[stage], 3)
        resolution, stage = resolution * 2, stage + 1
    image = keras.layers.Conv2D(3, 1)(x)
    return keras.Model(z, image, name="generator")


def dense_chain(flavor: str, n_layers: int, width: int = 8):
    """A chain of `n_layers` Dense layers, for how rewriting scales."""
    keras = keras_of(flavor)
    inputs = keras.Input((width,))
    x = inputs
    for index in range(n_layers):
        x = keras.layers.Dense(width, name=f"dense{index}")(x)
    return keras.Model(inputs, x, name="chain")


def generator_chain(flavor: str, n_activations: int, width: int = 8):
    """A generator of `n_activations` 1x1 convolutions, each followed by LeakyReLU.

    The latent is reshaped to a 1x1 image and a last 1x1 convolution maps
    to the output, so the `progan` policy inserts a PixelNorm on the latent
    and after every activation: `n_activations + 1` insertions. Each
    activation's nearest `data_format` is the convolution just before it,
    so finding the PixelNorm's channel axis costs the same at every depth.
    """
    keras = keras_of(flavor)
    latent = keras.Input((width,), name="z")
    x = keras.layers.Reshape((1, 1, width), name="to_image")(latent)
    for index in range(n_activations):
        x = keras.layers.Conv2D(width, 1, name=f"conv{index}")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"act{index}")(x)
    image = keras.layers.Conv2D(width, 1, name="to_rgb")(x)
    return keras.Model(latent, image, name="generator")


def application(flavor: str, name: str):
    """A `keras.applications` model without pretrained weights."""
    keras = keras_of(flavor)
    return getattr(keras.applications, name)(weights=None)


def clone_with_weights(model):
    """The baseline of a rewrite: `clone_model` and `set_weights`."""
    keras = keras_of("tf_keras" if tf_keras.ADAPTER.owns(model) else "keras3")
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def clone_with_states(model):
    """The floor of an SN rewrite: `clone_with_weights`, then the one thing
    any rewrite that keeps sigma's state between steps must add, a state
    variable per kernel (empty, made as kerasnorm makes its own)."""
    clone = clone_with_weights(model)
    adapter = adapter_for(clone)
    tracking = Tracking()
    for layer in clone.layers:
        for kernel in find_kernels(layer, adapter):
            shape = layouts.matrix_shape(kernel.variable.shape, kernel.layout)
            adapter.constraint_state(tracking.empty_state(shape))
    return clone


def seed_spectral_norm(flavor: str, power_iterations: int = 5):
    """The seed article's SN constraint, with its `call` renamed `__call__`.

    Every call starts from a fresh random `u` and runs `power_iterations`
    power iterations on `W` viewed as `(-1, out)`, then returns
    `W / sigma`. Nothing is kept between steps.
    """
    keras = keras_of(flavor)

    class SeedSpectralNorm(keras.constraints.Constraint):
        def __call__(self, w):
            matrix = tf.reshape(w, (-1, w.shape[-1]))
            u = tf.random.normal((1, w.shape[-1]), dtype=w.dtype)
            for _ in range(power_iterations):
                v = tf.math.l2_normalize(tf.matmul(u, matrix, transpose_b=True))
                u = tf.math.l2_normalize(tf.matmul(v, matrix))
            sigma = tf.squeeze(tf.matmul(tf.matmul(v, matrix), u, transpose_b=True))
            return w / sigma

    return SeedSpectralNorm()


def power_iteration_constraint(flavor: str):
    """A naive SN constraint: one power iteration per step from a kept `u`.

    What SNGAN's algorithm costs as a constraint, with nothing added: the
    floor a tracked constraint is measured against. `u` is made at the
    first call, which falls in the first trace of the train step (where
    `tf.function` allows creating variables).
    """
    keras = keras_of(flavor)

    class PowerIterationSpectralNorm(keras.constraints.Constraint):
        def __init__(self):
            self.u = None

        def __call__(self, w):
            matrix = tf.reshape(w, (-1, w.shape[-1]))
            if self.u is None:
                start = tf.math.l2_normalize(tf.random.normal((1, w.shape[-1])))
                self.u = tf.Variable(start, trainable=False)
            v = tf.math.l2_normalize(tf.matmul(self.u, matrix, transpose_b=True))
            image = tf.matmul(v, matrix)
            sigma = tf.norm(image)
            self.u.assign(image / sigma)
            return w / sigma

    return PowerIterationSpectralNorm()


def power_iteration_wrapper(flavor: str):
    """PyTorch's `spectral_norm` as a Keras wrapper, for the DCGAN layers.

    Each training call runs one power iteration from a kept `u`, then uses
    `W / sigma` with `sigma = v^T W u` differentiated in `W` (u and v held
    constant), as `torch.nn.utils.spectral_norm` does: Keras's own wrapper
    plus the gradient through sigma, the inherent cost kerasnorm's wrapper
    is measured against. Serves Conv2D ('same' padding) and Dense. The
    kernel a call used stays in `used_kernel`, a tensor of the step being
    traced.
    """
    keras = keras_of(flavor)

    class PowerIterationSpectralNormalization(keras.layers.Layer):
        def __init__(self, layer):
            super().__init__(name=f"{layer.name}_sn")
            self.layer = layer

        def build(self, input_shape):
            self.layer.build(input_shape)
            outputs = self.layer.kernel.shape[-1]
            start = np.random.default_rng(0).standard_normal((1, outputs))
            self.u = self.add_weight(
                name="u",
                shape=(1, outputs),
                initializer=keras.initializers.Constant(start / np.linalg.norm(start)),
                trainable=False,
            )

        def call(self, inputs, training=None):
            kernel = tf.convert_to_tensor(self.layer.kernel)
            matrix = tf.reshape(kernel, (-1, kernel.shape[-1]))
            u = tf.stop_gradient(tf.convert_to_tensor(self.u))
            v = tf.stop_gradient(
                tf.math.l2_normalize(tf.matmul(u, matrix, transpose_b=True))
            )
            image = tf.matmul(v, matrix)
            if training:
                u = tf.stop_gradient(tf.math.l2_normalize(image))
                self.u.assign(u)
            normalized = kernel / tf.reduce_sum(image * u)
            # Read by section 3 inside the same traced step, after the call.
            self.used_kernel = normalized
            return _apply_with(self.layer, inputs, normalized)

    return PowerIterationSpectralNormalization


def given_sigma_wrapper(flavor: str):
    """A wrapper that differentiates sigma and does nothing else: the floor.

    sigma and its singular vectors are solved once, at build (by SVD), and
    every call uses `W / sigma` with kerasnorm's gradient through sigma
    (`divide_by_sigma`, `u` and `v` held constant): no estimate of sigma,
    no state to update, no conditional. What it costs over the plain layer
    is what any wrapper that differentiates sigma must spend on top of its
    estimate, on kernel-sized tensors, in the forward and backward pass of
    every call. Serves Conv2D ('same' padding) and Dense.
    """
    keras = keras_of(flavor)

    class GivenSigmaSpectralNormalization(keras.layers.Layer):
        def __init__(self, layer):
            super().__init__(name=f"{layer.name}_given_sigma")
            self.layer = layer

        def build(self, input_shape):
            self.layer.build(input_shape)
            kernel = np.asarray(self.layer.kernel)
            left, values, right = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]))
            # NumPy, so that they become constants of whichever graph calls.
            self.given = [
                np.float32(values[0]),
                left[:, 0].astype(np.float32),
                right[0].astype(np.float32),
            ]

        def call(self, inputs, training=None):
            kernel = tf.convert_to_tensor(self.layer.kernel)
            sigma, u, v = (tf.constant(value) for value in self.given)
            divided = sigma_ops.divide_by_sigma(kernel, sigma, u, v)
            return _apply_with(self.layer, inputs, divided)

    return GivenSigmaSpectralNormalization


def _apply_with(layer, inputs, kernel):
    """A DCGAN layer (Conv2D with 'same' padding, or Dense) run on `kernel`."""
    if len(kernel.shape) == 4:
        outputs = tf.nn.conv2d(inputs, kernel, layer.strides, "SAME")
    else:
        outputs = tf.matmul(inputs, kernel)
    # bias_add, as Keras's layers call it, which TensorFlow fuses into the
    # convolution.
    return tf.nn.bias_add(outputs, layer.bias)


def seed_pixel_norm(flavor: str, epsilon: float = 1e-8):
    """The seed article's PixelNorm: the formula as a plain layer."""
    keras = keras_of(flavor)

    class SeedPixelNorm(keras.layers.Layer):
        def call(self, inputs):
            mean_square = tf.reduce_mean(inputs**2, axis=-1, keepdims=True)
            return inputs / tf.sqrt(mean_square + epsilon)

    return SeedPixelNorm()


def real_images(count: int, size: int, seed: int = 123) -> np.ndarray:
    """Smooth synthetic images in [-1, 1]: colour gradients and Gaussian blobs."""
    rng = np.random.default_rng(seed)
    axis = np.linspace(-1.0, 1.0, size)
    yy, xx = np.meshgrid(axis, axis, indexing="ij")
    images = np.empty((count, size, size, 3), np.float32)
    for index in range(count):
        slope = rng.normal(size=(2, 3)) * 0.5
        image = xx[..., None] * slope[0] + yy[..., None] * slope[1]
        for _ in range(rng.integers(2, 6)):
            center = rng.uniform(-0.8, 0.8, 2)
            radius = rng.uniform(0.1, 0.4)
            blob = np.exp(
                -((xx - center[0]) ** 2 + (yy - center[1]) ** 2) / (2 * radius**2)
            )
            image = image + blob[..., None] * rng.uniform(-1.5, 1.5, 3)
        images[index] = np.tanh(image)
    return images


def fake_images(count: int, size: int, seed: int = 456) -> np.ndarray:
    """Noise-like images in [-1, 1], lightly smoothed and shifted."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(count, size, size, 3))
    noise = (
        noise
        + np.roll(noise, 1, 1)
        + np.roll(noise, 1, 2)
        + np.roll(noise, (1, 1), (1, 2))
    ) / 2.0
    return np.clip(0.6 * noise + 0.3, -1.0, 1.0).astype(np.float32)
