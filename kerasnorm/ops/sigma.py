"""Tracking the largest singular value of a matrix that changes a little per step.

Spectral normalization needs sigma, the largest singular value of a kernel's
matrix view (rows x cols), after every optimizer step. SNGAN keeps one
singular vector and spends one power iteration per step; that is cheap, but
when another singular value rises past the tracked one (common in the first
tens of steps of a GAN discriminator, whose top singular values start close
together) a few power iterations take many steps to notice.

kerasnorm keeps the top `block` right singular vectors instead (the state,
`block` x cols, rows orthonormal) and each step runs block Golub-Kahan-Lanczos
bidiagonalization from them:

    V_0 = state
    for k = 0, 1, ...:
        U_k = orthonormalize(V_k M^T, against U_0..U_k-1)   one pass over M
        Y_k = U_k M                                          one pass over M
        Ritz values: eigenvalues of [Y_0..Y_k][Y_0..Y_k]^T  (small matrix)
        V_k+1 = orthonormalize(Y_k, against V_0..V_k)

The top Ritz value theta approaches sigma from below far faster than power
iteration does (Krylov acceleration), and the block catches a second
direction before it overtakes the first. The new state is the top `block`
right Ritz vectors. Iteration stops when the Ritz pair's residual
`||M v - theta u||` falls below `tol * theta` (or after a fixed count).

Each iteration reads the matrix twice, like one power iteration; both reads
are matrix products with `block` rows, which cost about what a matrix-vector
product costs, because reading the matrix dominates.

Every function here is pure TensorFlow and runs eagerly or in a graph.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from kerasnorm.ops import layouts

# Rows whose norm falls below this fraction of the norm before
# orthogonalization are treated as lying in the span already (exhausted
# Krylov space, rank-deficient matrix) and zeroed.
_DEPENDENT = 1e-5

# Warm starts are exact (eigendecomposition of the smaller Gram matrix) when
# the matrix's smaller side is at most this; beyond, eigh costs seconds.
_EXACT_MAX_SIDE = 2048


class Estimate(NamedTuple):
    """The result of one `track` call.

    Attributes:
        sigma: The top Ritz value, a lower bound of the largest singular value.
        u: Unit left Ritz vector, shape (rows,).
        v: Unit right Ritz vector, shape (cols,); `u @ M @ v == sigma`.
        state: The new state: top right Ritz vectors as rows, (block, cols).
        iterations: How many iterations ran.
        converged: Whether the residual reached the tolerance (always True
            for a fixed number of iterations).
    """

    sigma: tf.Tensor
    u: tf.Tensor
    v: tf.Tensor
    state: tf.Tensor
    iterations: tf.Tensor
    converged: tf.Tensor


def block_size(rows: int, cols: int, block: int) -> int:
    """The block actually used for a (rows, cols) matrix: at most its rank."""
    return max(1, min(block, rows, cols))


def initial_state(cols: int, block: int, dtype=tf.float32) -> tf.Tensor:
    """A fixed pseudo-random orthonormal block, shape (block, cols).

    A constant start can be orthogonal to the top singular vectors of a
    structured kernel; a fixed random one almost never is, and keeps runs
    reproducible.
    """
    start = tf.random.stateless_normal((block, cols), seed=(1234, 5678), dtype=dtype)
    return _orthonormal_rows(start, tf.norm(start))


def warm_start(matrix: tf.Tensor, block: int = 2) -> tf.Tensor:
    """The top `block` right singular vectors of `matrix`, as rows.

    Spent once, when the state of a kernel is created, so that the first
    normalization is already accurate. Exact (an eigendecomposition of the
    smaller Gram matrix, in float64) when the smaller side of the matrix is
    at most 2048; otherwise `track` run to a tight tolerance.

    Returns:
        A (block, cols) tensor in the matrix's dtype, rows orthonormal (a
        zero row where the matrix has fewer non-zero singular values).
    """
    rows, cols = matrix.shape
    block = block_size(rows, cols, block)
    if min(rows, cols) > _EXACT_MAX_SIDE:
        start = initial_state(cols, block, matrix.dtype)
        return track(matrix, start, n_iter=2, tol=1e-6, max_iter=64).state
    wide = tf.cast(matrix, tf.float64)
    if cols <= rows:
        values, vectors, finite = _eigh(tf.matmul(wide, wide, transpose_a=True))
        top = tf.transpose(tf.reverse(vectors[:, -block:], [1]))
    else:
        values, vectors, finite = _eigh(tf.matmul(wide, wide, transpose_b=True))
        left = tf.transpose(tf.reverse(vectors[:, -block:], [1]))
        top = _normalize_rows(tf.matmul(left, wide))
    values = tf.reverse(values[-block:], [0])
    keep = tf.logical_and(finite, values > _DEPENDENT**2 * tf.maximum(values[0], 0.0))
    top = tf.where(keep[:, None], top, tf.zeros_like(top))
    return tf.cast(top, matrix.dtype)


def track(
    matrix: tf.Tensor,
    state: tf.Tensor,
    n_iter: int = 1,
    tol: float | None = None,
    max_iter: int = 8,
    eps: float = 1e-12,
) -> Estimate:
    """Block Golub-Kahan-Lanczos from the previous top singular vectors.

    Args:
        matrix: The (rows, cols) matrix.
        state: The previous top right singular vectors, (block, cols), rows
            orthonormal or zero. An all-zero state (left by a zero matrix)
            restarts from `initial_state`.
        n_iter: Iterations to run at least (exactly, if `tol` is None).
        tol: Stop once the residual `||M v - sigma u||` is at most
            `tol * sigma`; None for a fixed `n_iter` iterations.
        max_iter: Iterations to run at most when `tol` is set.
        eps: sigma at or below this counts as zero.

    Returns:
        An `Estimate`.
    """
    block, cols = state.shape
    rows = matrix.shape[0]
    dtype = matrix.dtype
    steps = n_iter if tol is None else max(n_iter, max_iter)
    width = steps * block
    state = tf.cond(
        tf.reduce_any(state != 0),
        lambda: state,
        lambda: initial_state(cols, block, dtype),
    )

    def body(step, current, left, right, images, theta, residual):
        place = (step * block + tf.range(block))[:, None]
        preimage = tf.matmul(current, matrix, transpose_b=True)
        left_block = _orthonormal_rows(_deflate(preimage, left), tf.norm(preimage))
        left = tf.tensor_scatter_nd_update(left, place, left_block)
        image = tf.matmul(left_block, matrix)
        images = tf.tensor_scatter_nd_update(images, place, image)
        fresh = _deflate(image, right)
        if tol is not None:
            values, vectors, finite = _eigh(tf.matmul(images, images, transpose_b=True))
            theta = tf.sqrt(tf.maximum(values[-1], 0.0))
            # Only the newest block reaches outside the right Krylov space:
            # the residual is its share of the top Ritz vector's image.
            weights = tf.gather(vectors[:, -1], place[:, 0])
            residual = tf.norm(tf.linalg.matvec(fresh, weights, transpose_a=True))
            # A kernel that is not finite has nothing to converge to: stop.
            residual = tf.where(finite, residual, tf.zeros_like(residual))
        current = _orthonormal_rows(fresh, tf.norm(image))
        right = tf.tensor_scatter_nd_update(right, place + block, current)
        return step + 1, current, left, right, images, theta, residual

    def cond(step, current, left, right, images, theta, residual):
        more = step < steps
        if tol is not None:
            unsettled = tf.logical_or(step < n_iter, residual > tol * theta)
            more = tf.logical_and(more, unsettled)
        return more

    loop_vars = (
        tf.constant(0),
        state,
        tf.zeros((width, rows), dtype),
        tf.concat([state, tf.zeros((width, cols), dtype)], 0),
        tf.zeros((width, cols), dtype),
        tf.constant(0.0, dtype),
        tf.constant(float("inf"), dtype),
    )
    iterations, _, left, _, images, theta, residual = tf.while_loop(
        cond, body, loop_vars
    )
    converged = tf.constant(True) if tol is None else residual <= tol * theta

    values, vectors, finite = _eigh(tf.matmul(images, images, transpose_b=True))
    weights = tf.reverse(vectors[:, -block:], [1])
    thetas = tf.sqrt(tf.maximum(tf.reverse(values[-block:], [0]), 0.0))
    # sigma of a matrix holding inf or NaN is NaN, and its state is empty,
    # so that the next step, on a finite matrix again, solves it afresh.
    sigma = tf.where(finite, thetas[0], tf.constant(float("nan"), dtype))
    kept = tf.logical_and(finite, thetas > tf.maximum(_DEPENDENT * thetas[0], eps))
    new_state = (
        tf.matmul(weights, images, transpose_a=True)
        / tf.where(kept, thetas, tf.ones_like(thetas))[:, None]
    )
    new_state = tf.where(kept[:, None], new_state, tf.zeros_like(new_state))
    new_state = _orthonormal_rows(new_state, tf.norm(new_state))
    u = tf.linalg.matvec(left, weights[:, 0], transpose_a=True)
    return Estimate(sigma, u, new_state[0], new_state, iterations, converged)


def right_estimate(
    matrix: tf.Tensor, v: tf.Tensor, eps: float = 1e-12
) -> tuple[tf.Tensor, tf.Tensor]:
    """`(u, sigma)` for a fixed right vector: `sigma = ||M v||`, `u = M v / sigma`.

    One pass over the matrix, no state change: the estimate used at
    inference, at least as large as the `sigma` of the `track` call that
    produced `v`.
    """
    image = tf.linalg.matvec(matrix, v)
    sigma = tf.norm(image)
    return image / tf.maximum(sigma, eps), sigma


def divide_by_sigma(
    kernel: tf.Tensor,
    sigma: tf.Tensor,
    u: tf.Tensor,
    v: tf.Tensor,
    layout: str = "dense",
    eps: float = 1e-12,
) -> tf.Tensor:
    """`kernel / sigma`, differentiated as SNGAN's Algorithm 1.

    `sigma = u @ M @ v` for the kernel's matrix view `M` (see
    `kerasnorm.ops.layouts`), with `u` and `v` held constant, so the
    gradient with respect to the kernel is
    `(g - <g, kernel / sigma> * outer(u, v)) / sigma` for an upstream
    gradient `g`. Written out rather than left to autodiff, it takes one
    elementwise pass, one reduction and one rank-one product over
    kernel-sized tensors, and no second product to recompute sigma.

    Args:
        kernel: The kernel, in its own layout.
        sigma: Its largest singular value, as tracked.
        u: Unit left singular vector, shape (rows,) of the matrix view.
        v: Unit right singular vector, shape (cols,).
        layout: The kernel's layout, one of `kerasnorm.ops.layouts.LAYOUTS`.
        eps: A sigma at or below this counts as zero: the kernel is
            returned as it is, and so is the gradient.

    Returns:
        The normalized kernel, of the kernel's shape and dtype.
    """
    sigma, u, v = (tf.stop_gradient(x) for x in (sigma, u, v))
    live = sigma > eps
    scale = tf.where(live, 1.0 / tf.maximum(sigma, eps), tf.ones_like(sigma))

    @tf.custom_gradient
    def divide(kernel):
        normalized = kernel * scale

        def gradient(upstream):
            # Not tensordot: on CPU its matrix product is three times slower.
            along = tf.reduce_sum(upstream * normalized)
            weight = tf.where(live, -along * scale, tf.zeros_like(along))
            correction = tf.matmul((weight * u)[:, None], v[None, :])
            return upstream * scale + layouts.matrix_kernel(
                correction, kernel.shape, layout
            )

        return normalized, gradient

    return divide(kernel)


def _eigh(gram: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """`eigh` of a small Gram matrix, and whether it was finite.

    `tf.linalg.eigh` raises on a matrix holding inf or NaN ("Self-adjoint
    eigen decomposition was not successful"), which would stop a train step
    inside the tracker instead of letting the user's own checks (a NaN loss,
    `TerminateOnNaN`) see the bad kernel. A matrix that is not finite is
    replaced by zeros; the flag says so.
    """
    finite = tf.reduce_all(tf.math.is_finite(gram))
    values, vectors = tf.linalg.eigh(tf.where(finite, gram, tf.zeros_like(gram)))
    return values, vectors, finite


def _deflate(rows: tf.Tensor, basis: tf.Tensor) -> tf.Tensor:
    """`rows` minus their projection on the row space of `basis`, done twice.

    Classical Gram-Schmidt run twice keeps the Krylov bases orthogonal to
    float32 precision; `basis` may hold zero rows (unused buffer space).
    """
    for _ in range(2):
        rows = rows - tf.matmul(tf.matmul(rows, basis, transpose_b=True), basis)
    return rows


def _orthonormal_rows(rows: tf.Tensor, scale: tf.Tensor) -> tf.Tensor:
    """Gram-Schmidt on a few rows.

    A row whose norm, once the earlier rows are taken out, is below
    `_DEPENDENT * scale` (`scale`: the norm the rows had before any
    projection) is zeroed rather than blown up to a unit vector of noise.
    """
    done = []
    for index in range(rows.shape[0]):
        row = rows[index]
        for previous in done:
            row = row - tf.tensordot(row, previous, 1) * previous
        norm = tf.norm(row)
        done.append(
            tf.where(
                norm > _DEPENDENT * scale,
                row / tf.maximum(norm, 1e-30),
                tf.zeros_like(row),
            )
        )
    return tf.stack(done)


def _normalize_rows(rows: tf.Tensor) -> tf.Tensor:
    norms = tf.norm(rows, axis=1, keepdims=True)
    return rows / tf.maximum(norms, 1e-30)
