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
product costs, because reading the matrix dominates. The first iteration,
the only one most steps run, skips orthonormalizing U_0: its Ritz pairs come
from the small Gram matrices of V_0 M^T and V_0 M^T M (`_first_iteration`).

Every function here is written in `keras.ops`, so it runs on each Keras 3
backend (TensorFlow, JAX, PyTorch), eagerly or compiled; tf-keras models
run it on the TensorFlow backend. There, `track` is traced once for all
kernels of a kind, whatever their sizes (`kerasnorm.ops.shared`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import keras
import numpy as np
from keras import ops

from kerasnorm.ops import layouts, shared
from kerasnorm.ops.operators import ConvOperator, LinearOperator

Tensor = Any  # A tensor of the Keras 3 backend in use.

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

    sigma: Tensor
    u: Tensor
    v: Tensor
    state: Tensor
    iterations: Tensor
    converged: Tensor


def block_size(rows: int, cols: int, block: int) -> int:
    """The block actually used for a (rows, cols) matrix: at most its rank."""
    return max(1, min(block, rows, cols))


def initial_state(cols: int, block: int, dtype: str = "float32") -> Tensor:
    """A fixed pseudo-random orthonormal block, shape (block, cols).

    A constant start can be orthogonal to the top singular vectors of a
    structured kernel; a fixed random one almost never is, and keeps runs
    reproducible. Drawn by NumPy, it is a constant of any traced step.
    """
    start = np.random.default_rng(1234).standard_normal((cols, block))
    rows = np.linalg.qr(start)[0].T
    return ops.convert_to_tensor(rows, dtype=dtype)


def warm_start(matrix: Tensor, block: int = 2) -> Tensor:
    """The top `block` right singular vectors of `matrix`, as rows.

    Spent once, when the state of a kernel is created, so that the first
    normalization is already accurate. Exact (an eigendecomposition of the
    smaller Gram matrix, in float64 where Keras computes it) when the
    smaller side of the matrix is at most 2048; otherwise `track` run to a
    tight tolerance.

    Returns:
        A (block, cols) tensor in the matrix's dtype, rows orthonormal (a
        zero row where the matrix has fewer non-zero singular values).
    """
    rows, cols = matrix.shape
    block = block_size(rows, cols, block)
    if not _exactly_solvable(matrix):
        start = initial_state(cols, block, _dtype(matrix))
        return track(
            matrix, start, n_iter=2, tol=1e-6, max_iter=64, solve_empty=False
        ).state
    return _exact_start(matrix, block, tall=cols <= rows)


def _exactly_solvable(matrix: Tensor | LinearOperator) -> bool:
    """Whether `warm_start` solves `matrix` by an eigendecomposition."""
    if isinstance(matrix, LinearOperator):
        return False
    return min(matrix.shape) <= _EXACT_MAX_SIDE


def _exact_start(matrix: Tensor, block: int, tall: bool) -> Tensor:
    """`warm_start` by an eigendecomposition of the smaller Gram matrix (the
    columns' where `tall`, rows >= cols), of a matrix whose sizes may be
    unknown."""
    dtype = _dtype(matrix)
    wide = ops.cast(matrix, _widest_float())
    if tall:
        values, vectors, finite = _eigh(ops.matmul(ops.transpose(wide), wide))
        top = ops.transpose(ops.flip(vectors[:, -block:], axis=1))
    else:
        values, vectors, finite = _eigh(ops.matmul(wide, ops.transpose(wide)))
        left = ops.transpose(ops.flip(vectors[:, -block:], axis=1))
        top = _normalize_rows(ops.matmul(left, wide))
    values = ops.flip(values[-block:], axis=0)
    # In float32, eigenvalues below a few ulps of the top one are noise.
    resolution = max(_DEPENDENT**2, 64 * float(np.finfo(ops.dtype(values)).eps))
    floor = resolution * ops.maximum(values[0], 0.0)
    keep = ops.logical_and(finite, values > floor)
    top = ops.where(keep[:, None], top, ops.zeros_like(top))
    # The block's size stays known where the matrix's sizes are not.
    return ops.reshape(ops.cast(top, dtype), (block, -1))


def track(
    matrix: Tensor,
    state: Tensor,
    n_iter: int = 1,
    tol: float | None = None,
    max_iter: int = 8,
    eps: float = 1e-12,
    rescue_iter: int = 0,
    solve_empty: bool = True,
) -> Estimate:
    """Block Golub-Kahan-Lanczos from the previous top singular vectors.

    The first `n_iter` iterations are straight-line code (unrolled: no loop
    op, no exit test), and a step that needs no more, which is most steps,
    takes one branch test after them (and, where `solve_empty`, one for an
    empty state before them): a fixed few dozen ops. Otherwise the
    branch not taken on that path goes on iterating in a loop, in the same
    Krylov space, up to `max_iter` iterations, then restarts from the Ritz
    vectors reached, for up to `rescue_iter` more in all. An empty state is
    replaced by the exact top singular vectors (`warm_start`) before the
    first iteration.

    Args:
        matrix: The (rows, cols) matrix.
        state: The previous top right singular vectors, (block, cols), rows
            orthonormal or zero. An empty state (all zeros, or not finite:
            see `is_empty`) is solved exactly.
        n_iter: Iterations to run at least (exactly, if `tol` is None). A
            compiled step grows with it.
        tol: Stop once the residual `||M v - sigma u||` is at most
            `tol * sigma`; None for a fixed `n_iter` iterations.
        max_iter: Iterations to run at most when `tol` is set, rescue
            aside; the loop's buffers hold this many.
        eps: sigma at or below this counts as zero.
        rescue_iter: Iterations to add, restarted, when `max_iter` did not
            reach `tol`.
        solve_empty: Whether to test for an empty state and solve it
            exactly. False for a start known to be full, such as
            `warm_start`'s own: a solve inside a solve would recurse where
            a backend traces both branches of a conditional (JAX).

    Returns:
        An `Estimate`.
    """
    options = (n_iter, tol, max_iter, eps, rescue_iter, solve_empty)
    if not _exactly_solvable(matrix):
        return _track(matrix, state, *options, None)
    # One trace of the tracker serves every matrix with this block, these
    # options and the same orientation (rows >= cols or not), whatever its
    # sizes.
    rows, cols = matrix.shape
    block = state.shape[0]
    return shared.call(
        _track,
        (matrix, state),
        ((None, None), (block, None)),
        (*options, cols <= rows),
        _estimate_shapes(matrix, block),
    )


def _track(
    matrix: Tensor | LinearOperator,
    state: Tensor,
    n_iter: int,
    tol: float | None,
    max_iter: int,
    eps: float,
    rescue_iter: int,
    solve_empty: bool,
    tall: bool | None,
) -> Estimate:
    """`track`, for a matrix whose sizes may be unknown: an empty state is
    solved by `_exact_start(matrix, block, tall)`, or by `warm_start` where
    `tall` is None."""
    block = state.shape[0]
    start = state
    if solve_empty:

        def solved():
            if tall is None:
                return warm_start(matrix, block)
            return _exact_start(matrix, block, tall)

        start = ops.cond(is_empty(state), solved, lambda: state)
    if n_iter == 1:
        # Most steps run one iteration only, which has a cheaper form.
        estimate, theta, products = _first_iteration(matrix, start, eps)
        if tol is None:
            return estimate
        # The start's rows span the right Krylov space: the residual is the
        # part of M^T u = theta v outside them.
        v = estimate.v[None, :]
        residual = theta * _norm(v - ops.matmul(_times_transposed(v, start), start))

        def krylov_so_far():
            # The loop goes on from the iteration just run, from its
            # products: no pass over the matrix is repeated.
            return _Krylov.empty(matrix, block, max_iter).seeded(start, *products)

    else:
        krylov, pending = _Krylov.empty(matrix, block, n_iter), start
        for step in range(n_iter):
            krylov, pending = krylov.extend(matrix, step, pending, block)
        estimate, (values, vectors, finite) = _ritz_estimate(krylov, block, n_iter, eps)
        if tol is None:
            return estimate
        theta = ops.sqrt(ops.maximum(values[-1], 0.0))
        residual = krylov.residual(vectors, finite)

        def krylov_so_far():
            return krylov.widened(max_iter, block), pending

    estimate = estimate._replace(converged=residual <= tol * theta)

    def go_on():
        krylov, pending = krylov_so_far()
        loop = (krylov, pending, theta, residual)
        options = (n_iter, max_iter + rescue_iter, tol, eps)
        if isinstance(matrix, LinearOperator):
            return _loop(matrix, *loop, *options)
        # Not inlined, the rarely run loop is instantiated once for all the
        # kernels that share its graph, not once per kernel.
        width = krylov.gram.shape[0]
        relaxed = (width, None)
        shapes = ((None, None), relaxed, relaxed, relaxed, (width, width))
        shapes += ((block, None), (), ())
        result_shapes = _estimate_shapes(matrix, block)
        return shared.call(
            _loop, (matrix, *loop), shapes, options, result_shapes, inline=False
        )

    return ops.cond(estimate.converged, lambda: estimate, go_on)


def _estimate_shapes(matrix: Tensor, block: int) -> tuple:
    """The shapes of an `Estimate`'s fields for `matrix` and `block`."""
    rows, cols = matrix.shape
    return ((), (rows,), (cols,), (block, cols), (), ())


def solve(matrix: Tensor, block: int = 2, eps: float = 1e-12) -> Estimate:
    """sigma and the state from scratch: the exact warm start, one iteration."""
    estimate, _, _ = _first_iteration(matrix, warm_start(matrix, block), eps)
    return estimate


def norm_of(kernel: Tensor, layout: str = "dense", geometry=None) -> float:
    """The spectral norm of a kernel, solved from scratch, as a Python float.

    Args:
        kernel: The kernel, in its layer's layout; gradients do not flow.
        layout: Its layout (see `kerasnorm.ops.layouts`).
        geometry: A `kerasnorm.ConvGeometry` for the operator norm of the
            convolution on that input, or None for the largest singular
            value of the kernel's matrix view.

    Returns:
        sigma, computed in float32 (float64 for a float64 kernel): exact
        for a matrix up to 2048 on its smaller side, Lanczos run to a
        residual of 1e-6 otherwise.
    """
    dtype = "float64" if ops.dtype(kernel) == "float64" else "float32"
    kernel = ops.stop_gradient(ops.cast(kernel, dtype))
    if geometry is None:
        operand = layouts.kernel_matrix(kernel, layout)
    else:
        operand = ConvOperator(kernel, layout, geometry)
    return float(ops.convert_to_numpy(solve(operand, 2).sigma))


def is_empty(state: Tensor) -> Tensor:
    """Whether `state` must be solved afresh: never solved, or not finite.

    A matrix that held inf or NaN leaves an empty state (see `track`); a
    state restored from a bad checkpoint may hold NaN itself. Either way,
    once the matrix is finite again, the next step solves sigma exactly.
    """
    solved = ops.any(ops.not_equal(state, 0))
    return ops.logical_not(ops.logical_and(solved, ops.all(ops.isfinite(state))))


class _Krylov(NamedTuple):
    """The bases of block Golub-Kahan-Lanczos, in buffers of a fixed size.

    Rows of an iteration not reached yet are zero. `left` holds U_0, U_1,
    ..., `images` Y_k = U_k M, and `right` V_0, V_1, ..., where V_k+1 spans
    the part of Y_k outside V_0..V_k. `gram` is Y Y^T, kept up to date a
    block at a time: recomputed from the buffers, it would cost each
    iteration a pass over all of them, and a long run cubic time.
    """

    left: Tensor  # (width, rows)
    right: Tensor  # (width, cols)
    images: Tensor  # (width, cols)
    gram: Tensor  # (width, width)

    @classmethod
    def empty(cls, matrix: Tensor, block: int, steps: int) -> _Krylov:
        """Zero buffers for `steps` iterations of `block` rows."""
        rows, cols = _shape(matrix)
        dtype = _dtype(matrix)
        width = steps * block
        return cls(
            ops.zeros((width, rows), dtype),
            ops.zeros((width, cols), dtype),
            ops.zeros((width, cols), dtype),
            ops.zeros((width, width), dtype),
        )

    def widened(self, steps: int, block: int) -> _Krylov:
        """The same bases in buffers for `steps` iterations."""
        missing = steps * block - self.left.shape[0]
        if missing <= 0:
            return self
        left, right, images = (
            ops.pad(rows, [[0, missing], [0, 0]])
            for rows in (self.left, self.right, self.images)
        )
        gram = ops.pad(self.gram, [[0, missing], [0, missing]])
        return _Krylov(left, right, images, gram)

    def cleared(self) -> _Krylov:
        """The same buffers zeroed, for a restart."""
        return _Krylov(*(ops.zeros_like(buffer) for buffer in self))

    def extend(
        self, matrix: Tensor, step, pending: Tensor, block: int
    ) -> tuple[_Krylov, Tensor]:
        """Iteration `step` (counting from 0): two passes over `matrix`.

        Args:
            matrix: The matrix.
            step: Where the new blocks go in the buffers, which hold `step`
                iterations.
            pending: The rows the next right block comes from: the last
                images, orthogonalized here against the right blocks
                before; or, at the static step 0, the start, orthonormal
                or zero rows, taken as it is.
            block: Rows per block.

        Returns:
            The bases with the new blocks, and the new images (the next
            `pending`).
        """
        if isinstance(step, int) and step == 0:
            # Nothing before to deflate against, and the start is
            # orthonormal already.
            current = pending
            preimage = _adjoint(matrix, current)
            left_block = _orthonormalized(preimage, _norm(preimage))
        else:
            current = _orthonormalized(_deflate(pending, self.right), _norm(pending))
            preimage = _adjoint(matrix, current)
            left_block = _orthonormalized(
                _deflate(preimage, self.left), _norm(preimage)
            )
        new_images = _forward(matrix, left_block)
        return self._holding(step, current, left_block, new_images), new_images

    def seeded(
        self, start: Tensor, preimage: Tensor, images: Tensor
    ) -> tuple[_Krylov, Tensor]:
        """The bases after iteration 0 from `start`, given its products.

        `extend(matrix, 0, start, block)` without reading the matrix:
        orthonormalizing `preimage = c * start M^T` (for any scale c) is a
        small transform of its rows, and `images = preimage M` follows it.

        Returns:
            The bases with the first blocks, and the new images.
        """
        left_block, (first, second) = _orthonormalizing_steps(preimage, _norm(preimage))
        new_images = ops.matmul(ops.matmul(second, first), images)
        return self._holding(0, start, left_block, new_images), new_images

    def _holding(
        self, step, right_block: Tensor, left_block: Tensor, new_images: Tensor
    ) -> _Krylov:
        """These bases with iteration `step`'s blocks written in."""
        place = _rows_of(step, right_block.shape[0])[:, None]
        images = ops.scatter_update(self.images, place, new_images)
        # The new block's rows and columns of Y Y^T: rows set, then the
        # transpose's rows, which are the columns.
        cross = _times_transposed(new_images, images)
        gram = ops.scatter_update(self.gram, place, cross)
        gram = ops.scatter_update(ops.transpose(gram), place, cross)
        return _Krylov(
            ops.scatter_update(self.left, place, left_block),
            ops.scatter_update(self.right, place, right_block),
            images,
            gram,
        )

    def ritz(self) -> tuple[Tensor, Tensor, Tensor]:
        """Eigenvalues (ascending: squared Ritz values) and eigenvectors of
        the images' Gram matrix, and whether it was finite."""
        return _eigh(self.gram)

    def residual(self, vectors: Tensor, finite: Tensor) -> Tensor:
        """The top Ritz pair's residual: the part of its image outside the
        right Krylov space, which only the newest block reaches out of. A
        matrix that is not finite has nothing to converge to: residual 0."""
        image = ops.matmul(vectors[:, -1][None, :], self.images)
        outside = image - ops.matmul(_times_transposed(image, self.right), self.right)
        residual = _norm(outside)
        return ops.where(finite, residual, ops.zeros_like(residual))


def _rows_of(step, block: int) -> Tensor:
    """The buffer rows of iteration `step`'s block."""
    return step * block + ops.arange(block, dtype="int32")


def _loop(
    matrix: Tensor,
    krylov: _Krylov,
    pending: Tensor,
    theta: Tensor,
    residual: Tensor,
    done: int,
    limit: int,
    tol: float,
    eps: float,
) -> Estimate:
    """Iterations from `krylov` (holding `done` of them, `pending` the rows
    to go on from, `theta` and `residual` those reached) until the residual
    reaches `tol` or `limit` iterations have run.

    When the buffers are full, the loop restarts from the top Ritz vectors
    reached, in the same buffers: one loop body serves both a step that
    needs a few more iterations and a stale state's long run.
    """
    block = pending.shape[0]
    steps = krylov.left.shape[0] // block

    def restarted(krylov, filled):
        values, vectors, finite = krylov.ritz()
        rows = _ritz_rows(values, _top(vectors, block), finite, krylov.images, eps)
        return krylov.cleared(), rows, ops.zeros_like(filled)

    def body(count, filled, krylov, pending, theta, residual):
        krylov, pending, filled = ops.cond(
            filled < steps,
            lambda: (krylov, pending, filled),
            lambda: restarted(krylov, filled),
        )
        krylov, pending = krylov.extend(matrix, filled, pending, block)
        values, vectors, finite = krylov.ritz()
        theta = ops.sqrt(ops.maximum(values[-1], 0.0))
        residual = krylov.residual(vectors, finite)
        return count + 1, filled + 1, krylov, pending, theta, residual

    def cond(count, filled, krylov, pending, theta, residual):
        return ops.logical_and(count < limit, residual > tol * theta)

    done = ops.convert_to_tensor(done, dtype="int32")
    iterations, _, krylov, _, theta, residual = ops.while_loop(
        cond, body, (done, done, krylov, pending, theta, residual)
    )
    estimate, _ = _ritz_estimate(krylov, block, iterations, eps)
    return estimate._replace(converged=residual <= tol * theta)


def _first_iteration(
    matrix: Tensor, start: Tensor, eps: float
) -> tuple[Estimate, Tensor, tuple[Tensor, Tensor]]:
    """One iteration from `start` (orthonormal or zero rows), worked out on
    block-by-block matrices: the Ritz pairs of a first `_Krylov.extend` and
    `ritz`, with one eigendecomposition instead of five and no pass over
    long rows but the two products with the matrix and their Gram matrices.

    The left block P = start M^T is not orthonormalized: the Ritz problem on
    its row space is the pencil (C, B), C = (P M)(P M)^T and B = P P^T,
    reduced to an ordinary one by whitening with B's eigendecomposition.
    Directions of B weaker than the strongest by about float precision are
    dropped; one just above that comes out holding a part of the strongest
    of about the square root of float precision, which moves the top Ritz
    value by its square.

    Returns:
        The estimate, the top Ritz value (0 for a matrix that is not
        finite, where the estimate's `v` is zero too), and the products
        P and P M (P scaled to unit norm), from which `_Krylov.seeded`
        goes on.
    """
    preimage = _adjoint(matrix, start)
    # At unit norm, C holds sigma**2, as the Gram matrix of an orthonormal
    # block's images does, rather than sigma**4.
    preimage = preimage / ops.maximum(_norm(preimage), eps)
    images = _forward(matrix, preimage)
    left_gram = _gram(preimage)
    values, vectors = ops.eigh(ops.where(ops.isfinite(left_gram), left_gram, 0.0))
    # Directions P barely holds (a zero row of `start`, a rank-deficient
    # matrix) are dropped, as `_orthonormalized` drops them.
    resolution = 64 * float(np.finfo(ops.dtype(values)).eps)
    live = values > ops.maximum(_DEPENDENT**2, resolution * values[-1])
    whiten = vectors * ops.where(live, ops.rsqrt(ops.where(live, values, 1.0)), 0.0)
    # Not finite where the matrix is not: whitening a sanitized B leaves C's
    # inf or NaN in place.
    values, vectors, finite = _eigh(
        _transposed_times(whiten, ops.matmul(_gram(images), whiten))
    )
    block = start.shape[0]
    estimate = _estimate(
        values,
        ops.matmul(whiten, _top(vectors, block)),
        finite,
        preimage,
        images,
        1,
        eps,
    )
    return estimate, ops.sqrt(ops.maximum(values[-1], 0.0)), (preimage, images)


def _ritz_estimate(krylov: _Krylov, block: int, iterations, eps: float):
    """The `Estimate` of the top `block` Ritz pairs of `krylov`, and what
    `krylov.ritz()` returned."""
    values, vectors, finite = krylov.ritz()
    weights = _top(vectors, block)
    estimate = _estimate(
        values, weights, finite, krylov.left, krylov.images, iterations, eps
    )
    return estimate, (values, vectors, finite)


def _top(vectors: Tensor, block: int) -> Tensor:
    """The last `block` eigenvectors (columns), top first."""
    return ops.flip(vectors[:, -block:], axis=1)


def _estimate(
    values, weights, finite, left: Tensor, images: Tensor, iterations, eps: float
) -> Estimate:
    """The top Ritz values and vectors of a Krylov space as an `Estimate`.

    Args:
        values: Eigenvalues of the Ritz problem, ascending: squared Ritz
            values.
        weights: The top Ritz vectors as columns, top first, as
            coefficients of the rows of `left` (and `images`).
        finite: Whether the matrix was finite.
        left: The Krylov space's left rows.
        images: Their images under the matrix.
        iterations: Iterations run.
        eps: sigma at or below this counts as zero.
    """
    dtype = ops.dtype(images)
    # sigma of a matrix holding inf or NaN is NaN, and its state is empty,
    # so that the next step, on a finite matrix again, solves it afresh.
    top = ops.sqrt(ops.maximum(values[-1], 0.0))
    sigma = ops.where(finite, top, ops.full((), float("nan"), dtype))
    new_state = _ritz_rows(values, weights, finite, images, eps)
    u = ops.matmul(weights[:, 0][None, :], left)[0]
    return Estimate(
        sigma,
        u,
        new_state[0],
        new_state,
        ops.convert_to_tensor(iterations, dtype="int32"),
        ops.convert_to_tensor(True),
    )


def _ritz_rows(values, weights, finite, images: Tensor, eps: float) -> Tensor:
    """The top right Ritz vectors as unit rows (zero where the Ritz value
    is negligible or the matrix not finite): the new state."""
    block = weights.shape[1]
    thetas = ops.sqrt(ops.maximum(ops.flip(values[-block:], axis=0), 0.0))
    kept = ops.logical_and(finite, thetas > ops.maximum(_DEPENDENT * thetas[0], eps))
    # Rows of W^T Y are orthogonal, of norms theta: only their scale needs
    # setting.
    rows = _normalize_rows(_transposed_times(weights, images))
    return ops.where(kept[:, None], rows, 0.0)


def right_estimate(
    matrix: Tensor, v: Tensor, eps: float = 1e-12
) -> tuple[Tensor, Tensor]:
    """`(u, sigma)` for a fixed right vector: `sigma = ||M v||`, `u = M v / sigma`.

    One pass over the matrix, no state change: the estimate used at
    inference, at least as large as the `sigma` of the `track` call that
    produced `v`.
    """
    image = _adjoint(matrix, v[None, :])[0]
    sigma = _norm(image)
    return image / ops.maximum(sigma, eps), sigma


def divide_by_sigma(
    kernel: Tensor,
    sigma: Tensor,
    u: Tensor,
    v: Tensor,
    layout: str = "dense",
    eps: float = 1e-12,
    operator: LinearOperator | None = None,
) -> Tensor:
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
        operator: The linear map sigma was tracked on, when it is not the
            kernel's matrix view (a convolution on its input shape, see
            `kerasnorm.ops.operators`): `u` and `v` are then its input and
            output vectors, and the rank-one term is the kernel's gradient
            of `u @ M @ v`.

    Returns:
        The normalized kernel, of the kernel's shape and dtype.
    """
    sigma, u, v = (ops.stop_gradient(x) for x in (sigma, u, v))
    live = sigma > eps
    scale = ops.where(live, 1.0 / ops.maximum(sigma, eps), ops.ones_like(sigma))
    shape = tuple(kernel.shape)

    @ops.custom_gradient
    def divide(kernel):
        normalized = kernel * scale

        def gradient(*args, upstream=None):
            # TensorFlow and JAX pass the upstream gradient by position,
            # PyTorch by keyword after the forward's inputs.
            if upstream is None:
                (upstream,) = args
            along = ops.sum(upstream * normalized)
            weight = ops.where(live, -along * scale, ops.zeros_like(along))
            if operator is not None:
                return upstream * scale + weight * operator.kernel_gradient(u, v)
            correction = ops.matmul((weight * u)[:, None], v[None, :])
            return upstream * scale + layouts.matrix_kernel(correction, shape, layout)

        return normalized, gradient

    return divide(kernel)


def _eigh(gram: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """`eigh` of a small Gram matrix, and whether it was finite.

    TensorFlow's eigh raises on a matrix holding inf or NaN ("Self-adjoint
    eigen decomposition was not successful"), which would stop a train step
    inside the tracker instead of letting the user's own checks (a NaN loss,
    `TerminateOnNaN`) see the bad kernel. A matrix that is not finite is
    replaced by zeros; the flag says so.
    """
    finite = ops.all(ops.isfinite(gram))
    values, vectors = ops.eigh(ops.where(finite, gram, ops.zeros_like(gram)))
    return values, vectors, finite


def _widest_float() -> str:
    """float64 where Keras computes in it; Keras 3 computes float64 products
    in float32 on JAX and PyTorch."""
    return keras.backend.result_type("float64", "float64")


def _forward(matrix: Tensor | LinearOperator, rows: Tensor) -> Tensor:
    """`rows @ M` for a matrix or a `LinearOperator` M."""
    if isinstance(matrix, LinearOperator):
        return matrix.forward(rows)
    return ops.matmul(rows, matrix)


def _adjoint(matrix: Tensor | LinearOperator, rows: Tensor) -> Tensor:
    """`rows @ M^T` for a matrix or a `LinearOperator` M."""
    if isinstance(matrix, LinearOperator):
        return matrix.adjoint(rows)
    return _times_transposed(rows, matrix)


def _shape(matrix: Tensor | LinearOperator) -> tuple:
    """(rows, cols): numbers where known, scalar tensors where not."""
    if isinstance(matrix, LinearOperator):
        return matrix.shape
    return ops.shape(matrix)


def _dtype(matrix: Tensor | LinearOperator) -> str:
    if isinstance(matrix, LinearOperator):
        return matrix.dtype
    return ops.dtype(matrix)


def _times_transposed(rows: Tensor, matrix: Tensor) -> Tensor:
    """`rows @ matrix.T`, with no copy of `matrix`.

    JAX (under jit) and PyTorch (a view) transpose for free; TensorFlow
    would run a Transpose op per product, each a pass over the operand, so
    it gets its matmul's own flag.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.linalg.matmul(rows, matrix, transpose_b=True)
    return ops.matmul(rows, ops.transpose(matrix))


