"""Pixel normalization (ProGAN), as a `keras.ops` function with an analytic gradient."""

from __future__ import annotations

from typing import Any

from keras import ops

Tensor = Any  # A tensor of the Keras 3 backend in use.

_HALF_DTYPES = ("float16", "bfloat16")


def pixel_norm(x: Tensor, axis: int = -1, epsilon: float = 1e-8) -> Tensor:
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

    >>> y = pixel_norm(ops.convert_to_tensor([[3.0, 4.0]]))
    >>> round(float(ops.mean(y**2)), 6)
    1.0
    """
    x = ops.convert_to_tensor(x)
    dtype = ops.dtype(x)
    if dtype in _HALF_DTYPES:
        return ops.cast(_pixel_norm(ops.cast(x, "float32"), axis, epsilon), dtype)
    return _pixel_norm(x, axis, epsilon)


def _pixel_norm(x: Tensor, axis: int, epsilon: float) -> Tensor:
    @ops.custom_gradient
    def forward(x):
        inv_rms = ops.rsqrt(ops.mean(ops.square(x), axis=axis, keepdims=True) + epsilon)
        y = x * inv_rms

        def backward(*args, upstream=None):
            # TensorFlow and JAX pass the upstream gradient by position,
            # PyTorch by keyword after the forward's inputs.
            if upstream is None:
                (upstream,) = args
            projection = ops.mean(upstream * y, axis=axis, keepdims=True)
            return inv_rms * (upstream - y * projection)

        return y, backward

    return forward(x)
