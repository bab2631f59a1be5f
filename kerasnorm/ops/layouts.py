"""Kernel layouts: the 2-D matrix whose spectral norm is a kernel's sigma.

Spectral normalization divides a kernel by its largest singular value sigma,
taken of a 2-D matrix view of the kernel. As in PyTorch, the view always
puts the output channels in the columns and everything else in the rows:

| layout        | kernel shape                 | matrix shape            |
|---------------|------------------------------|-------------------------|
| `"dense"`     | `(..., in, out)`             | `(prod(...) * in, out)` |
| `"transpose"` | `(..., out, in)`             | `(prod(...) * in, out)` |
| `"depthwise"` | `(..., in, multiplier)`      | `(prod(...), in * multiplier)` |

`"dense"` serves Dense, Conv1D/2D/3D, Embedding `(vocab, dim)` and the
pointwise kernel of a separable convolution; `"transpose"` the transposed
convolutions, whose output axis is the second to last; `"depthwise"` the
depthwise kernels.
"""

from __future__ import annotations

import math

import tensorflow as tf

from kerasnorm.errors import KerasNormValueError

LAYOUTS = ("dense", "transpose", "depthwise")


def check_layout(layout: str) -> str:
    """Returns `layout` if it is one of `LAYOUTS`, else raises ValueError."""
    if layout not in LAYOUTS:
        raise KerasNormValueError(
            f"Unknown kernel `layout` {layout!r}. Expected one of: "
            f"{', '.join(LAYOUTS)}."
        )
    return layout


def matrix_shape(kernel_shape, layout: str = "dense") -> tuple[int, int]:
    """The (rows, columns) of the matrix view of a kernel of `kernel_shape`."""
    shape = [int(d) for d in kernel_shape]
    check_layout(layout)
    if len(shape) < 2:
        raise KerasNormValueError(
            f"A kernel needs rank 2 or more for spectral normalization. "
            f"Received shape {tuple(shape)}."
        )
    if layout == "depthwise":
        cols = shape[-2] * shape[-1]
    elif layout == "transpose":
        cols = shape[-2]
    else:
        cols = shape[-1]
    return math.prod(shape) // cols, cols


def kernel_matrix(kernel: tf.Tensor, layout: str = "dense") -> tf.Tensor:
    """The 2-D matrix whose largest singular value is the kernel's sigma.

    Args:
        kernel: A kernel tensor of rank 2 or more.
        layout: How the kernel stores its output channels; one of
            `"dense"`, `"transpose"`, `"depthwise"` (see the module
            docstring). Defaults to `"dense"`.

    Returns:
        A tensor of shape `matrix_shape(kernel.shape, layout)`.
    """
    rows, cols = matrix_shape(kernel.shape, layout)
    if layout == "transpose":
        kernel = tf.transpose(kernel, _last_two_swapped(len(kernel.shape)))
    return tf.reshape(kernel, (rows, cols))


def matrix_kernel(matrix: tf.Tensor, kernel_shape, layout: str = "dense") -> tf.Tensor:
    """The kernel whose matrix view is `matrix`: the inverse of `kernel_matrix`.

    Args:
        matrix: A tensor of shape `matrix_shape(kernel_shape, layout)`.
        kernel_shape: The shape of the kernel to return.
        layout: As for `kernel_matrix`.

    Returns:
        A tensor of shape `kernel_shape`.
    """
    shape = [int(d) for d in kernel_shape]
    check_layout(layout)
    if layout != "transpose":
        return tf.reshape(matrix, shape)
    perm = _last_two_swapped(len(shape))
    swapped = tf.reshape(matrix, [shape[axis] for axis in perm])
    return tf.transpose(swapped, perm)


def _last_two_swapped(rank: int) -> list[int]:
    """The axis permutation swapping a transposed kernel's out and in axes."""
    return [*range(rank - 2), rank - 1, rank - 2]
