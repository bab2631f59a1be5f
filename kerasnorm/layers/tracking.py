"""How SpectralNorm and SpectralNormalization follow sigma: shared options and steps."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
from keras import ops

from kerasnorm.errors import KerasNormTypeError, KerasNormValueError
from kerasnorm.ops import sigma as sigma_ops
from kerasnorm.ops.sigma import Tensor

# Iterations a step may add when `max_iter` did not reach `tol`, restarted
# from the Ritz vectors reached each time the loop's buffers (`max_iter`
# iterations) fill: enough to converge from a stale start on every kernel
# the tests and benchmarks met.
RESCUE_ITERATIONS = 32

# `tol` and `max_iter` left at "auto" take a value by what sigma is of.
AUTO = "auto"
# A kernel's matrix: one iteration a step is the rule; a few more where a
# new direction rises. Its `tol` differs by mode (the layers set it).
MATRIX_MAX_ITER = 6
# A convolution's operator on a large input (operator_norm=True): its top
# singular values form a near-continuum (one per spatial frequency, with
# distant local peaks), and an optimizer step can lift a peak the tracked
# vectors do not reach. A loose residual test passes on the old peak's
# pair: measured on the DCGAN-64 discriminator
# (docs/benchmarks-operator-norm.md), tol 1e-2 left a convolution's
# operator norm at 1.23 for a step, 1e-3 at 1.006; 1e-4 runs enough
# iterations to reach the new peak (within 6e-4).
OPERATOR_TOL = 1e-4
OPERATOR_MAX_ITER = 24


def check_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise KerasNormTypeError(f"`{name}` must be an int. Received: {name}={value!r}")
    if value < minimum:
        raise KerasNormValueError(
            f"`{name}` must be at least {minimum}. Received: {name}={value}"
        )
    return value


def check_positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise KerasNormTypeError(
            f"`{name}` must be a number. Received: {name}={value!r}"
        )
    if not value > 0:
        raise KerasNormValueError(
            f"`{name}` must be positive. Received: {name}={value!r}"
        )
    return float(value)


@dataclasses.dataclass(frozen=True)
class Tracking:
    """The iteration that follows a kernel's sigma from step to step.

    Block Golub-Kahan-Lanczos from the previous top singular vectors (see
    `kerasnorm.ops.sigma`). Each iteration reads the kernel twice, as one
    power iteration does. The defaults were chosen from the trade-off tables
    of docs/benchmarks.md (a DCGAN-64 discriminator, 100 Adam steps): on a
    kernel's matrix, `tol` 5e-3 for the constraint (`SpectralNorm`), whose
    largest error in sigma there is 6.6e-4 where one power iteration per
    step errs by up to 0.25, and 3e-3 for the wrapper; on a convolution's
    operator, 1e-4 (see `OPERATOR_TOL`).

    Attributes:
        n_iter: Iterations per step, at least (exactly, if `tol` is None).
        tol: Stop once the residual of the top singular pair is at most
            `tol * sigma`; None for exactly `n_iter` iterations. Smaller is
            more accurate, and slower: see the trade-off table. `"auto"`
            until `resolved`: the layer's own for a matrix, `1e-4` for a
            convolution's operator norm.
        max_iter: Iterations per step at most, when `tol` is set. `"auto"`
            until `resolved`: 6 for a matrix, 24 for an operator norm (at
            least `n_iter`).
        block_size: Singular vectors kept between steps. Two catch a
            direction that is about to overtake the top one. `"auto"`
            until `resolved`: the layer's own.
        eps: sigma at or below this counts as zero: a zero kernel stays zero.
    """

    n_iter: int = 1
    tol: float | str | None = AUTO
    max_iter: int | str = AUTO
    block_size: int | str = 2
    eps: float = 1e-12

    def __post_init__(self):
        for name in ("tol", "max_iter", "block_size"):
            value = getattr(self, name)
            if isinstance(value, str) and value != AUTO:
                raise KerasNormTypeError(
                    f'`{name}` must be a number or "auto". Received: {name}={value!r}'
                )
        check_int("n_iter", self.n_iter)
        if self.max_iter != AUTO:
            check_int("max_iter", self.max_iter)
        if self.block_size != AUTO:
            check_int("block_size", self.block_size)
        check_positive("eps", self.eps)
        if self.tol not in (None, AUTO):
            object.__setattr__(self, "tol", check_positive("tol", self.tol))
        if self.tol is not None and self.max_iter != AUTO:
            if self.max_iter < self.n_iter:
                raise KerasNormValueError(
                    f"`max_iter` ({self.max_iter}) must be at least `n_iter` "
                    f"({self.n_iter})."
                )

    def resolved(
        self, operator: bool, matrix_tol: float, auto_block: int = 2
    ) -> Tracking:
        """These options with each `"auto"` replaced by its value.

        Args:
            operator: Whether sigma is a convolution's operator norm (see
                `kerasnorm.ops.operators`) rather than a matrix's largest
                singular value.
            matrix_tol: What `"auto"` `tol` is on a matrix (the
                constraint's and the wrapper's differ).
            auto_block: What `"auto"` `block_size` is.

        Returns:
            A `Tracking` with numbers (or None) for `tol`, `max_iter` and
            `block_size`.
        """
        tol, max_iter = self.tol, self.max_iter
        if tol == AUTO:
            tol = OPERATOR_TOL if operator else matrix_tol
        if max_iter == AUTO:
            max_iter = max(
                self.n_iter, OPERATOR_MAX_ITER if operator else MATRIX_MAX_ITER
            )
        block_size = auto_block if self.block_size == AUTO else self.block_size
        return dataclasses.replace(
            self, tol=tol, max_iter=max_iter, block_size=block_size
        )

    def warm_start(self, matrix: Tensor) -> Tensor:
        """The initial state for `matrix`: its top singular vectors, exactly."""
        return sigma_ops.warm_start(matrix, self.block_size)

    def empty_state(
        self, matrix_shape: tuple[int, int], dtype: str = "float32"
    ) -> np.ndarray:
        """A state to be solved exactly at its first `step`, free to create.

        Creating states empty keeps `apply_normalization` as cheap as a
        clone: the exact start is computed where the kernel is first used.

        Args:
            matrix_shape: The (rows, columns) of the kernel's matrix view.
            dtype: The dtype sigma is computed in, `work_dtype` of the
                kernel's.
        """
        rows, cols = matrix_shape
        block = sigma_ops.block_size(rows, cols, self.block_size)
        return np.zeros((block, cols), dtype)

    def step(self, matrix: Tensor, state: Tensor) -> sigma_ops.Estimate:
        """One step's estimate of sigma and the new state.

        An empty state (all zeros, or not finite) is solved exactly. A
        kernel holding inf or NaN gets sigma NaN and an empty state: the
        step does not fail, and the bad kernel shows in the loss, where
        `TerminateOnNaN` and the user's checks look. If `max_iter`
        iterations do not reach `tol` (the state was stale: weights loaded
        into the model, a kernel assigned by hand, a jump the iterations
        cannot follow, top singular values too close to separate quickly),
        the iteration goes on, restarted from the vectors reached, for up
        to `RESCUE_ITERATIONS` more: far cheaper than solving afresh.
        """
        return sigma_ops.track(
            matrix,
            state,
            self.n_iter,
            self.tol,
            self.max_iter,
            self.eps,
            rescue_iter=RESCUE_ITERATIONS,
        )

    def current(self, matrix: Tensor, state: Tensor) -> tuple:
        """`(sigma, u, v)` of the state as it is, for inference: no update.

        An empty state is solved exactly (and not saved).
        """

        def from_state():
            v = state[0]
            u, sigma = sigma_ops.right_estimate(matrix, v, self.eps)
            return sigma, u, v

        def solved():
            estimate = self.solve(matrix)
            return estimate.sigma, estimate.u, estimate.v

        return ops.cond(sigma_ops.is_empty(state), solved, from_state)

    def solve(self, matrix: Tensor) -> sigma_ops.Estimate:
        """sigma and the state from scratch: exact warm start, one iteration."""
        return sigma_ops.solve(matrix, self.block_size, self.eps)

    def get_config(self) -> dict:
        return dataclasses.asdict(self)


def work_dtype(dtype) -> str:
    """The dtype sigma is computed in for a kernel of `dtype`.

    float64 kernels keep float64; half-precision ones (float16, bfloat16)
    are computed in float32, where the iteration's small products do not
    underflow.
    """
    dtype = keras.backend.standardize_dtype(dtype)
    return "float64" if dtype == "float64" else "float32"


TRACKING_OPTIONS = tuple(field.name for field in dataclasses.fields(Tracking))
