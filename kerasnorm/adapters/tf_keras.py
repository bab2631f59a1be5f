"""Keras 2 (the `tf_keras` package): adapter and classes.

`kerasnorm.PixelNorm` and friends are these classes when `tf.keras` is
tf-keras (`TF_USE_LEGACY_KERAS=1`). Import them from here to use tf-keras
explicitly:

    from kerasnorm.adapters.tf_keras import PixelNorm, SpectralNorm
"""

from __future__ import annotations

import contextlib

import tensorflow as tf
import tf_keras

# No public way to read an AutoCastVariable without the cast of a mixed
# precision call.
from tf_keras.src.mixed_precision.autocast_variable import enable_auto_cast_variables

from kerasnorm.adapters.base import Adapter, GraphView
from kerasnorm.ir import TensorInfo
from kerasnorm.layers.constraint_chain import ConstraintChainBase
from kerasnorm.layers.equalized_lr import EqualizedLRBase
from kerasnorm.layers.pixel_norm import PixelNormBase
from kerasnorm.layers.spectral_norm import SpectralNormBase
from kerasnorm.layers.spectral_normalization import SpectralNormalizationBase


class TfKerasAdapter(Adapter):
    """kerasnorm's view of tf-keras (Keras 2)."""

    name = "tf_keras"
    keras = tf_keras
    layers = tf_keras.layers
    stateless_training = False

    def owns(self, obj) -> bool:
        return isinstance(
            obj,
            (tf_keras.layers.Layer, tf_keras.constraints.Constraint),
        )

    def read(self, value):
        return tf.convert_to_tensor(value)

    def to_numpy(self, value):
        return tf.convert_to_tensor(value).numpy()

    def read_master(self, variable):
        with enable_auto_cast_variables(None):
            return self.read(variable)

    def is_variable(self, obj) -> bool:
        return isinstance(obj, tf.Variable)

    def owner_name(self, variable) -> str:
        parts = variable.name.split(":")[0].split("/")
        return parts[-2] if len(parts) > 1 else ""

    def lifted(self):
        return tf.init_scope()

    def constraint_state(self, value):
        with tf.init_scope():
            return tf.Variable(
                value,
                trainable=False,
                name="spectral_norm_vectors",
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
            )

    def copy_weight(self, source, destination) -> None:
        destination.assign(source)

    def can_create_variables(self) -> bool:
        return True

    def carries(self, variable) -> bool:
        return True

    def add_state_weight(self, layer, name, value):
        return layer.add_weight(
            name=name,
            shape=tuple(value.shape),
            initializer=lambda shape, dtype=None, **kwargs: value,
            dtype=value.dtype,
            trainable=False,
            experimental_autocast=False,
        )

    @contextlib.contextmanager
    def substitute(self, layer, substitutions):
        # tf-keras layers read their kernels from plain attributes
        # (`self.kernel`, `self.cell.kernel` in an LSTM), so the tensor stands
        # in the attribute of the layer that keeps the variable, for the
        # duration of the call, cast as an AutoCastVariable would be.
        saved = [
            (kernel.holder, kernel.attribute, kernel.variable)
            for kernel, _ in substitutions
        ]
        try:
            for kernel, tensor in substitutions:
                holder = kernel.holder
                value = tf.cast(tensor, holder.compute_dtype)
                object.__setattr__(holder, kernel.attribute, value)
            yield
        finally:
            for holder, attribute, variable in saved:
                object.__setattr__(holder, attribute, variable)

    def build_like(self, layer, original):
        """tf-keras builds a layer with several inputs at its first call,
        inside the wrapper's, where its weights get the wrapper's name scope
        (built here they would lose it, and `.h5` files need it)."""

    def run_to_build(self, layer, input_shape):
        """tf-keras lets a wrapper add weights at its first call, after the
        wrapped layer made its own there."""

    def graph_view(self, model):
        # tf-keras has no public graph API: nodes, their depths and a
        # tensor's history are private attributes.
        if not isinstance(model, tf_keras.Model) or not getattr(
            model, "_is_graph_network", False
        ):
            return None
        calls = [
            (
                node.layer,
                tuple(node.call_args),
                dict(node.call_kwargs),
                tf.nest.flatten(node.outputs),
                node.layer._inbound_nodes.index(node),
            )
            for depth in sorted(model._nodes_by_depth, reverse=True)
            for node in model._nodes_by_depth[depth]
            if not node.is_input
        ]
        return GraphView(
            inputs=model._nested_inputs,
            outputs=model._nested_outputs,
            calls=calls,
            sequential=isinstance(model, tf_keras.Sequential),
        )

    def is_model(self, obj) -> bool:
        return isinstance(obj, tf_keras.Model)

    def is_symbolic(self, obj) -> bool:
        # tf-keras exports its symbolic tensor class only as __internal__.
        return isinstance(obj, tf_keras.__internal__.KerasTensor)

    def input_layer(self, tensor):
        return tensor._keras_history.layer

    def tensor_info(self, tensor) -> TensorInfo:
        return TensorInfo(tuple(tensor.shape), tensor.dtype.name)

    def make_input(self, input_layer):
        config = dict(input_layer.get_config())
        config["batch_shape"] = config.pop("batch_input_shape")
        return tf_keras.Input(**config)

    def make_model(self, name, inputs, outputs, sequential_layers=None):
        if sequential_layers is not None:
            return tf_keras.Sequential([inputs, *sequential_layers], name=name)
        return tf_keras.Model(inputs, outputs, name=name)


