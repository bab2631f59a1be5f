"""SpectralNormalization: the reparametrizing wrapper shared by both Kerases."""

from __future__ import annotations

import tensorflow as tf

from kerasnorm.errors import KerasNormValueError
from kerasnorm.layers.kernels import kernel_slots
from kerasnorm.layers.tracking import Tracking
from kerasnorm.ops import layouts
from kerasnorm.ops import sigma as sigma_ops


class SpectralNormalizationBase:
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

    Kernels of Dense, Conv1D/2D/3D, Conv1D/2D/3DTranspose, DepthwiseConv1D/2D,
    SeparableConv1D/2D (both kernels) and Embedding are supported, each in
    its own layout (see `kerasnorm.ops.layouts`).

    Args:
        layer: The layer to wrap.
        n_iter: Iterations per training call, at least. Defaults to `1`.
        tol: Stop iterating once the top singular pair's residual is at most
            `tol * sigma`; None runs exactly `n_iter` iterations.
            Defaults to `3e-3`.
        max_iter: Iterations per training call at most. Defaults to `6`.
        block_size: Singular vectors tracked per kernel. Defaults to `4`,
            twice the constraint's: the gradient through sigma holds the
            tracked direction down while the others grow, so the top
            singular values bunch up and a new top direction rises from
            outside a block of two (measured on a DCGAN-64 discriminator,
            100 Adam steps: median error in sigma 1.9e-3 with two vectors,
            1.9e-4 with four, for a step about 3% longer).
        eps: A spectral norm at or below this counts as zero, and a zero
            kernel stays zero. Defaults to `1e-12`.
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
        tol: float | None = 3e-3,
        max_iter: int = 6,
        block_size: int = 4,
        eps: float = 1e-12,
        **kwargs,
    ):
        super().__init__(layer, **kwargs)
        if not kernel_slots(layer, self._adapter.layers):
            raise KerasNormValueError(
                f"{type(self).__name__} cannot wrap layer {layer.name!r} of type "
                f"{type(layer).__name__}: it has no kernel it can normalize. "
                "Supported: Dense, Conv1D/2D/3D and their Transpose, "
                "DepthwiseConv1D/2D, SeparableConv1D/2D, Embedding."
            )
        self.tracking = Tracking(n_iter, tol, max_iter, block_size, eps)

    def build(self, input_shape=None):
        super().build(input_shape)
        self._kernels = []
        for slot in kernel_slots(self.layer, self._adapter.layers):
            variable = slot.variable(self.layer)
            state = self._adapter.add_state_weight(
                self,
                name=f"{slot.attributes[0]}_vectors",
                value=self.tracking.empty_state(
                    layouts.matrix_shape(variable.shape, slot.layout)
                ),
            )
            self._kernels.append((variable, slot.layout, state))
        self.built = True

    def warm_start(self) -> None:
        """Recomputes the tracked singular vectors of the current kernels.

        The state starts empty and is solved exactly at the first call;
        after that, each training call follows the kernel as it changes.
        Call this after setting the wrapped layer's kernels by hand (e.g.
        `set_weights` on the inner layer) for an exact state at once; else
        the next training calls catch up by iterating longer.
        """
        for variable, layout, state in self._kernels:
            state.assign(self._exact_state(variable, layout))

    def _exact_state(self, variable, layout: str) -> tf.Tensor:
        with tf.init_scope():
            kernel = tf.cast(self._adapter.read_master(variable), tf.float32)
            return self.tracking.warm_start(layouts.kernel_matrix(kernel, layout))

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
        self._check_built("folding it")
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

    def effective_kernels(self) -> dict[str, tf.Tensor]:
        """The kernels the wrapped layer computes with at inference, `W / sigma(W)`.

        Sigma comes from the tracked singular vectors as they are: nothing
        is updated, so reading the kernels changes no variable and returns
        what a call with `training=False` uses. To see their spectral norm,
        take each one's matrix view (`kerasnorm.ops.layouts.kernel_matrix`).

        Returns:
            Each normalized kernel, in the kernel variable's dtype, by name:
            `"kernel"`, `"depthwise_kernel"` for a depthwise convolution
            (on both Kerases, though Keras 3 calls the attribute `kernel`),
            `"depthwise_kernel"` and `"pointwise_kernel"` for a separable
            one, `"embeddings"` for an Embedding.

        Raises:
            KerasNormValueError: If the wrapper is not built yet.

        Example:

        >>> dense = kerasnorm.SpectralNormalization(keras.layers.Dense(3))
        >>> dense.build((None, 5))
        >>> kernel = dense.effective_kernels()["kernel"]
        >>> round(float(np.linalg.norm(kernel.numpy(), 2)), 4)
        1.0
        """
        self._check_built("reading its kernels")
        slots = kernel_slots(self.layer, self._adapter.layers)
        kernels = self._normalized_kernels(training=False)
        return {
            slot.attributes[0]: kernel
            for slot, kernel in zip(slots, kernels, strict=True)
        }

    def _check_built(self, doing: str) -> None:
        if not self.built:
            raise KerasNormValueError(
                f"{type(self).__name__} {self.name!r} is not built yet: call it "
                f"on an input once before {doing}."
            )

    def _normalized_kernels(self, training: bool) -> list[tf.Tensor]:
        """Each kernel as `W / sigma(W)`, differentiable in W with u, v fixed.

        With `training`, the tracked vectors are first updated and saved;
        otherwise they are used as they are.
        """
        kernels = []
        for variable, layout, state in self._kernels:
            kernel = tf.cast(self._adapter.read_master(variable), tf.float32)
            # The tracked vectors are constants to the gradient: a tape
            # recording the iterations would store every loop step for nothing.
            matrix = tf.stop_gradient(layouts.kernel_matrix(kernel, layout))
            if training:
                estimate = self.tracking.step(matrix, tf.convert_to_tensor(state))
                state.assign(estimate.state)
                sigma, u, v = estimate.sigma, estimate.u, estimate.v
            else:
                sigma, u, v = self.tracking.current(matrix, tf.convert_to_tensor(state))
            normalized = sigma_ops.divide_by_sigma(
                kernel, sigma, u, v, layout, self.tracking.eps
            )
            kernels.append(tf.cast(normalized, variable.dtype))
        return kernels

    def get_config(self):
        return {**super().get_config(), **self.tracking.get_config()}