def _transposed_times(columns: Tensor, matrix: Tensor) -> Tensor:
    """`columns.T @ matrix`, with no transpose op on TensorFlow."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.linalg.matmul(columns, matrix, transpose_a=True)
    return ops.matmul(ops.transpose(columns), matrix)


def _gram(rows: Tensor) -> Tensor:
    return _times_transposed(rows, rows)


def _norm(x: Tensor) -> Tensor:
    return ops.sqrt(ops.sum(ops.square(x)))


def _deflate(rows: Tensor, basis: Tensor) -> Tensor:
    """`rows` minus their projection on the row space of `basis`, done twice.

    Classical Gram-Schmidt run twice keeps the Krylov bases orthogonal to
    float32 precision; `basis` may hold zero rows (unused buffer space).
    """
    for _ in range(2):
        rows = rows - ops.matmul(_times_transposed(rows, basis), basis)
    return rows


def _orthonormalized(rows: Tensor, scale: Tensor) -> Tensor:
    """An orthonormal basis of the row space of a few `rows`, as many rows.

    Through the eigendecomposition of their small Gram matrix: a dozen ops
    on a (block, block) matrix, where Gram-Schmidt takes a dozen per row on
    long rows (and QR is a slow kernel on TensorFlow's CPU). A second pass
    restores the orthogonality the first loses to rounding in directions
    much weaker than the strongest. A direction is dropped (a zero row)
    where its norm is below `_DEPENDENT * scale` (`scale`: the norm the rows
    had before any projection; an exhausted Krylov space, a rank-deficient
    matrix), or below a few float ulps of the strongest direction's, where
    the Gram matrix cannot resolve it.
    """
    return _orthonormalizing_steps(rows, scale)[0]


def _orthonormalizing_steps(
    rows: Tensor, scale: Tensor
) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """`_orthonormalized(rows, scale)`, and the two (rows, rows) steps that
    take `rows` to it: the second applied to the first's result."""
    resolution = 64 * float(np.finfo(ops.dtype(rows)).eps)
    floor = _DEPENDENT**2 * ops.square(scale)
    steps = []
    for _ in range(2):
        values, vectors, _ = _eigh(_gram(rows))
        live = values > ops.maximum(floor, resolution * values[-1])
        scales = ops.where(live, 1.0 / ops.sqrt(ops.where(live, values, 1.0)), 0.0)
        step = ops.transpose(vectors * scales[None, :])
        rows = ops.matmul(step, rows)
        steps.append(step)
        floor = resolution
    return rows, tuple(steps)


def _normalize_rows(rows: Tensor) -> Tensor:
    norms = ops.sqrt(ops.sum(ops.square(rows), axis=1, keepdims=True))
    return rows / ops.maximum(norms, 1e-30)
