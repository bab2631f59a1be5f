"""Linear operators whose largest singular value `kerasnorm.ops.sigma` tracks.

The tracker never needs a kernel's matrix itself, only its products with
blocks of rows: `rows @ M` (the operator applied) and `rows @ M^T` (its
adjoint). A dense matrix gives both by a matrix product. A convolution on a
fixed input shape is a linear map too, from the flattened input to the
flattened output, and the products are the convolution itself and its
adjoint, the gradient of the convolution with respect to its input. Its
largest singular value is the convolution's operator norm: the Lipschitz
constant of the layer (bias aside), which the largest singular value of the
reshaped kernel does not bound.

| kernel layout | the layer                       | operator                     |
|---------------|---------------------------------|------------------------------|
| `"dense"`     | Conv1D/2D/3D, pointwise kernels | `ops.conv`                   |
| `"transpose"` | Conv1D/2D/3DTranspose           | `ops.conv_transpose`         |
| `"depthwise"` | DepthwiseConv1D/2D              | `ops.depthwise_conv`         |

Rows are flattened samples: `(k, prod(input_shape))` in, `(k,
prod(output_shape))` out. The adjoint is taken by the backend's own
differentiation (a vector-Jacobian product at zero, exact for a linear
map), so it matches the forward in every padding, stride, dilation and
group count without reconstructing the transposed convolution's padding.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from collections.abc import Callable
from typing import Any

import keras
from keras import ops

from kerasnorm.errors import KerasNormValueError

Tensor = Any  # A tensor of the Keras 3 backend in use.

PADDINGS = ("valid", "same", "causal")


@dataclasses.dataclass(frozen=True)
class ConvGeometry:
    """Where a convolution applies its kernel: everything but the kernel.

    Attributes:
        input_shape: One sample's shape, batch axis left out, in
            `data_format` order: `(height, width, channels)` for a
            channels-last Conv2D.
        strides: One stride per spatial axis.
        padding: `"valid"`, `"same"` or `"causal"` (Conv1D only).
        dilation_rate: One dilation per spatial axis.
        data_format: `"channels_last"` or `"channels_first"`.
        output_padding: A transposed convolution's `output_padding`, or None.

    Example:

    >>> geometry = ConvGeometry((8, 8, 3), strides=(2, 2), padding="same")
    >>> geometry.rank
    2
    """

    input_shape: tuple[int, ...]
    strides: tuple[int, ...] | None = None
    padding: str = "valid"
    dilation_rate: tuple[int, ...] | None = None
    data_format: str = "channels_last"
    output_padding: tuple[int, ...] | None = None

    def __post_init__(self):
        shape = tuple(self.input_shape)
        if len(shape) < 2 or not all(
            isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape
        ):
            raise KerasNormValueError(
                "A convolution's operator norm needs one sample's input shape, "
                "spatial axes and channels, every size known and positive. "
                f"Received: input_shape={self.input_shape!r}"
            )
        rank = len(shape) - 1
        set_ = object.__setattr__
        set_(self, "input_shape", shape)
        set_(self, "strides", _per_axis("strides", self.strides, rank))
        set_(
            self, "dilation_rate", _per_axis("dilation_rate", self.dilation_rate, rank)
        )
        if self.output_padding is not None:
            set_(
                self,
                "output_padding",
                _per_axis("output_padding", self.output_padding, rank, minimum=0),
            )
        if self.padding not in PADDINGS:
            raise KerasNormValueError(
                f"`padding` must be one of {', '.join(PADDINGS)}. "
                f"Received: padding={self.padding!r}"
            )
        if self.padding == "causal" and rank != 1:
            raise KerasNormValueError("Causal padding is for 1-D convolutions only.")
        if self.data_format not in ("channels_last", "channels_first"):
            raise KerasNormValueError(
                "`data_format` must be 'channels_last' or 'channels_first'. "
                f"Received: data_format={self.data_format!r}"
            )

    @property
    def rank(self) -> int:
        """The number of spatial axes."""
        return len(self.input_shape) - 1

    @classmethod
    def of_layer(cls, layer, input_shape) -> ConvGeometry:
        """The geometry of a Keras convolution layer called on `input_shape`.

        Args:
            layer: A convolution layer of either Keras (its config has
                `strides`, `padding`, `dilation_rate`, `data_format`).
            input_shape: Its input's shape, with or without the batch axis.
        """
        config = layer.get_config()
        shape = tuple(input_shape)
        rank = len(config["strides"])
        if len(shape) == rank + 2:
            shape = shape[1:]
        return cls(
            tuple(shape),
            strides=tuple(config["strides"]),
            padding=config["padding"],
            dilation_rate=tuple(config["dilation_rate"]),
            data_format=config.get("data_format") or "channels_last",
            output_padding=config.get("output_padding"),
        )

    def get_config(self) -> dict:
        config = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}

    @classmethod
    def from_config(cls, config: dict) -> ConvGeometry:
        return cls(
            **{
                key: tuple(value) if isinstance(value, list) else value
                for key, value in config.items()
            }
        )


def _per_axis(name: str, value, rank: int, minimum: int = 1) -> tuple[int, ...]:
    if value is None:
        value = 1 if minimum else 0
    if isinstance(value, int):
        value = (value,) * rank
    value = tuple(value)
    if len(value) != rank or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in value
    ):
        raise KerasNormValueError(
            f"`{name}` must be {rank} int(s) of at least {minimum}. "
            f"Received: {name}={value!r}"
        )
    return value


class LinearOperator(abc.ABC):
    """A linear map `x -> x @ M`, known by its products with blocks of rows.

    Attributes:
        shape: `(rows, cols)` of `M`: the input and output sizes.
        dtype: The dtype of the products.
    """

    shape: tuple[int, int]
    dtype: str

    @abc.abstractmethod
    def forward(self, rows: Tensor) -> Tensor:
        """`rows @ M`: (k, rows) to (k, cols)."""

    @abc.abstractmethod
    def adjoint(self, rows: Tensor) -> Tensor:
        """`rows @ M^T`: (k, cols) to (k, rows)."""


class ConvOperator(LinearOperator):
    """A convolution with a fixed kernel, on inputs of a fixed shape.

    Args:
        kernel: The kernel, in the layer's own shape.
        layout: `"dense"` (a convolution), `"transpose"` (a transposed
            convolution) or `"depthwise"`.
        geometry: A `ConvGeometry`.

    Example:

    >>> kernel = np.ones((3, 3, 1, 1), "float32")
    >>> conv = ConvOperator(kernel, "dense", ConvGeometry((4, 4, 1), padding="same"))
    >>> conv.shape
    (16, 16)
    """

    def __init__(self, kernel: Tensor, layout: str, geometry: ConvGeometry):
        if layout not in _OPS:
            raise KerasNormValueError(
                f"A convolution's operator norm serves the layouts {sorted(_OPS)}. "
                f"Received: layout={layout!r}"
            )
        self.kernel = ops.convert_to_tensor(kernel)
        self.layout = layout
        self.geometry = geometry
        self.dtype = ops.dtype(self.kernel)
        self.output_shape = output_shape(tuple(self.kernel.shape), layout, geometry)
        self.shape = (math.prod(geometry.input_shape), math.prod(self.output_shape))

    def kernel_gradient(self, u: Tensor, v: Tensor) -> Tensor:
        """The gradient of `u @ M @ v` with respect to the kernel.

        `u @ M @ v` is the convolution of the input `u` paired with the
        output `v`, so its gradient is the kernel's gradient of that
        convolution with the upstream gradient `v`. For a matrix it would
        be `outer(u, v)`.

        Args:
            u: (rows,), an input sample flattened.
            v: (cols,), an output sample flattened.

        Returns:
            A tensor of the kernel's shape.
        """
        sample = ops.reshape(u, (1, *self.geometry.input_shape))
        upstream = ops.reshape(v, (1, *self.output_shape))
        return _pullback(
            lambda kernel: _OPS[self.layout](sample, kernel, self.geometry),
            self.kernel,
            upstream,
        )

    def forward(self, rows):
        x = ops.reshape(rows, (-1, *self.geometry.input_shape))
        return ops.reshape(self._apply(x), (-1, self.shape[1]))

    def adjoint(self, rows):
        cotangent = ops.reshape(rows, (-1, *self.output_shape))
        blank = ops.zeros((cotangent.shape[0], *self.geometry.input_shape), self.dtype)
        return ops.reshape(
            _pullback(self._apply, blank, cotangent), (-1, self.shape[0])
        )

    def _apply(self, x):
        return _OPS[self.layout](x, self.kernel, self.geometry)


def operator_shape(
    kernel_shape: tuple[int, ...], layout: str, geometry: ConvGeometry
) -> tuple[int, int]:
    """`(rows, cols)` of the convolution's matrix: its input and output sizes."""
    return (
        math.prod(geometry.input_shape),
        math.prod(output_shape(kernel_shape, layout, geometry)),
    )


