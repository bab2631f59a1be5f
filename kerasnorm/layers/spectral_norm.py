"""SpectralNorm: the kernel constraint logic shared by both Kerases."""

from __future__ import annotations

import tensorflow as tf

from kerasnorm.errors import KerasNormTypeError, KerasNormValueError
from kerasnorm.ops import spectral

_HALF_DTYPES = (tf.float16, tf.bfloat16)


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise KerasNormTypeError(f"`{name}` must be an int. Received: {name}={value!r}")
    if value < 1:
        raise KerasNormValueError(
            f"`{name}` must be at least 1. Received: {name}={value}"
        )
    return value


def _check_positive_number(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise KerasNormTypeError(
            f"`{name}` must be a number. Received: {name}={value!r}"
        )
    if not value > 0:
        raise KerasNormValueError(
            f"`{name}` must be positive. Received: {name}={value!r}"
        )
    return float(value)


def check_options(n_iter, tol, max_iter, eps) -> None:
    """Validates the power-iteration options of the constraint and wrapper."""
    _check_positive_int("n_iter", n_iter)
    _check_positive_int("max_iter", max_iter)
    if tol is not None:
        _check_positive_number("tol", tol)
    _check_positive_number("eps", eps)


class SpectralNormBase:
    """Kernel constraint that divides a kernel by its largest singular value.

    Attach it as a `kernel_constraint` (or `depthwise_constraint`,
    `pointwise_constraint`, `embeddings_constraint`): after every optimizer
    step Keras replaces the kernel `W` by `sigma_target * W / sigma(W)`, where
    `sigma(W)` is the spectral norm of the kernel's matrix view (output
    channels against all other axes; see `layout`).

    sigma is estimated by power iteration on a vector kept per kernel, as in
    SNGAN: the vector is created, and converged on the kernel, the first time
    the constraint sees that kernel, so even the first step is accurate; each
    later step spends `n_iter` iterations to follow the kernel as it trains.
    `tol` trades time for accuracy: iterate until sigma settles.

    The vector lives in a non-trainable `tf.Variable` owned by the constraint,
    not by the layer: it is a cache, rebuilt from the kernel after a model is
    loaded. One constraint object may serve several kernels; each gets its
    own vector.

    Args:
        layout: How the kernel stores its output channels. `"dense"` for
            Dense, Conv1D/2D/3D, Embedding and pointwise kernels
            `(..., in, out)`; `"transpose"` for Conv1D/2D/3DTranspose
            `(..., out, in)`; `"depthwise"` for depthwise kernels
            `(..., in, multiplier)`. The constraint only sees the weight, so
            it cannot tell a transposed convolution by itself.
            Defaults to `"dense"`.
        n_iter: Power iterations per step. Defaults to `1`.
        tol: If set, iterate until the relative change of sigma falls below
            `tol` (at most `max_iter` iterations) instead of `n_iter` times.
            Defaults to `None`.
        max_iter: Upper bound on the iterations when `tol` is set.
            Defaults to `100`.
        sigma: The target spectral norm. Defaults to `1.0`.
        clip: If `True`, divide only when the spectral norm exceeds `sigma`
            (a Lipschitz bound rather than an equality). Defaults to `False`.
        eps: Floor on vector norms and on sigma; a zero kernel stays zero.
            Defaults to `1e-12`.

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
        tol: float | None = None,
        max_iter: int = 100,
        sigma: float = 1.0,
        clip: bool = False,
        eps: float = 1e-12,
    ):
        spectral.check_layout(layout)
        check_options(n_iter, tol, max_iter, eps)
        self.layout = layout
        self.n_iter = n_iter
        self.tol = None if tol is None else float(tol)
        self.max_iter = max_iter
        self.sigma = _check_positive_number("sigma", sigma)
        self.clip = bool(clip)
        self.eps = float(eps)
        # id(kernel variable) -> (the variable, its tracking state). Holding
        # the variable keeps its id from being reused by another one.
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
        kernel = tf.convert_to_tensor(value)
        work = tf.cast(kernel, tf.float32) if kernel.dtype in _HALF_DTYPES else kernel
        matrix = spectral.kernel_matrix(work, self.layout)
        state = None if variable is None else self._state_for(variable, matrix)
        if state is None:
            # A plain tensor has nowhere to keep a vector: solve it afresh.
            v = spectral.warm_start(matrix, self.eps)
            _, _, sigma = spectral.power_iteration(matrix, v, 1, self.eps)
        else:
            _, v, sigma = spectral.track(
                matrix,
                tf.convert_to_tensor(state),
                self.n_iter,
                self.tol,
                self.max_iter,
                self.eps,
            )
            state.assign(v)
        return tf.cast(work * self._scale(sigma), kernel.dtype)

    def _scale(self, sigma: tf.Tensor) -> tf.Tensor:
        scale = self.sigma / tf.maximum(sigma, self.eps)
        if self.clip:
            scale = tf.minimum(scale, 1.0)
        # A zero kernel has sigma 0: leave it as it is.
        return tf.where(sigma > self.eps, scale, tf.ones_like(scale))

    def _state_for(self, variable, matrix: tf.Tensor) -> tf.Variable:
        entry = self._states.get(id(variable))
        if entry is not None:
            return entry[1]
        # The optimizer calls constraints inside its traced train step;
        # the state must be created, and warm-started, outside of it.
        with tf.init_scope():
            current = tf.convert_to_tensor(variable)
            if current.dtype != matrix.dtype:
                current = tf.cast(current, matrix.dtype)
            start = spectral.warm_start(spectral.kernel_matrix(current, self.layout))
            state = tf.Variable(
                start,
                trainable=False,
                name="spectral_norm_v",
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
            )
        self._states[id(variable)] = (variable, state)
        return state

    def get_config(self):
        return {
            "layout": self.layout,
            "n_iter": self.n_iter,
            "tol": self.tol,
            "max_iter": self.max_iter,
            "sigma": self.sigma,
            "clip": self.clip,
            "eps": self.eps,
        }
