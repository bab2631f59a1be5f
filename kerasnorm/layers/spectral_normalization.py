"""SpectralNormalization: the reparametrizing wrapper shared by both Kerases."""

from __future__ import annotations

import tensorflow as tf

from kerasnorm.errors import KerasNormValueError
from kerasnorm.layers.kernels import kernel_slots
from kerasnorm.layers.spectral_norm import check_options
from kerasnorm.ops import spectral


class SpectralNormalizationBase:
    """Wraps a layer so that its kernels are used as `W / sigma(W)`.

    The reparametrization of SNGAN (Algorithm 1): the wrapped layer computes
    with `W / sigma(W)`, and the gradient flows through sigma as well
    (`u` and `v` held constant), so the optimizer steps on the raw kernel `W`
    knowing how sigma will move. The raw kernel is never overwritten.

    Each kernel keeps a right singular vector `v` as a non-trainable weight
    of the wrapper, converged on the kernel when the wrapper is built and
    saved with the model. A call with `training=True` runs `n_iter` power
    iterations and updates `v`; any other call uses `v` as it is, so
    inference is deterministic and changes no variable.

    Kernels of Dense, Conv1D/2D/3D, Conv1D/2D/3DTranspose, DepthwiseConv1D/2D,
    SeparableConv1D/2D (both kernels) and Embedding are supported, each in
    its own layout (see `kerasnorm.ops.spectral`).

    Args:
        layer: The layer to wrap.
        n_iter: Power iterations per training call. Defaults to `1`.
        tol: If set, iterate until the relative change of sigma falls below
            `tol` (at most `max_iter` iterations) instead of `n_iter` times.
            Defaults to `None`.
        max_iter: Upper bound on the iterations when `tol` is set.
            Defaults to `100`.
        eps: Floor on vector norms and on sigma; a zero kernel stays zero.
            Defaults to `1e-12`.
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

    def __init__(
        self,
        layer,
        n_iter: int = 1,
        tol: float | None = None,
        max_iter: int = 100,
        eps: float = 1e-12,
        **kwargs,
    ):
        super().__init__(layer, **kwargs)
        check_options(n_iter, tol, max_iter, eps)
        if not kernel_slots(layer, self._adapter.layers):
            raise KerasNormValueError(
                f"{type(self).__name__} cannot wrap layer {layer.name!r} of type "
                f"{type(layer).__name__}: it has no kernel it can normalize. "
                "Supported: Dense, Conv1D/2D/3D and their Transpose, "
                "DepthwiseConv1D/2D, SeparableConv1D/2D, Embedding."
            )
        self.n_iter = n_iter
        self.tol = None if tol is None else float(tol)
        self.max_iter = max_iter
        self.eps = float(eps)

    def build(self, input_shape=None):
        super().build(input_shape)
        self._kernels = []
        for slot in kernel_slots(self.layer, self._adapter.layers):
            variable = slot.variable(self.layer)
            state = self._adapter.add_state_weight(
                self,
                name=f"{slot.attributes[0]}_v",
                value=self._converged_vector(variable, slot.layout),
            )
            self._kernels.append((variable, slot.layout, state))
        self.built = True

    def warm_start(self) -> None:
        """Converges the tracked vectors on the current kernels.

        The wrapper does this when it is built. Call it again after setting
        the wrapped layer's kernels by hand (e.g. `set_weights` on the
        inner layer), so the next call is accurate at once.
        """
        for variable, layout, state in self._kernels:
            state.assign(self._converged_vector(variable, layout))

    def _converged_vector(self, variable, layout: str) -> tf.Tensor:
        with tf.init_scope():
            kernel = tf.cast(self._adapter.read_master(variable), tf.float32)
            return spectral.warm_start(spectral.kernel_matrix(kernel, layout), self.eps)

    def call(self, inputs, training=None):
        if isinstance(training, (tf.Tensor, tf.Variable)):
            kernels = tf.cond(
                training,
                lambda: self._normalized_kernels(training=True),
                lambda: self._normalized_kernels(training=False),
            )
        else:
            kernels = self._normalized_kernels(training=bool(training))
        substitutions = [
            (variable, kernel)
            for (variable, _, _), kernel in zip(self._kernels, kernels, strict=True)
        ]
        with self._adapter.substitute(self.layer, substitutions):
            return self.layer(inputs)

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def fold(self):
        """A plain copy of the wrapped layer whose kernels are `W / sigma(W)`.

        For export, like PyTorch's `remove_parametrizations(...,
        leave_parametrized=True)`: the copy computes what the wrapper
        computes at inference, without the wrapper.

        Returns:
            A new built layer of the wrapped layer's class and config.

        Raises:
            ValueError: If the wrapper is not built yet.
        """
        if not self.built:
            raise KerasNormValueError(
                f"{type(self).__name__} {self.name!r} is not built yet: call it "
                "on an input once before folding it."
            )
        folded = {
            id(variable): kernel
            for (variable, _, _), kernel in zip(
                self._kernels, self._normalized_kernels(training=False), strict=True
            )
        }
        layer = type(self.layer).from_config(self.layer.get_config())
        layer.build_from_config(self.layer.get_build_config())
        layer.set_weights(
            [
                tf.convert_to_tensor(folded.get(id(weight), weight)).numpy()
                for weight in self.layer.weights
            ]
        )
        return layer

    def _normalized_kernels(self, training: bool) -> list[tf.Tensor]:
        """Each kernel as `W / sigma(W)`, differentiable in W with u, v fixed.

        With `training`, the tracked vectors first take `n_iter` power
        iterations and are saved; otherwise they are used as they are.
        """
        kernels = []
        for variable, layout, state in self._kernels:
            kernel = tf.cast(self._adapter.read_master(variable), tf.float32)
            matrix = spectral.kernel_matrix(kernel, layout)
            v = tf.convert_to_tensor(state)
            if training:
                u, v, _ = spectral.track(
                    matrix, v, self.n_iter, self.tol, self.max_iter, self.eps
                )
                state.assign(v)
            else:
                u = spectral.left_vector(matrix, v, self.eps)
            sigma = spectral.sigma_of(matrix, tf.stop_gradient(u), tf.stop_gradient(v))
            scaled = tf.where(
                sigma > self.eps, kernel / tf.maximum(sigma, self.eps), kernel
            )
            kernels.append(tf.cast(scaled, variable.dtype))
        return kernels

    def get_config(self):
        config = {
            "n_iter": self.n_iter,
            "tol": self.tol,
            "max_iter": self.max_iter,
            "eps": self.eps,
        }
        return {**super().get_config(), **config}