def output_shape(
    kernel_shape: tuple[int, ...], layout: str, geometry: ConvGeometry
) -> tuple[int, ...]:
    """One sample's output shape of the convolution, batch axis left out.

    By Keras's own rules for each padding (those of its convolution layers'
    `compute_output_shape`).
    """
    channels_last = geometry.data_format == "channels_last"
    sizes = geometry.input_shape[:-1] if channels_last else geometry.input_shape[1:]
    channels = geometry.input_shape[-1 if channels_last else 0]
    output_padding = geometry.output_padding or (None,) * geometry.rank
    spatial = []
    for size, kernel, stride, dilation, extra in zip(
        sizes,
        kernel_shape[:-2],
        geometry.strides,
        geometry.dilation_rate,
        output_padding,
        strict=True,
    ):
        span = (kernel - 1) * dilation + 1
        if layout != "transpose":
            if geometry.padding == "valid":
                spatial.append((size - span) // stride + 1)
            else:  # same, causal
                spatial.append(-(-size // stride))
        elif geometry.padding == "valid":
            extra = max(span, stride) - span if extra is None else extra
            spatial.append((size - 1) * stride + span + extra)
        elif extra is None:
            spatial.append(size * stride)
        else:
            spatial.append((size - 1) * stride + span % 2 + extra)
    if layout == "transpose":
        channels = kernel_shape[-2]
    elif layout == "depthwise":
        channels *= kernel_shape[-1]
    else:
        channels = kernel_shape[-1]
    if any(size < 1 for size in spatial):
        raise KerasNormValueError(
            f"The convolution leaves no output on an input of shape "
            f"{geometry.input_shape}."
        )
    return (*spatial, channels) if channels_last else (channels, *spatial)


def _conv(x, kernel, geometry: ConvGeometry):
    padding = geometry.padding
    if padding == "causal":
        # Causal: everything on the left, as Keras's Conv1D pads.
        left = geometry.dilation_rate[0] * (kernel.shape[0] - 1)
        axis = 1 if geometry.data_format == "channels_last" else 2
        widths = [(0, 0)] * 3
        widths[axis] = (left, 0)
        x = ops.pad(x, widths)
        padding = "valid"
    return ops.conv(
        x,
        kernel,
        strides=geometry.strides,
        padding=padding,
        data_format=geometry.data_format,
        dilation_rate=geometry.dilation_rate,
    )


def _conv_transpose(x, kernel, geometry: ConvGeometry):
    return ops.conv_transpose(
        x,
        kernel,
        strides=geometry.strides,
        padding=geometry.padding,
        output_padding=geometry.output_padding,
        data_format=geometry.data_format,
        dilation_rate=geometry.dilation_rate,
    )


def _depthwise(x, kernel, geometry: ConvGeometry):
    return ops.depthwise_conv(
        x,
        kernel,
        strides=geometry.strides,
        padding=geometry.padding,
        data_format=geometry.data_format,
        dilation_rate=geometry.dilation_rate,
    )


_OPS = {"dense": _conv, "transpose": _conv_transpose, "depthwise": _depthwise}
CONV_LAYOUTS = tuple(_OPS)


def _pullback(function: Callable, at: Tensor, cotangent: Tensor) -> Tensor:
    """The vector-Jacobian product of `function` at `at` with `cotangent`.

    For a linear `function` it is the adjoint applied to `cotangent`,
    whatever `at` is; the forward value is not used, and compiled steps
    drop it.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(at)
            result = function(at)
        return tape.gradient(result, at, output_gradients=cotangent)
    if backend == "jax":
        import jax

        _, pull = jax.vjp(function, at)
        return pull(cotangent)[0]
    # PyTorch: the one other backend kerasnorm runs on (see
    # kerasnorm.adapters.keras3).
    import torch

    with torch.enable_grad():
        at = at.detach().requires_grad_(True)
        (gradient,) = torch.autograd.grad(function(at), at, cotangent)
    return gradient.detach()
