"""SpectralNorm: the kernel constraint logic shared by both Kerases."""

from __future__ import annotations

import warnings

from keras import ops

from kerasnorm.errors import KerasNormTypeError, KerasNormValueError
from kerasnorm.layers.tracking import Tracking, check_positive, work_dtype
from kerasnorm.ops import layouts, operators

# What `tol="auto"` is on a kernel's matrix. A residual test passes on any
# singular pair, not only the top one: where a direction outside the tracked
# block rises past it, sigma is low by up to about `tol`. At 1e-2 the demo's
# discriminator (300 steps) had a kernel at 1.0069 for ten steps; at 5e-3 its
# largest error is 3.1e-4 (the DCGAN-64 discriminator of docs/benchmarks.md:
# 6.6e-4 at both), and a step costs the same: most steps stop after one
# iteration at either. 3e-3 costs measurably more (see the trade-off table).
MATRIX_TOL = 5e-3


def _check_layouts(layout):
    """`layout` checked: one layout, or a dict from layer names to layouts."""
    if isinstance(layout, dict):
        if not layout or not all(isinstance(name, str) for name in layout):
            raise KerasNormTypeError(
                "A dict `layout` maps layer names to layouts. Received: "
                f"layout={layout!r}"
            )
        return {name: layouts.check_layout(value) for name, value in layout.items()}
    return layouts.check_layout(layout)


def _check_geometry(geometry, layout):
    """`geometry` as a `ConvGeometry` (or None), for a layout it can serve."""
    if geometry is None:
        return None
    if isinstance(geometry, dict):
        geometry = operators.ConvGeometry.from_config(geometry)
    if not isinstance(geometry, operators.ConvGeometry):
        raise KerasNormTypeError(
            "`geometry` must be a kerasnorm.ConvGeometry or its config. "
            f"Received: geometry={geometry!r}"
        )
    if layout not in operators.CONV_LAYOUTS:
        raise KerasNormValueError(
            "A `geometry` says how a convolution applies its kernel: the layout "
            f"must be one of {', '.join(operators.CONV_LAYOUTS)}. "
            f"Received: layout={layout!r}"
        )
    return geometry


