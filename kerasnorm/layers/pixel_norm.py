"""PixelNorm: the layer logic shared by both Kerases."""

from __future__ import annotations

from kerasnorm.errors import KerasNormTypeError, KerasNormValueError
from kerasnorm.ops.pixel_norm import pixel_norm


class PixelNormBase:
    """Pixel normalization: every feature vector scaled to unit RMS.

    For each position, divides the vector of channels by its root mean
    square: `y = x / sqrt(mean(x**2, axis) + epsilon)`. ProGAN uses it in the
    generator in place of batch normalization, on the latent vector and after
    every hidden activation, to stop the magnitudes of generator and
    discriminator from escalating. The layer has no weights.

    Half-precision inputs (a `mixed_float16` or `mixed_bfloat16` policy) are
    normalized in float32 and cast back, so `epsilon` does not underflow and
    no inf or NaN appears. A zero vector stays zero.

    Args:
        epsilon: Added to the mean square before the square root. Must be
            positive. Defaults to `1e-8`.
        axis: The channel axis: `-1` for channels_last, `1` for
            channels_first. Defaults to `-1`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        A tensor of rank 2 (a batch of latent vectors) to 5 (volumes).

    Output shape:
        Same as the input.

    Example:

    >>> layer = kerasnorm.PixelNorm()
    >>> y = layer(np.array([[3.0, 4.0]], dtype="float32"))
    >>> np.round(np.asarray(y, "float64"), 4).tolist()
    [[0.8485, 1.1314]]

    Reference:
        Karras et al., "Progressive Growing of GANs for Improved Quality,
        Stability, and Variation", ICLR 2018, section 4.2.
    """

    def __init__(self, epsilon: float = 1e-8, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)):
            raise KerasNormTypeError(
                f"`epsilon` must be a positive number. Received: epsilon={epsilon!r}"
            )
        if not epsilon > 0:
            raise KerasNormValueError(
                f"`epsilon` must be positive, or a zero input divides by zero. "
                f"Received: epsilon={epsilon!r}"
            )
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise KerasNormTypeError(f"`axis` must be an int. Received: axis={axis!r}")
        self.epsilon = float(epsilon)
        self.axis = axis
        self.supports_masking = True

    def build(self, input_shape):
        rank = len(input_shape)
        if rank < 2:
            raise KerasNormValueError(
                f"{type(self).__name__} needs inputs of rank 2 or more (batch "
                f"and channels). Received input_shape={tuple(input_shape)}"
            )
        if not -rank <= self.axis < rank or self.axis % rank == 0:
            raise KerasNormValueError(
                f"`axis` must name a channel axis of the rank-{rank} input, not "
                f"the batch axis. Received: axis={self.axis}"
            )
        super().build(input_shape)

    def call(self, inputs):
        return pixel_norm(inputs, axis=self.axis, epsilon=self.epsilon)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = {"epsilon": self.epsilon, "axis": self.axis}
        return {**super().get_config(), **config}
