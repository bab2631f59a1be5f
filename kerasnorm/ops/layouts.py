"""Kernel layouts: the 2-D matrix whose spectral norm is a kernel's sigma.

Spectral normalization divides a kernel by its largest singular value sigma,
taken of the matrix of the linear map the layer computes with it: the axes
the layer sums its inputs over make the rows, the axes that index its
outputs the columns (as in PyTorch, the output channels are the columns).
A layout names that split.

| layout            | kernel shape            | matrix shape                   |
|-------------------|-------------------------|--------------------------------|
| `"dense"`         | `(..., in, out)`        | `(prod(...) * in, out)`        |
| `"transpose"`     | `(..., out, in)`        | `(prod(...) * in, out)`        |
| `"depthwise"`     | `(..., in, multiplier)` | `(prod(...), in * multiplier)` |
| `"abc,cde->abde"` | `(c, d, e)`             | `(c, d * e)`                   |

The last row is an einsum equation, whose second operand is the kernel.

`"dense"` serves Dense, Conv1D/2D/3D, Embedding `(vocab, dim)`, the
pointwise kernel of a separable convolution and the kernels and recurrent
kernels of RNN cells (all gates' columns side by side); `"transpose"` the
transposed convolutions, whose output axis is the second to last;
`"depthwise"` the depthwise kernels. An `EinsumDense` equation (the
projections of `MultiHeadAttention` are EinsumDense layers) says it for any
other kernel: its axes summed with the input are the rows, its axes that
appear in the output the columns, each in the kernel's own order. A kernel
axis that is in both the input and the output would make the map block
diagonal, not a matrix product; such equations are refused.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any

from keras import ops

from kerasnorm.errors import KerasNormValueError

Tensor = Any  # A tensor of the Keras 3 backend in use.

LAYOUTS = ("dense", "transpose", "depthwise")

_EQUATION = re.compile(r"^([a-z.]+),([a-z]+)->([a-z.]+)$")


def check_layout(layout: str) -> str:
    """Returns `layout` if it is one of `LAYOUTS` or a usable einsum equation.

    Raises:
        KerasNormValueError: For anything else, saying why.
    """
    if layout in LAYOUTS:
        return layout
    if isinstance(layout, str) and "->" in layout:
        _einsum_axes(layout)
        return layout
    raise KerasNormValueError(
        f"Unknown kernel `layout` {layout!r}. Expected one of: "
        f"{', '.join(LAYOUTS)}, or an EinsumDense equation such as "
        "'abc,cde->abde'."
    )


def matrix_axes(layout: str, kernel_shape) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The kernel axes that make the rows and the columns of the matrix view.

    Args:
        layout: One of `LAYOUTS`, or an einsum equation.
        kernel_shape: The kernel's shape.

    Returns:
        `(rows, columns)`, two tuples of axes that together list every axis
        of the kernel once.
    """
    check_layout(layout)
    rank = len(kernel_shape)
    if rank < 2:
        raise KerasNormValueError(
            f"A kernel needs rank 2 or more for spectral normalization. "
            f"Received shape {tuple(int(d) for d in kernel_shape)}."
        )
    leading = tuple(range(rank - 2))
    if layout == "dense":
        return (*leading, rank - 2), (rank - 1,)
    if layout == "transpose":
        return (*leading, rank - 1), (rank - 2,)
    if layout == "depthwise":
        return leading, (rank - 2, rank - 1)
    rows, cols = _einsum_axes(layout)
    if len(rows) + len(cols) != rank:
        raise KerasNormValueError(
            f"Layout {layout!r} describes a kernel of rank {len(rows) + len(cols)}, "
            f"not {rank}."
        )
    return rows, cols


@functools.lru_cache(maxsize=256)
def _einsum_axes(equation: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    match = _EQUATION.match(equation.replace(" ", ""))
    if match is None:
        raise KerasNormValueError(
            f"Cannot read the einsum layout {equation!r}: expected "
            "'<input>,<kernel>-><output>' in lowercase letters, such as "
            "'abc,cde->abde'."
        )
    inputs, kernel, outputs = match.groups()
    rows, cols = [], []
    for axis, letter in enumerate(kernel):
        summed, kept = letter in inputs, letter in outputs
        if summed == kept:
            where = "in both the input and the output" if kept else "nowhere else"
            raise KerasNormValueError(
                f"Kernel axis {letter!r} of {equation!r} appears {where}: the "
                "kernel is not one matrix mapping inputs to outputs, so its "
                "spectral norm is not defined by a layout."
            )
        (rows if summed else cols).append(axis)
    return tuple(rows), tuple(cols)


def matrix_shape(kernel_shape, layout: str = "dense") -> tuple[int, int]:
    """The (rows, columns) of the matrix view of a kernel of `kernel_shape`."""
    shape = [int(d) for d in kernel_shape]
    rows, cols = matrix_axes(layout, shape)
    return math.prod(shape[a] for a in rows), math.prod(shape[a] for a in cols)


def fan_in(kernel_shape, layout: str = "dense") -> int:
    """How many inputs each output unit of a kernel sees: its matrix view's rows.

    `kh * kw * in` for a Conv2D kernel, transposed or not (the kernel's size
    divided by its output channels); `kh * kw` for a depthwise kernel, each
    of whose outputs reads one input channel.

    Example:

    >>> fan_in((3, 3, 16, 8), "transpose")  # (kh, kw, out, in): 3 * 3 * 8
    72
    """
    return matrix_shape(kernel_shape, layout)[0]


def kernel_matrix(kernel: Tensor, layout: str = "dense") -> Tensor:
    """The 2-D matrix whose largest singular value is the kernel's sigma.

    Args:
        kernel: A kernel tensor of rank 2 or more.
        layout: How the kernel maps inputs to outputs; one of `LAYOUTS` or
            an einsum equation (see the module docstring). Defaults to
            `"dense"`.

    Returns:
        A tensor of shape `matrix_shape(kernel.shape, layout)`.
    """
    shape = matrix_shape(kernel.shape, layout)
    rows, cols = matrix_axes(layout, kernel.shape)
    order = [*rows, *cols]
    if order != sorted(order):
        kernel = ops.transpose(kernel, order)
    return ops.reshape(kernel, shape)


def matrix_kernel(matrix: Tensor, kernel_shape, layout: str = "dense") -> Tensor:
    """The kernel whose matrix view is `matrix`: the inverse of `kernel_matrix`.

    Args:
        matrix: A tensor of shape `matrix_shape(kernel_shape, layout)`.
        kernel_shape: The shape of the kernel to return.
        layout: As for `kernel_matrix`.

    Returns:
        A tensor of shape `kernel_shape`.
    """
    shape = [int(d) for d in kernel_shape]
    rows, cols = matrix_axes(layout, shape)
    order = [*rows, *cols]
    permuted = ops.reshape(matrix, [shape[axis] for axis in order])
    if order == sorted(order):
        return permuted
    inverse = sorted(range(len(order)), key=order.__getitem__)
    return ops.transpose(permuted, inverse)