class SpectralNormBase:
    """Kernel constraint that divides a kernel by its largest singular value.

    Attach it as a `kernel_constraint` (or `depthwise_constraint`,
    `pointwise_constraint`, `embeddings_constraint`): after every optimizer
    step Keras replaces the kernel `W` by `sigma * W / sigma_max(W)`, where
    `sigma_max(W)` is the spectral norm of the kernel's matrix view (output
    channels against all other axes; see `layout`).

    `sigma_max` is tracked from step to step: the constraint keeps the top
    singular vectors of each kernel it normalizes, computes them exactly the
    first time it sees the kernel (so even the first step is accurate), and
    then runs a few iterations of block Lanczos per step, stopping when the
    estimate has converged to `tol` (see `kerasnorm.ops.sigma`).

    The vectors live in a non-trainable variable owned by the
    constraint, not by the layer: they are a cache, rebuilt exactly from the
    kernel after a model is loaded. One constraint object may serve several
    kernels; each gets its own vectors.

    Args:
        layout: How the kernel maps inputs to outputs (see
            `kerasnorm.ops.layouts`). `"dense"` for Dense, Conv1D/2D/3D,
            Embedding, pointwise and RNN kernels `(..., in, out)`;
            `"transpose"` for Conv1D/2D/3DTranspose `(..., out, in)`;
            `"depthwise"` for depthwise kernels `(..., in, multiplier)`; an
            EinsumDense layer's equation for its kernel. The constraint only
            sees the weight, so it cannot tell a transposed convolution by
            itself. A layer whose one constraint argument reaches kernels
            of several layouts (MultiHeadAttention's `kernel_constraint`)
            takes a dict from the name of the layer that creates each
            kernel to its layout: `{"query": "abc,cde->abde", ...,
            "attention_output": "abcd,cde->abe"}`. Defaults to `"dense"`.
        n_iter: Iterations per step, at least. Defaults to `1`.
        tol: Stop iterating once the top singular pair's residual is at most
            `tol * sigma_max`; None runs exactly `n_iter` iterations.
            Defaults to `"auto"`: `5e-3` on a kernel's matrix (`1e-3` or
            `1e-4` buy accuracy for time), `1e-4` with a `geometry`, whose
            operator's top singular values lie too close for a loose test
            to notice a new top direction (see `kerasnorm.layers.tracking`).
        max_iter: Iterations per step at most. Defaults to `"auto"`: `6`,
            or `24` with a `geometry`.
        block_size: Singular vectors tracked per kernel. Defaults to `2`.
        sigma: The target spectral norm. Defaults to `1.0`.
        clip: If `True`, divide only when the estimated spectral norm
            exceeds `sigma`: a Lipschitz bound rather than an equality. The
            estimate (a Ritz value) is never above the true spectral norm
            and is tracked to `tol`, so the bound holds to within that
            error (1e-3 relative in the tests at the defaults; `tol=1e-4`
            tightens it). Defaults to `False`.
        eps: A spectral norm at or below this counts as zero, and a zero
            kernel stays zero. Defaults to `1e-12`.
        geometry: For a convolution's kernel, a `kerasnorm.ConvGeometry`
            (the input shape the layer sees, its strides, padding,
            dilation, data format): the constraint then holds the operator
            norm of the convolution on that input, its Lipschitz constant,
            instead of the reshaped kernel's largest singular value (see
            `kerasnorm.ops.operators`). `apply_normalization(...,
            operator_norm=True)` fills it from the model's graph. Defaults
            to None.

    Example:

    >>> sn = kerasnorm.SpectralNorm()
    >>> w = tf.constant([[3.0, 0.0], [0.0, 1.0]])
    >>> np.round(np.asarray(sn(w), "float64"), 4).tolist()
    [[1.0, 0.0], [0.0, 0.3333]]

    Reference:
        Miyato et al., "Spectral Normalization for Generative Adversarial
        Networks", ICLR 2018.
    """

    def __init__(
        self,
        layout: str = "dense",
        n_iter: int = 1,
        tol: float | str | None = "auto",
        max_iter: int | str = "auto",
        block_size: int = 2,
        sigma: float = 1.0,
        clip: bool = False,
        eps: float = 1e-12,
        geometry: operators.ConvGeometry | dict | None = None,
    ):
        self.layout = _check_layouts(layout)
        self.geometry = _check_geometry(geometry, self.layout)
        # The options as given, "auto" kept, for the config.
        self._options = Tracking(n_iter, tol, max_iter, block_size, eps)
        self.tracking = self._options.resolved(
            operator=self.geometry is not None, matrix_tol=MATRIX_TOL
        )
        self.sigma = check_positive("sigma", sigma)
        self.clip = bool(clip)
        # id(kernel variable) -> (the variable, its state, its layout).
        # Holding the variable keeps its id from being reused by another one.
        self._states = {}

    def __call__(self, w):
        return self.project(w, w if hasattr(w, "assign") else None)

    def project(self, value, variable=None):
        """Normalizes `value`, tracking sigma in the state kept for `variable`.

        `__call__(w)` is `project(w, w)` for a variable and `project(w)` for
        a tensor. A chain of constraints passes the kernel variable along
        with the value the previous constraint returned, so the state stays
        with the variable.

        Args:
            value: The kernel value to normalize.
            variable: The kernel variable whose state tracks sigma, or None
                to compute sigma from scratch.

        Returns:
            `value` scaled to the target spectral norm, in its own dtype.
        """
        kernel = self._adapter.read(value)
        dtype = ops.dtype(kernel)
        work = ops.cast(kernel, work_dtype(dtype))
        if variable is None:
            # A plain tensor has nowhere to keep a state: solve it afresh.
            estimate = self.tracking.solve(self._operand(work, self._layout_for(None)))
        else:
            state, layout = self._state_and_layout(variable)
            matrix = self._operand(work, layout)
            if state is not None and self._adapter.carries(state):
                estimate = self.tracking.step(matrix, self._adapter.read(state))
                state.assign(estimate.state)
            else:
                self._warn_not_carried(has_state=state is not None)
                start = (
                    self._adapter.read(state)
                    if state is not None
                    else self.tracking.empty_state(tuple(matrix.shape), ops.dtype(work))
                )
                estimate = self.tracking.step(matrix, start)
        return ops.cast(work * self._scale(estimate.sigma), dtype)

    def _scale(self, sigma_max):
        scale = self.sigma / ops.maximum(sigma_max, self.tracking.eps)
        if self.clip:
            scale = ops.minimum(scale, 1.0)
        # A zero kernel has sigma_max 0: leave it as it is.
        return ops.where(sigma_max > self.tracking.eps, scale, ops.ones_like(scale))

    def _state_and_layout(self, variable):
        """The state of `variable` (None if it has none and none can be made
        here, inside a stateless step) and its layout."""
        if id(variable) not in self._states and self._adapter.can_create_variables():
            self.build(variable)
        if id(variable) not in self._states:
            return None, self._layout_for(variable)
        _, state, layout = self._states[id(variable)]
        return state, layout

    def _warn_not_carried(self, has_state: bool) -> None:
        """Says that a stateless step starts every time from the same state.

        The estimate stays as accurate (the iterations go on until `tol`),
        but costs more the further the kernel drifts from that state. One
        message for every kernel, so that Python shows it once.
        """
        start = "the state solved before training" if has_state else "scratch"
        warnings.warn(
            "SpectralNorm: this stateless step does not carry the constraint's "
            "state (Keras's JAX `fit` carries only trainable and optimizer "
            f"variables), so every step estimates sigma from {start}: as "
            "accurately, at a cost that grows as the kernel drifts. To carry "
            "it, train with mode='reparam' (the wrapper keeps its state in the "
            "layer) or write the step as in kerasnorm's docs/backends.md.",
            stacklevel=3,
        )

    def build(self, variable, owner: str | None = None):
        """Creates the state for the kernel `variable`, if it has none yet.

        The state (the kernel's top singular vectors) starts empty and is
        solved exactly at the first projection; where `fit` does not carry
        it from step to step (Keras 3 on JAX), it is solved right away, and
        every step starts from it. Without this call it is created at the
        first projection, which happens inside the optimizer's traced train
        step, lifted out of it (and, inside a stateless step, where no
        variable can be made, not at all: each step then solves sigma
        afresh). Building it beforehand, as `apply_normalization` does,
        creates it under the distribution strategy in scope at that time.

        Args:
            variable: The kernel variable.
            owner: For a dict `layout`, the name of the layer that made the
                kernel; by default read from the variable's name (tf-keras
                leaves the layer's name out of a weight made outside a call).

        Returns:
            The state variable.
        """
        entry = self._states.get(id(variable))
        if entry is not None:
            return entry[1]
        layout = self._layout_for(variable, owner)
        if self._adapter.stateless_training:
            # Solved now: a stateless step starts every time from it.
            matrix = self._operand(
                ops.cast(
                    self._adapter.read_master(variable), work_dtype(variable.dtype)
                ),
                layout,
            )
            start = ops.convert_to_numpy(self.tracking.solve(matrix).state)
        else:
            start = self.tracking.empty_state(
                self._operand_shape(tuple(variable.shape), layout),
                work_dtype(variable.dtype),
            )
        state = self._adapter.constraint_state(start)
        self._states[id(variable)] = (variable, state, layout)
        return state

    def _operand(self, kernel, layout: str):
        """What sigma is the largest singular value of: the kernel's matrix
        view, or the convolution on its input shape."""
        if self.geometry is None:
            return layouts.kernel_matrix(kernel, layout)
        return operators.ConvOperator(kernel, layout, self.geometry)

    def _operand_shape(self, kernel_shape: tuple, layout: str) -> tuple[int, int]:
        if self.geometry is None:
            return layouts.matrix_shape(kernel_shape, layout)
        return operators.operator_shape(kernel_shape, layout, self.geometry)

    def _layout_for(self, variable, owner: str | None = None) -> str:
        """The layout of `variable`, looked up by its owner for a dict layout."""
        if isinstance(self.layout, str):
            return self.layout
        if variable is None:
            raise KerasNormValueError(
                f"A SpectralNorm with layouts by layer, {self.layout!r}, needs the "
                "kernel variable to know which layout applies; it was given a "
                "plain tensor. Call it on the variable, or give one layout."
            )
        owner = owner or self._adapter.owner_name(variable)
        if owner not in self.layout:
            raise KerasNormValueError(
                f"SpectralNorm has layouts for kernels of {sorted(self.layout)}, "
                f"but kernel {variable.name!r} belongs to layer {owner!r}. Add its "
                "layout to `layout`."
            )
        return self.layout[owner]

    def get_config(self):
        return {
            "layout": self.layout,
            **self._options.get_config(),
            "sigma": self.sigma,
            "clip": self.clip,
            "geometry": None if self.geometry is None else self.geometry.get_config(),
        }
