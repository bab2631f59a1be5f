"""Spectral norm of kernels: matrix views and power iteration, in TensorFlow ops.

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

sigma is estimated by power iteration on a persistent right vector `v`
(length = columns), as in SNGAN's Algorithm 1: the vector is kept between
calls, so a few iterations per call keep it on the top singular direction.
"""

from __future__ import annotations

import math

import tensorflow as tf

from kerasnorm.errors import KerasNormValueError

LAYOUTS = ("dense", "transpose", "depthwise")

# Below this many iterations of a tolerance-driven loop the iterates of a
# freshly started vector are not trusted: the estimate can plateau between
# two close singular values before it climbs.
_MIN_CONVERGED_ITERATIONS = 3

# Warm starts are exact (eigendecomposition of the Gram matrix) when the
# matrix's smaller side is at most this; beyond, eigh costs seconds.
_EXACT_MAX_SIDE = 2048


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
        rank = len(kernel.shape)
        perm = [*list(range(rank - 2)), rank - 1, rank - 2]
        kernel = tf.transpose(kernel, perm)
    return tf.reshape(kernel, (rows, cols))


def initial_vector(cols: int, dtype=tf.float32) -> tf.Tensor:
    """A deterministic unit start vector with weight on every column.

    A constant vector can be orthogonal to the top singular vector of
    structured kernels; a fixed pseudo-random one almost never is, and keeps
    the estimate reproducible from run to run.
    """
    v = tf.random.stateless_normal((cols,), seed=(1234, 5678), dtype=dtype)
    return v / tf.norm(v)


def _normalize(x: tf.Tensor, eps: float) -> tf.Tensor:
    return x / tf.maximum(tf.norm(x), eps)


def left_vector(matrix: tf.Tensor, v: tf.Tensor, eps: float = 1e-12) -> tf.Tensor:
    """The unit left vector `normalize(matrix @ v)` paired with `v`."""
    return _normalize(tf.linalg.matvec(matrix, v), eps)


def power_iteration(
    matrix: tf.Tensor, v: tf.Tensor, n_iter: int, eps: float = 1e-12
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Runs `n_iter` steps of power iteration from the right vector `v`.

    Each step reads the matrix twice: `u = normalize(matrix @ v)`, then
    `v = normalize(matrix.T @ u)`. The norm before the last normalization is
    `u @ matrix @ v`, the estimate of sigma, at no extra read.

    Args:
        matrix: A 2-D tensor of shape (rows, cols).
        v: The current right singular vector estimate, shape (cols,).
        n_iter: Number of iterations, at least 1.
        eps: Floor on vector norms, so a zero matrix yields zero vectors
            instead of NaN.

    Returns:
        `(u, v, sigma)`: unit left and right vectors of shapes (rows,) and
        (cols,), and the estimate `u @ matrix @ v`.
    """
    for _ in range(n_iter):
        u = left_vector(matrix, v, eps)
        w = tf.linalg.matvec(matrix, u, transpose_a=True)
        sigma = tf.norm(w)
        v = w / tf.maximum(sigma, eps)
    return u, v, sigma


def sigma_of(matrix: tf.Tensor, u: tf.Tensor, v: tf.Tensor) -> tf.Tensor:
    """The Rayleigh quotient `u @ matrix @ v`, differentiable in the matrix.

    With `u` and `v` held constant (no gradient through them), its gradient
    with respect to the matrix is `outer(u, v)`: SNGAN's Algorithm 1.
    """
    return tf.tensordot(u, tf.linalg.matvec(matrix, v), 1)


def warm_start(matrix: tf.Tensor, eps: float = 1e-12) -> tf.Tensor:
    """The top right singular vector of `matrix`, to start tracking from.

    Spent once, when the state of a kernel is created, so that the first
    normalization is already accurate. Exact (an eigendecomposition of the
    smaller Gram matrix, in float64) when the smaller side of the matrix is
    at most `_EXACT_MAX_SIDE`; otherwise power iteration run to convergence.

    Returns:
        A unit vector of shape (cols,), in the matrix's dtype.
    """
    rows, cols = matrix.shape
    if min(rows, cols) > _EXACT_MAX_SIDE:
        start = initial_vector(cols, matrix.dtype)
        _, v, _ = converged_power_iteration(matrix, start, 1e-9, 5000, eps)
        return v
    wide = tf.cast(matrix, tf.float64)
    if cols <= rows:
        _, vectors = tf.linalg.eigh(tf.matmul(wide, wide, transpose_a=True))
        v = vectors[:, -1]
    else:
        _, vectors = tf.linalg.eigh(tf.matmul(wide, wide, transpose_b=True))
        v = tf.linalg.matvec(wide, vectors[:, -1], transpose_a=True)
    v = tf.cast(_normalize(v, eps), matrix.dtype)
    # A zero matrix has no direction: keep the usual start vector.
    return tf.cond(
        tf.reduce_any(matrix != 0),
        lambda: v,
        lambda: initial_vector(cols, matrix.dtype),
    )


def track(
    matrix: tf.Tensor,
    v: tf.Tensor,
    n_iter: int,
    tol: float | None = None,
    max_iter: int = 100,
    eps: float = 1e-12,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Moves the persistent vector `v` to the top singular direction of `matrix`.

    Runs `n_iter` iterations, or with `tol` set, iterates until sigma
    settles within `tol` (at most `max_iter` iterations). A zero `v` (left
    by a zero kernel) restarts from `initial_vector`.

    Returns:
        `(u, v, sigma)` as for `power_iteration`.
    """
    v = tf.cond(
        tf.reduce_any(v != 0),
        lambda: v,
        lambda: initial_vector(v.shape[0], v.dtype),
    )
    if tol is None:
        return power_iteration(matrix, v, n_iter, eps)
    return converged_power_iteration(matrix, v, tol, max_iter, eps)


def converged_power_iteration(
    matrix: tf.Tensor,
    v: tf.Tensor,
    tol: float,
    max_iter: int,
    eps: float = 1e-12,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Power iteration until sigma changes by less than `tol` (relative).

    Args:
        matrix: A 2-D tensor of shape (rows, cols).
        v: Start vector, shape (cols,).
        tol: Relative change of sigma between two iterations below which
            the loop stops.
        max_iter: Upper bound on the number of iterations.
        eps: Floor on vector norms.

    Returns:
        `(u, v, sigma)` as for `power_iteration`.
    """

    def cond(i, u, v, previous, current):
        unsettled = tf.abs(current - previous) > tol * tf.maximum(current, eps)
        return tf.logical_and(
            i < max_iter,
            tf.logical_or(i < _MIN_CONVERGED_ITERATIONS, unsettled),
        )

    def body(i, u, v, previous, current):
        u, v, sigma = power_iteration(matrix, v, 1, eps)
        return i + 1, u, v, current, sigma

    u, v, sigma = power_iteration(matrix, v, 1, eps)
    _, u, v, _, sigma = tf.while_loop(
        cond, body, (tf.constant(1), u, v, tf.zeros_like(sigma), sigma)
    )
    return u, v, sigma
