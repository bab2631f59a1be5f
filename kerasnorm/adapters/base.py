"""The Adapter protocol: everything kerasnorm needs that differs between Kerases.

Code above the adapters never asks which Keras it is dealing with; it asks
the adapter of the model (or layer) it was given, from `adapter_for`.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from kerasnorm.ir import TensorInfo


@dataclasses.dataclass
class GraphView:
    """The graph of a functional or Sequential model, as Keras keeps it.

    Attributes:
        inputs: The model's input tensors, in the model's structure.
        outputs: The model's output tensors, in the model's structure.
        calls: `(operation, args, kwargs, flat outputs, call index)` for
            every call, in topological order, inputs excluded. The tensors
            are the model's own symbolic tensors; the call index orders the
            calls of a shared operation.
        sequential: Whether the model is a `Sequential`.
    """

    inputs: Any
    outputs: Any
    calls: list[tuple[Any, tuple, dict, list, int]]
    sequential: bool


class Adapter(abc.ABC):
    """One Keras flavour, as seen by kerasnorm.

    Attributes:
        name: `"keras3"` or `"tf_keras"`.
        keras: The Keras package (`keras` or `tf_keras`).
        layers: Its `layers` namespace.
        PixelNorm: kerasnorm's PixelNorm layer class for this Keras.
        SpectralNorm: kerasnorm's SpectralNorm constraint class.
        SpectralNormalization: kerasnorm's spectral normalization wrapper.
        EqualizedLR: kerasnorm's equalized learning rate wrapper.
        ConstraintChain: kerasnorm's constraint composition class.
    """

    name: str
    keras: ModuleType
    layers: ModuleType
    PixelNorm: type
    SpectralNorm: type
    SpectralNormalization: type
    EqualizedLR: type
    ConstraintChain: type

    @abc.abstractmethod
    def owns(self, obj: Any) -> bool:
        """Whether `obj` (a model, layer, or variable) belongs to this Keras."""

    @abc.abstractmethod
    def read(self, value):
        """`value` as a tensor: a variable read once, a tensor as it is.

        A variable left unread is read again by every op that uses it, also
        inside `cond` branches, which then count as stateful.
        """

    @abc.abstractmethod
    def to_numpy(self, value):
        """`value` (a tensor or variable) as a NumPy array."""

    @abc.abstractmethod
    def read_master(self, variable):
        """The stored value of `variable`, never autocast to half precision."""

    @abc.abstractmethod
    def is_variable(self, obj: Any) -> bool:
        """Whether `obj` is a variable (a weight) of this Keras."""

    @abc.abstractmethod
    def owner_name(self, variable) -> str:
        """The name of the layer that created `variable` (`"query"` for
        `.../mha/query/kernel`)."""

    @abc.abstractmethod
    def add_state_weight(self, layer, name: str, value: Any):
        """Adds a non-trainable, never-autocast weight set to `value`, of its dtype."""

    @abc.abstractmethod
    def lifted(self) -> contextlib.AbstractContextManager:
        """Context in which variables and constants are made once, outside any
        function being traced (TensorFlow's `init_scope`)."""

    @abc.abstractmethod
    def constraint_state(self, value):
        """A non-trainable variable set to `value`, owned by a constraint.

        Made outside any traced function, read by the first replica under a
        distribution strategy, never autocast.
        """

    @abc.abstractmethod
    def copy_weight(self, source, destination) -> None:
        """Sets variable `destination` to a copy of variable `source`'s value."""

    @abc.abstractmethod
    def can_create_variables(self) -> bool:
        """Whether a variable may be created here: not inside a stateless
        step (Keras 3's `StatelessScope`)."""

    @abc.abstractmethod
    def carries(self, variable) -> bool:
        """Whether an assignment to `variable` here outlasts the step.

        False inside a stateless step that does not map `variable`: Keras
        3's `optimizer.stateless_apply`, which JAX's `fit` runs, maps only the
        optimizer's and the trainable variables, and drops any other update.
        """

    @property
    @abc.abstractmethod
    def stateless_training(self) -> bool:
        """Whether `fit` runs its optimizer step statelessly (Keras 3 on
        JAX): a constraint's state then stays at its value when the step was
        compiled."""

    @abc.abstractmethod
    def substitute(
        self, layer, substitutions: Sequence[tuple[Any, Any]]
    ) -> contextlib.AbstractContextManager:
        """Context in which `layer` computes with tensors instead of kernels.

        Args:
            layer: A built layer.
            substitutions: `(kernel, tensor)` pairs, each kernel a
                `kerasnorm.layers.kernels.Kernel` of `layer`; inside the
                context, `layer`'s call reads `tensor` wherever it reads the
                kernel's variable, in `layer` itself or in any layer it holds.
        """

    @abc.abstractmethod
    def build_like(self, layer, original) -> None:
        """Builds the fresh clone `layer` as `original` was built, if this
        Keras cannot build it inside a wrapper from its first input's shape."""

    @abc.abstractmethod
    def run_to_build(self, layer, input_shape) -> None:
        """Runs `layer` on a symbolic input of `input_shape`, if this Keras
        needs that to create weights a layer makes at its first call."""

    # Reading and building graphs.

    @abc.abstractmethod
    def graph_view(self, model) -> GraphView | None:
        """The graph of `model`, or None if it has none (a subclassed model)."""

    @abc.abstractmethod
    def is_model(self, obj) -> bool:
        """Whether `obj` is a Keras model (functional, Sequential or subclassed)."""

    @abc.abstractmethod
    def is_symbolic(self, obj) -> bool:
        """Whether `obj` is a symbolic tensor of a functional graph."""

    @abc.abstractmethod
    def input_layer(self, tensor):
        """The InputLayer that created the model input `tensor`."""

    @abc.abstractmethod
    def tensor_info(self, tensor) -> TensorInfo:
        """Shape and dtype of a symbolic tensor."""

    @abc.abstractmethod
    def make_input(self, input_layer):
        """A new symbolic input like the one `input_layer` created."""

    def clone_layer(self, layer, config: dict):
        """A new layer of `layer`'s class built from `config`."""
        cls = type(layer)
        # The config is the user's own in-memory layer's, so a Lambda's
        # function may be rebuilt from its bytecode: safe mode is off.
        return self.keras.saving.deserialize_keras_object(
            {"class_name": cls.__name__, "config": config},
            custom_objects={cls.__name__: cls},
            safe_mode=False,
        )

    @abc.abstractmethod
    def make_model(self, name: str, inputs, outputs, sequential_layers=None):
        """A functional model, or a Sequential one if `sequential_layers` is given.

        Args:
            name: The model's name.
            inputs: Symbolic input tensors, in the model's structure.
            outputs: Symbolic output tensors, in the model's structure.
            sequential_layers: For a Sequential, its layers in order; the
                model is then built on the single tensor in `inputs`.
        """

    def __repr__(self) -> str:
        return f"<kerasnorm adapter {self.name}>"
