"""SpectralNormalization: the reparametrizing wrapper shared by both Kerases."""

from __future__ import annotations

import inspect
import re

from keras import ops

from kerasnorm.errors import KerasNormValueError
from kerasnorm.layers.kernels import find_kernels
from kerasnorm.layers.tracking import Tracking, work_dtype
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
            Defaults to `3e-3`.
        max_iter: Iterations per training call at most. Defaults to `6`.
        block_size: Singular vectors tracked per kernel. Defaults to `4`,
            twice the constraint's: the gradient through sigma holds the
            tracked direction down while the others grow, so the top
            singular values bunch up and a new top direction rises from
            outside a block of two (measured on a DCGAN-64 discriminator,
            100 Adam steps: median error in sigma 2.7e-3 with two vectors,
            2.0e-4 with four, at the same step cost, 1.078x and 1.080x).
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
        self.tracking = Tracking(n_iter, tol, max_iter, block_size, eps)
        self.supports_masking = True
        parameters = inspect.signature(layer.call).parameters
        takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
        self._passes = {
            name: name in parameters or takes_any for name in ("training", "mask")
        }
        # (kernel, state) per kernel; None until the wrapped layer's
        # kernels exist (a tf-keras MultiHeadAttention makes them at its
        # first call).
        self._kernels = None

    def build(self, input_shape=None):
        if not self.layer.built:
            try:
                self.layer.build(input_shape)
            except TypeError as error:
                raise KerasNormValueError(
                    f"{type(self).__name__} cannot build {type(self.layer).__name__} "
                    f"{self.layer.name!r} from the shape of its first input alone "
                    f"({error}). Build the layer before wrapping it: call it once on "
                    "its inputs, or use kerasnorm.apply_normalization(mode='reparam')."
                ) from error
        super().build(input_shape)
        self._track_kernels()
        if self._kernels is None and input_shape is not None:
            # A layer that makes its kernels (or its sublayers') at its first call.
            self._adapter.run_to_build(self.layer, input_shape)
            self._track_kernels()
        self.built = True

    def _track_kernels(self) -> None:
        """Finds the wrapped layer's kernels and creates their tracked vectors."""
        kernels = find_kernels(self.layer, self._adapter)
        if not kernels:
            return
        problems = [k for k in kernels if k.problem is not None]
        if problems:
            raise KerasNormValueError(
                f"{type(self).__name__} cannot normalize "
                + "; ".join(
                    f"{k.path} of {self.layer.name!r}: {k.problem}" for k in problems
                )
                + "."
            )
        self._kernels = []
        for kernel in kernels:
            # Lifted out of a functional model's scratch graph, where a
            # tf-keras layer that makes its kernels at its first call is.
            with self._adapter.lifted():
                empty = self.tracking.empty_state(
                    layouts.matrix_shape(kernel.shape, kernel.layout),
                    work_dtype(kernel.variable.dtype),
                )
            state = self._adapter.add_state_weight(
                self, name=f"{_weight_name(kernel.path)}_vectors", value=empty
            )
            self._kernels.append((kernel, state))

    def warm_start(self) -> None:
        """Recomputes the tracked singular vectors of the current kernels.

        The state starts empty and is solved exactly at the first call;
        after that, each training call follows the kernel as it changes.
        Call this after setting the wrapped layer's kernels by hand (e.g.
        `set_weights` on the inner layer) for an exact state at once; else
        the next training calls catch up by iterating longer.
        """
        for kernel, state in self._kernels or ():
            state.assign(self._exact_state(kernel))

    def _exact_state(self, kernel):
        with self._adapter.lifted():
            value = self._adapter.read_master(kernel.variable)
            value = ops.cast(value, work_dtype(value.dtype))
            return self.tracking.warm_start(layouts.kernel_matrix(value, kernel.layout))

    def _wrapped_call(self, args, kwargs, training=None, mask=None):
        """The call, once each Keras's `call` has read `training` and `mask`."""
        if self._kernels is None:
            # The first call makes the kernels (tf-keras's lazily built
            # layers); find them, then compute as usual.
            self.layer(*args, **kwargs)
            self._track_kernels()
            if self._kernels is None:
                raise KerasNormValueError(
                    f"{type(self).__name__} cannot wrap layer {self.layer.name!r} "
                    f"of type {type(self.layer).__name__}: it has no kernel to "
                    "normalize (no trainable weight of rank 2 or more that is "
                    "not a bias or a scale)."
                )
        if ops.is_tensor(training):
            kernels = ops.cond(
                training,
                lambda: self._normalized_kernels(training=True),
                lambda: self._normalized_kernels(training=False),
            )
        else:
            kernels = self._normalized_kernels(training=bool(training))
        substitutions = [
            (kernel, value)
            for (kernel, _), value in zip(self._kernels, kernels, strict=True)
        ]
        if self._passes["training"]:
            kwargs["training"] = training
        if mask is not None and self._passes["mask"]:
            kwargs["mask"] = mask
        with self._adapter.substitute(self.layer, substitutions):
            return self.layer(*args, **kwargs)

    def compute_output_shape(self, *args, **kwargs):
        return self.layer.compute_output_shape(*args, **kwargs)

    def compute_output_spec(self, *args, **kwargs):
        kwargs.pop("mask", None)
        return self.layer.compute_output_spec(*args, **kwargs)

    def compute_mask(self, inputs, mask=None):
        return self.layer.compute_mask(inputs, mask)

    def fold(self):
        """A plain copy of the wrapped layer whose kernels are `W / sigma(W)`.

        For export, like PyTorch's `remove_parametrizations(...,
        leave_parametrized=True)`: the copy computes what the wrapper
        computes at inference, without the wrapper.

        Returns:
            A new built layer of the wrapped layer's class and config.

        Raises:
            KerasNormValueError: If the wrapper is not built yet, or the
                wrapped layer makes its weights at its first call (tf-keras's
                MultiHeadAttention): fold the model holding it instead, with
                `kerasnorm.fold(model)`.
        """
        weights = self.folded_weights()
        layer = type(self.layer).from_config(self.layer.get_config())
        layer.build_from_config(self.layer.get_build_config())
        if len(layer.weights) != len(weights):
            raise KerasNormValueError(
                f"{type(self.layer).__name__} {self.layer.name!r} makes its "
                "weights at its first call, so a copy cannot be built from its "
                "config alone. Fold the model holding it: kerasnorm.fold(model)."
            )
        layer.set_weights(weights)
        return layer

    def folded_weights(self) -> list:
        """The wrapped layer's weights, each kernel replaced by `W / sigma(W)`.

        In the order of `self.layer.weights`, as numpy arrays: what
        `set_weights` on a plain copy of the wrapped layer takes.

        Raises:
            KerasNormValueError: If the wrapper is not built yet.
        """
        self._check_built("folding it")
        folded = {
            id(kernel.variable): value
            for (kernel, _), value in zip(
                self._kernels, self._normalized_kernels(training=False), strict=True
            )
        }
        return [
            ops.convert_to_numpy(folded.get(id(weight), weight))
            for weight in self.layer.weights
        ]

    def effective_kernels(self) -> dict:
        """The kernels the wrapped layer computes with at inference, `W / sigma(W)`.

        Sigma comes from the tracked singular vectors as they are: nothing
        is updated, so reading the kernels changes no variable and returns
        what a call with `training=False` uses. To see their spectral norm,
        take each one's matrix view (`kerasnorm.ops.layouts.kernel_matrix`
        in the kernel's layout, `kerasnorm.layers.kernels.find_kernels`).

        Returns:
            Each normalized kernel, in the kernel variable's dtype, by its
            path in the wrapped layer: `"kernel"`; `"depthwise_kernel"` for a
            depthwise convolution (on both Kerases, though Keras 3 calls the
            attribute `kernel`); `"depthwise_kernel"` and
            `"pointwise_kernel"` for a separable one; `"embeddings"` for an
            Embedding; `"lstm_cell/kernel"` and `"lstm_cell/recurrent_kernel"`
            for an LSTM; `"query/kernel"` ... `"attention_output/kernel"`
            for a MultiHeadAttention.

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
        values = self._normalized_kernels(training=False)
        return {
            kernel.path: value
            for (kernel, _), value in zip(self._kernels, values, strict=True)
        }

    def kernels(self) -> tuple:
        """The `kerasnorm.layers.kernels.Kernel` records of the wrapped kernels."""
        self._check_built("listing its kernels")
        return tuple(kernel for kernel, _ in self._kernels)

    def _check_built(self, doing: str) -> None:
        if not self.built or self._kernels is None:
            raise KerasNormValueError(
                f"{type(self).__name__} {self.name!r} is not built yet: call it "
                f"on an input once before {doing}."
            )

    def _normalized_kernels(self, training: bool) -> list:
        """Each kernel as `W / sigma(W)`, differentiable in W with u, v fixed.

        With `training`, the tracked vectors are first updated and saved;
        otherwise they are used as they are.
        """
        normalized = []
        for kernel, state in self._kernels:
            value = self._adapter.read_master(kernel.variable)
            value = ops.cast(value, work_dtype(value.dtype))
            # The tracked vectors are constants to the gradient: a tape
            # recording the iterations would store every loop step for nothing.
            matrix = ops.stop_gradient(layouts.kernel_matrix(value, kernel.layout))
            if training:
                estimate = self.tracking.step(matrix, self._adapter.read(state))
                state.assign(estimate.state)
                sigma, u, v = estimate.sigma, estimate.u, estimate.v
            else:
                sigma, u, v = self.tracking.current(matrix, self._adapter.read(state))
            divided = sigma_ops.divide_by_sigma(
                value, sigma, u, v, kernel.layout, self.tracking.eps
            )
            normalized.append(ops.cast(divided, kernel.variable.dtype))
        return normalized

    def get_config(self):
        return {**super().get_config(), **self.tracking.get_config()}


def _weight_name(path: str) -> str:
    """A kernel's path as a weight name: Keras 3 refuses `/` in one."""
    return re.sub(r"\W", "_", path).strip("_")
