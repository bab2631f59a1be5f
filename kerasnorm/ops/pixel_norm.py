"""Pixel normalization (ProGAN), as a TensorFlow op with an analytic gradient."""

from __future__ import annotations

import tensorflow as tf

_HALF_DTYPES = (tf.float16, tf.bfloat16)


def pixel_norm(x: tf.Tensor, axis: int = -1, epsilon: float = 1e-8) -> tf.Tensor:
    """Scales every feature vector along `axis` to unit root-mean-square.

    Computes `x / sqrt(mean(x**2, axis) + epsilon)`, the formula of ProGAN
    (Karras et al., 2018). Half-precision inputs are computed in float32 and
    cast back, because `epsilon=1e-8` and the squares of small activations
    underflow to zero in float16.

    The gradient is written out by hand: with `y = x * r` and
    `r = rsqrt(mean(x**2) + epsilon)`, `dL/dx = r * (g - y * mean(g * y))`.
    That reuses the forward pass's `y` and `r` instead of differentiating
    through the square, the mean and the rsqrt one op at a time.

    Args:
        x: A floating-point tensor.
        axis: The axis holding the channels. Defaults to `-1`.
        epsilon: Added to the mean square before the square root; keeps a
            zero vector at zero. Defaults to `1e-8`.

    Returns:
        A tensor of the same shape and dtype as `x`.

    Example:

    >>> y = pixel_norm(tf.constant([[3.0, 4.0]]))
    >>> round(float(tf.reduce_mean(y**2)), 6)
    1.0
    """
    x = tf.convert_to_tensor(x)
    if x.dtype in _HALF_DTYPES:
        return tf.cast(_pixel_norm(tf.cast(x, tf.float32), axis, epsilon), x.dtype)
    return _pixel_norm(x, axis, epsilon)


def _pixel_norm(x: tf.Tensor, axis: int, epsilon: float) -> tf.Tensor:
    @tf.custom_gradient
    def forward(x):
        inv_rms = tf.math.rsqrt(
            tf.reduce_mean(tf.square(x), axis=axis, keepdims=True) + epsilon
        )
        y = x * inv_rms

        def backward(grad):
            projection = tf.reduce_mean(grad * y, axis=axis, keepdims=True)
            return inv_rms * (grad - y * projection)

        return y, backward

    return forward(x)
