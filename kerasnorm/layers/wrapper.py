"""KernelWrapper: a layer computing with its wrapped layer's kernels, transformed.

The mechanism both of kerasnorm's wrappers share, as
`torch.nn.utils.parametrize` is PyTorch's: the wrapped layer keeps its
weights as variables, and at every call the wrapper substitutes a tensor
computed from them (`W / sigma(W)` for `SpectralNormalization`, `c * V` for
`EqualizedLR`), so the layer computes with the transformed weights and the
gradient flows through the transformation to the stored ones. A subclass
says which weights it replaces (`_substituted`) and by what (`_values`),
and creates any state it keeps per kernel (`_kernels_found`).
"""

from __future__ import annotations

import abc
import inspect

from keras import ops

from kerasnorm.errors import KerasNormValueError
from kerasnorm.layers.kernels import Kernel, find_kernels


class KernelWrapperBase(abc.ABC):
    """Wraps a layer so that it computes with its kernels transformed.

    Every kernel of the wrapped layer is found (see
    `kerasnorm.layers.kernels`): Keras's kernel layers, composite ones
    (Bidirectional, TimeDistributed, RNN cells, MultiHeadAttention) and
    layers Keras does not know. The wrapper passes every call argument on
    (`training` and `mask` where the layer takes them).
    """

    # What the wrapper does to a kernel, for its error messages.
    _verb = "transform"

    def __init__(self, layer, **kwargs):
        super().__init__(layer, **kwargs)
        self.supports_masking = True
        parameters = inspect.signature(layer.call).parameters
        takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
        self._passes = {
            name: name in parameters or takes_any for name in ("training", "mask")
        }
        # The wrapped layer's `Kernel`s; None until they exist (a tf-keras
        # MultiHeadAttention makes them at its first call).
        self._found = None

    @abc.abstractmethod
    def _kernels_found(self, kernels: list[Kernel]) -> None:
        """Called once the wrapped layer's kernels exist, before any call."""

    @abc.abstractmethod
    def _substituted(self) -> list[Kernel]:
        """The records of the weights the wrapper replaces, kernels first."""

    @abc.abstractmethod
    def _values(self, training: bool) -> list:
        """The tensors the wrapped layer computes with in their place.

        Args:
            training: Whether the call trains (a wrapper may update state).

        Returns:
            One tensor per record of `_substituted`, in that order, of the
            variable's dtype and shape.
        """

    def build(self, input_shape=None):
        if not self.layer.built:
            try:
                self.layer.build(input_shape)
            except TypeError as error:
                raise KerasNormValueError(
                    f"{type(self).__name__} cannot build {type(self.layer).__name__} "
                    f"{self.layer.name!r} from the shape of its first input alone "
                    f"({error}). Build the layer before wrapping it: call it once on "
                    "its inputs, or use kerasnorm.apply_normalization."
                ) from error
        super().build(input_shape)
        self._find_kernels()
        if self._found is None and input_shape is not None:
            # A layer that makes its kernels (or its sublayers') at its first call.
            self._adapter.run_to_build(self.layer, input_shape)
            self._find_kernels()
        self.built = True

    def _find_kernels(self) -> None:
        kernels = find_kernels(self.layer, self._adapter)
        if not kernels:
            return
        problems = [k for k in kernels if k.problem is not None]
        if problems:
            raise KerasNormValueError(
                f"{type(self).__name__} cannot {self._verb} "
                + "; ".join(
                    f"{k.path} of {self.layer.name!r}: {k.problem}" for k in problems
                )
                + "."
            )
        self._found = kernels
        self._kernels_found(kernels)

    def _wrapped_call(self, args, kwargs, training=None, mask=None):
        """The call, once each Keras's `call` has read `training` and `mask`."""
        if self._found is None:
            # The first call makes the kernels (tf-keras's lazily built
            # layers); find them, then compute as usual.
            self.layer(*args, **kwargs)
            self._find_kernels()
            if self._found is None:
                raise KerasNormValueError(
                    f"{type(self).__name__} cannot wrap layer {self.layer.name!r} "
                    f"of type {type(self.layer).__name__}: it has no kernel to "
                    f"{self._verb} (no trainable weight of rank 2 or more that is "
                    "not a bias or a scale)."
                )
        if ops.is_tensor(training):
            values = ops.cond(
                training,
                lambda: self._values(training=True),
                lambda: self._values(training=False),
            )
        else:
            values = self._values(training=bool(training))
        substitutions = list(zip(self._substituted(), values, strict=True))
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

    def adopt(self, source) -> None:
        """Takes the weights of `source`, a plain layer like the wrapped one.

        What the rewrite calls to carry a model's weights into its wrapped
        clone: they are assigned to the wrapped layer's variables (a
        wrapper that stores them otherwise converts them after this).

        Args:
            source: A layer of the wrapped layer's class and config.
        """
        for weight, value in zip(self.layer.weights, source.weights, strict=True):
            self._adapter.copy_weight(value, weight)

    def fold(self):
        """A plain copy of the wrapped layer computing what the wrapper computes.

        For export, like PyTorch's `remove_parametrizations(...,
        leave_parametrized=True)`: the copy's weights are the ones the
        wrapper computes with at inference.

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
        """The wrapped layer's weights as the wrapper computes with them.

        In the order of `self.layer.weights`, as numpy arrays: what
        `set_weights` on a plain copy of the wrapped layer takes.

        Raises:
            KerasNormValueError: If the wrapper is not built yet.
        """
        self._check_built("folding it")
        folded = {
            id(record.variable): value
            for record, value in zip(
                self._substituted(), self._values(training=False), strict=True
            )
        }
        return [
            ops.convert_to_numpy(folded.get(id(weight), weight))
            for weight in self.layer.weights
        ]

    def effective_kernels(self) -> dict:
        """The kernels the wrapped layer computes with at inference.

        Nothing is updated: reading them changes no variable and returns
        what a call with `training=False` uses.

        Returns:
            Each transformed kernel, in the kernel variable's dtype, by its
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
        values = self._values(training=False)
        return {
            kernel.path: value
            for kernel, value in zip(
                self._found, values[: len(self._found)], strict=True
            )
        }

    def kernels(self) -> tuple:
        """The `kerasnorm.layers.kernels.Kernel` records of the wrapped kernels."""
        self._check_built("listing its kernels")
        return tuple(self._found)

    def _check_built(self, doing: str) -> None:
        if not self.built or self._found is None:
            raise KerasNormValueError(
                f"{type(self).__name__} {self.name!r} is not built yet: call it "
                f"on an input once before {doing}."
            )
