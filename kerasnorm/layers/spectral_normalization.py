"""SpectralNormalization: the reparametrizing wrapper shared by both Kerases."""

from __future__ import annotations

import re

from keras import ops

from kerasnorm.errors import KerasNormValueError
from kerasnorm.layers.kernels import conv_geometry
from kerasnorm.layers.tracking import Tracking, work_dtype
from kerasnorm.layers.wrapper import KernelWrapperBase
from kerasnorm.ops import layouts, operators
from kerasnorm.ops import sigma as sigma_ops

# What `tol="auto"` is on a kernel's matrix: the wrapper tracks at every
# training call, where the gradient through sigma bunches the top singular
# values up (docs/benchmarks.md).
MATRIX_TOL = 3e-3
# What `block_size="auto"` is. On a matrix, 8: the same gradient makes a
# cluster of top singular values, and a block of 4 sat inside it, each
# entry into the loop then running about ten iterations to climb it; 8
# took a third of the iterations, with the median error in sigma less than
# half, at a step cost within the spread between runs (docs/benchmarks.md).
# On an operator, 4: each vector there is an input-sized image, and its
# page was measured at 4.
MATRIX_BLOCK = 8
OPERATOR_BLOCK = 4


class SpectralNormalizationBase(KernelWrapperBase):
    """Wraps a layer so that its kernels are used as `W / sigma(W)`.

    The reparametrization of SNGAN (Algorithm 1): the wrapped layer computes
    with `W / sigma(W)`, and the gradient flows through sigma as well
    (`u` and `v` held constant), so the optimizer steps on the raw kernel `W`
    knowing how sigma will move. The raw kernel is never overwritten.

    Each kernel's top singular vectors are a non-trainable weight of the
    wrapper, saved with the model. They start empty and are solved exactly
    at the first call. A call with `training=True` updates them with a few
    iterations of block Lanczos (as `SpectralNorm` does; see
    `kerasnorm.ops.sigma`); any other call uses them as they are, so
    inference is deterministic and changes no variable.

    Every kernel of the wrapped layer is normalized, each as the matrix of
    the linear map it computes (see `kerasnorm.ops.layouts`): Dense,
    Conv1D/2D/3D and their transposes, depthwise and separable convolutions
    (both kernels), Embedding, EinsumDense, the four projections of
    MultiHeadAttention, the kernel and recurrent kernel of SimpleRNN, LSTM,
    GRU and ConvLSTM layers, through Bidirectional and TimeDistributed too.
    In a layer kerasnorm does not know, the kernel layers it holds and its
    own trainable weights of rank 2 or more (read as `(..., in, out)`) are
    normalized; see `kerasnorm.layers.kernels`. The wrapper passes every
    call argument on (`training` and `mask` where the layer takes them).

    Args:
        layer: The layer to wrap.
        n_iter: Iterations per training call, at least. Defaults to `1`.
        tol: Stop iterating once the top singular pair's residual is at most
            `tol * sigma`; None runs exactly `n_iter` iterations.
            Defaults to `"auto"`: `3e-3` on a kernel's matrix, `1e-4` on a
            convolution's operator (`operator_norm=True`; see
            `kerasnorm.layers.tracking`).
        max_iter: Iterations per training call at most. Defaults to
            `"auto"`: `6` on a matrix, `24` on an operator.
        block_size: Singular vectors tracked per kernel. Defaults to
            `"auto"`: `8` on a kernel's matrix, four times the
            constraint's, and `4` on a convolution's operator. The
            gradient through sigma holds the tracked direction down while
            the others grow, so the top singular values bunch up and a new
            top direction rises from outside a small block (measured on a
            DCGAN-64 discriminator, 100 Adam steps: median error in sigma
            3.3e-3 with two vectors, 2.0e-4 with four, 8.9e-5 with eight,
            at step costs within the spread between runs).
        eps: A spectral norm at or below this counts as zero, and a zero
            kernel stays zero. Defaults to `1e-12`.
        operator_norm: If `True`, a convolution's kernel is divided by the
            operator norm of the convolution on the input shape the wrapper
            is built for (its Lipschitz constant; see
            `kerasnorm.ops.operators`) rather than by the largest singular
            value of the reshaped kernel. Other kernels (Dense, Embedding,
            attention, recurrent) are their own matrix and are unchanged.
            Every size of the input but the batch must be known. Defaults
            to `False`.
        **kwargs: Base layer keyword arguments, such as `name`.

    Example:

    >>> dense = kerasnorm.SpectralNormalization(keras.layers.Dense(4))
    >>> y = dense(np.ones((2, 3), dtype="float32"), training=True)
    >>> tuple(y.shape)
    (2, 4)
    >>> folded = dense.fold()  # a plain Dense with kernel W / sigma(W)
    >>> round(float(np.linalg.norm(folded.kernel.numpy(), 2)), 4)
    1.0

    Reference:
        Miyato et al., "Spectral Normalization for Generative Adversarial
        Networks", ICLR 2018.
    """

    _verb = "normalize"

    def __init__(
        self,
        layer,
        n_iter: int = 1,
        tol: float | str | None = "auto",
        max_iter: int | str = "auto",
        block_size: int | str = "auto",
        eps: float = 1e-12,
        operator_norm: bool = False,
        **kwargs,
    ):
        super().__init__(layer, **kwargs)
        # The options as given, "auto" kept, for the config; resolved for
        # kernels' matrices and for convolutions' operators.
        self._options = Tracking(n_iter, tol, max_iter, block_size, eps)
        self.tracking = self._options.resolved(
            operator=False, matrix_tol=MATRIX_TOL, auto_block=MATRIX_BLOCK
        )
        self.operator_tracking = self._options.resolved(
            operator=True, matrix_tol=MATRIX_TOL, auto_block=OPERATOR_BLOCK
        )
        self.operator_norm = bool(operator_norm)
        self._states = []
        # Per kernel, the convolution's geometry when sigma is its operator
        # norm, else None.
        self._geometries = []
        self._input_shape = None

    def build(self, input_shape=None):
        self._input_shape = input_shape
        super().build(input_shape)

    def _kernels_found(self, kernels) -> None:
        """Creates each kernel's tracked vectors, empty."""
        self._geometries = [self._geometry(kernel) for kernel in kernels]
        for kernel, geometry in zip(kernels, self._geometries, strict=True):
            if geometry is None:
                shape = layouts.matrix_shape(kernel.shape, kernel.layout)
            else:
                shape = operators.operator_shape(kernel.shape, kernel.layout, geometry)
            # Lifted out of a functional model's scratch graph, where a
            # tf-keras layer that makes its kernels at its first call is.
            with self._adapter.lifted():
                empty = self._tracking_for(geometry).empty_state(
                    shape, work_dtype(kernel.variable.dtype)
                )
            self._states.append(
                self._adapter.add_state_weight(
                    self, name=f"{_weight_name(kernel.path)}_vectors", value=empty
                )
            )

    def _geometry(self, kernel) -> operators.ConvGeometry | None:
        if not self.operator_norm:
            return None
        if self._input_shape is None:
            raise KerasNormValueError(
                f"SpectralNormalization(operator_norm=True) around {self.layer.name!r} "
                "needs the input shape: build the wrapper (call it once, or "
                "`build(input_shape)`) before its first use."
            )
        try:
            return conv_geometry(kernel, self._input_shape)
        except KerasNormValueError as error:
            raise KerasNormValueError(
                f"SpectralNormalization cannot take the operator norm of {kernel.path} "
                f"of {self.layer.name!r}: {error}."
            ) from error

    def geometries(self) -> dict:
        """Each kernel's `ConvGeometry` by path, None where sigma is of its matrix.

        With `operator_norm=True`, a convolution's kernel is divided by the
        operator norm of the convolution on this geometry.
        """
        self._check_built("listing its geometries")
        return {
            kernel.path: geometry
            for kernel, geometry in zip(self._found, self._geometries, strict=True)
        }

    def _operand(self, kernel, value, geometry):
        """The kernel's matrix view, or its convolution on the input shape."""
        if geometry is None:
            return layouts.kernel_matrix(value, kernel.layout)
        return operators.ConvOperator(value, kernel.layout, geometry)

    def warm_start(self) -> None:
        """Recomputes the tracked singular vectors of the current kernels.

        The state starts empty and is solved exactly at the first call;
        after that, each training call follows the kernel as it changes.
        Call this after setting the wrapped layer's kernels by hand (e.g.
        `set_weights` on the inner layer) for an exact state at once; else
        the next training calls catch up by iterating longer.
        """
        found = self._found or ()
        for kernel, geometry, state in zip(
            found, self._geometries, self._states, strict=True
        ):
            with self._adapter.lifted():
                value = self._adapter.read_master(kernel.variable)
                value = ops.cast(value, work_dtype(value.dtype))
                tracking = self._tracking_for(geometry)
                state.assign(
                    tracking.warm_start(self._operand(kernel, value, geometry))
                )

    def _tracking_for(self, geometry) -> Tracking:
        """How sigma of a kernel on `geometry` (None: its matrix) is tracked."""
        return self.tracking if geometry is None else self.operator_tracking

    def _substituted(self):
        return list(self._found)

    def _values(self, training: bool) -> list:
        """Each kernel as `W / sigma(W)`, differentiable in W with u, v fixed.

        With `training`, the tracked vectors are first updated and saved;
        otherwise they are used as they are.
        """
        normalized = []
        for kernel, geometry, state in zip(
            self._found, self._geometries, self._states, strict=True
        ):
            value = self._adapter.read_master(kernel.variable)
            value = ops.cast(value, work_dtype(value.dtype))
            # The tracked vectors are constants to the gradient: a tape
            # recording the iterations would store every loop step for nothing.
            matrix = self._operand(kernel, ops.stop_gradient(value), geometry)
            tracking = self._tracking_for(geometry)
            if training:
                estimate = tracking.step(matrix, self._adapter.read(state))
                state.assign(estimate.state)
                sigma, u, v = estimate.sigma, estimate.u, estimate.v
            else:
                sigma, u, v = tracking.current(matrix, self._adapter.read(state))
            divided = sigma_ops.divide_by_sigma(
                value,
                sigma,
                u,
                v,
                kernel.layout,
                tracking.eps,
                operator=None if geometry is None else matrix,
            )
            normalized.append(ops.cast(divided, kernel.variable.dtype))
        return normalized

    def get_config(self):
        return {
            **super().get_config(),
            **self._options.get_config(),
            "operator_norm": self.operator_norm,
        }


def _weight_name(path: str) -> str:
    """A kernel's path as a weight name: Keras 3 refuses `/` in one."""
    return re.sub(r"\W", "_", path).strip("_")