ADAPTER = TfKerasAdapter()


@tf_keras.saving.register_keras_serializable(package="kerasnorm")
class PixelNorm(PixelNormBase, tf_keras.layers.Layer):
    __doc__ = PixelNormBase.__doc__


@tf_keras.saving.register_keras_serializable(package="kerasnorm")
class SpectralNorm(SpectralNormBase, tf_keras.constraints.Constraint):
    __doc__ = SpectralNormBase.__doc__
    _adapter = ADAPTER


class _KernelWrapper(tf_keras.layers.Wrapper):
    """tf-keras's side of kerasnorm's wrappers (`KernelWrapperBase`)."""

    _adapter = ADAPTER

    # tf-keras passes `training` and `mask` to a call taking **kwargs, and
    # mishandles a named `training` after *args (the inputs in *args stay
    # symbolic Keras tensors, so a multi-input layer inside fails).
    def call(self, inputs, *args, **kwargs):
        training = kwargs.pop("training", None)
        mask = kwargs.pop("mask", None)
        return self._wrapped_call((inputs, *args), kwargs, training, mask)


@tf_keras.saving.register_keras_serializable(package="kerasnorm")
class SpectralNormalization(SpectralNormalizationBase, _KernelWrapper):
    __doc__ = SpectralNormalizationBase.__doc__


@tf_keras.saving.register_keras_serializable(package="kerasnorm")
class EqualizedLR(EqualizedLRBase, _KernelWrapper):
    __doc__ = EqualizedLRBase.__doc__


@tf_keras.saving.register_keras_serializable(package="kerasnorm")
class ConstraintChain(ConstraintChainBase, tf_keras.constraints.Constraint):
    __doc__ = ConstraintChainBase.__doc__
    _adapter = ADAPTER


# Loading an `.h5` file deserializes constraints nested in a layer's config
# by their bare class name, not their registered "kerasnorm>" key.
for _constraint in (SpectralNorm, ConstraintChain):
    tf_keras.saving.get_custom_objects().setdefault(_constraint.__name__, _constraint)

ADAPTER.ConstraintChain = ConstraintChain
ADAPTER.PixelNorm = PixelNorm
ADAPTER.SpectralNorm = SpectralNorm
ADAPTER.SpectralNormalization = SpectralNormalization
ADAPTER.EqualizedLR = EqualizedLR
