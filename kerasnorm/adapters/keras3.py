"""Keras 3 (the `keras` package, on any backend): adapter and classes.

`kerasnorm.PixelNorm` and friends are these classes when `tf.keras` is
Keras 3 (the default on TensorFlow >= 2.16). Import them from here to use
Keras 3 explicitly:

    from kerasnorm.adapters.keras3 import PixelNorm, SpectralNorm
"""

from __future__ import annotations

import contextlib

import keras

# No public way to ask for the stateless scope in force (keras.StatelessScope
# is public, the getter is not).
from keras.src.backend.common.stateless_scope import get_stateless_scope

# No public way to read a variable without the autocast of a mixed
# precision call (keras.Variable.value applies it).
from keras.src.backend.common.variables import AutocastScope

# No public class for the models keras.Model(inputs, outputs) builds.
from keras.src.models.functional import Functional

from kerasnorm.adapters.base import Adapter, GraphView
from kerasnorm.ir import TensorInfo
from kerasnorm.layers.constraint_chain import ConstraintChainBase
from kerasnorm.layers.equalized_lr import EqualizedLRBase
from kerasnorm.layers.pixel_norm import PixelNormBase
from kerasnorm.layers.spectral_norm import SpectralNormBase
from kerasnorm.layers.spectral_normalization import SpectralNormalizationBase


class Keras3Adapter(Adapter):
    """kerasnorm's view of Keras 3."""

    name = "keras3"
    keras = keras
    layers = keras.layers

    def owns(self, obj) -> bool:
        return isinstance(
            obj, (keras.layers.Layer, keras.Variable, keras.constraints.Constraint)
        )

    def read(self, value):
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            # keras.ops.convert_to_tensor returns a TensorFlow variable as
            # it is; reading it is TensorFlow's conversion.
            return tf.convert_to_tensor(value)
        return keras.ops.convert_to_tensor(value)

    def to_numpy(self, value):
        return keras.ops.convert_to_numpy(value)

    def read_master(self, variable):
        with AutocastScope(None):
            return self.read(variable)

    def is_variable(self, obj) -> bool:
        return isinstance(obj, keras.Variable)

    def owner_name(self, variable) -> str:
        return variable.path.split("/")[-2] if "/" in variable.path else ""

    def lifted(self):
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            return tf.init_scope()
        # JAX and PyTorch trace no graph that a variable could be caught in.
        return contextlib.nullcontext()

    def constraint_state(self, value):
        with self.lifted():
            return keras.Variable(
                value,
                trainable=False,
                autocast=False,
                aggregation="only_first_replica",
                name="spectral_norm_vectors",
            )

    def copy_weight(self, source, destination) -> None:
        value = source.value
        if keras.backend.backend() == "jax":
            # A JAX variable holds the array it is assigned, and compiled
            # steps donate (delete) the arrays of the model they train,
            # which the other model would still hold. TensorFlow and
            # PyTorch copy into the variable's own buffer.
            value = keras.ops.copy(value)
        destination.assign(value)

    def can_create_variables(self) -> bool:
        return get_stateless_scope() is None

    def carries(self, variable) -> bool:
        scope = get_stateless_scope()
        return scope is None or scope.get_current_value(variable) is not None

    @property
    def stateless_training(self) -> bool:
        return keras.backend.backend() == "jax"

    def add_state_weight(self, layer, name, value):
        weight = layer.add_weight(
            name=name,
            shape=tuple(value.shape),
            initializer=lambda shape, dtype=None: value,
            dtype=value.dtype.name,
            trainable=False,
            autocast=False,
        )
        # TensorFlow checkpoints follow attributes, not Keras's weight lists:
        # without one, tf.train.Checkpoint would skip the state.
        setattr(layer, name, weight)
        return weight

    @contextlib.contextmanager
    def substitute(self, layer, substitutions):
        # A StatelessScope makes every read of a variable return the mapped
        # tensor, whatever attribute the layer keeps it in. It replaces any
        # enclosing scope, so that scope's mapping is carried over.
        outer = get_stateless_scope()
        mapping = [(kernel.variable, tensor) for kernel, tensor in substitutions]
        scope = keras.StatelessScope(mapping, initialize_variables=False)
        if outer is not None:
            scope.state_mapping = {**outer.state_mapping, **scope.state_mapping}
            scope.collect_losses = outer.collect_losses
        with scope:
            yield
        if outer is not None:
            outer.losses.extend(scope.losses)

    def build_like(self, layer, original):
        # A wrapper is built from its first input's shape only; a layer with
        # several inputs (MultiHeadAttention) needs all of them.
        build_config = original.get_build_config()
        if build_config is not None and not layer.built:
            layer.build_from_config(build_config)

    def run_to_build(self, layer, input_shape):
        # Keras 3 locks a layer's state once built, so a wrapper must create
        # its own weights in `build`: the wrapped layer's kernels must exist
        # by then, including those of sublayers it builds at its first call.
        layer.compute_output_spec(keras.KerasTensor(input_shape))

    def graph_view(self, model):
        # Keras has no public graph API: nodes, their depths, a Sequential's
        # functional model and a tensor's history are private attributes.
        graph = model._functional if isinstance(model, keras.Sequential) else model
        if not isinstance(graph, Functional):
            return None
        calls = [
            (
                node.operation,
                node.arguments.args,
                node.arguments.kwargs,
                node.outputs,
                node.operation._inbound_nodes.index(node),
            )
            for depth in sorted(graph._nodes_by_depth, reverse=True)
            for node in graph._nodes_by_depth[depth]
            if not node.is_input
        ]
        return GraphView(
            inputs=graph._inputs_struct,
            outputs=graph._outputs_struct,
            calls=calls,
            sequential=isinstance(model, keras.Sequential),
        )

    def is_model(self, obj) -> bool:
        return isinstance(obj, keras.Model)

    def is_symbolic(self, obj) -> bool:
        return isinstance(obj, keras.KerasTensor)

    def input_layer(self, tensor):
        return tensor._keras_history.operation

    def tensor_info(self, tensor) -> TensorInfo:
        return TensorInfo(tuple(tensor.shape), str(tensor.dtype))

    def make_input(self, input_layer):
        return keras.Input(**input_layer.get_config())

    def make_model(self, name, inputs, outputs, sequential_layers=None):
        if sequential_layers is not None:
            return keras.Sequential([inputs, *sequential_layers], name=name)
        return keras.Model(inputs, outputs, name=name)


ADAPTER = Keras3Adapter()


@keras.saving.register_keras_serializable(package="kerasnorm")
class PixelNorm(PixelNormBase, keras.layers.Layer):
    __doc__ = PixelNormBase.__doc__


@keras.saving.register_keras_serializable(package="kerasnorm")
class SpectralNorm(SpectralNormBase, keras.constraints.Constraint):
    __doc__ = SpectralNormBase.__doc__
    _adapter = ADAPTER


class _KernelWrapper(keras.layers.Wrapper):
    """Keras 3's side of kerasnorm's wrappers (`KernelWrapperBase`)."""

    _adapter = ADAPTER

    # Keras 3 passes `training` only to a call that names it, and builds a
    # layer from the shape of its first named argument; the wrapped layer
    # may also be called with keywords only (`query=`, ...). A mask rides on
    # the tensors themselves, so the wrapped layer finds it: naming `mask`
    # here would record it in the model's graph as an argument of the call.
    def call(self, inputs=None, *args, training=None, **kwargs):
        args = args if inputs is None else (inputs, *args)
        return self._wrapped_call(args, kwargs, training)


@keras.saving.register_keras_serializable(package="kerasnorm")
class SpectralNormalization(SpectralNormalizationBase, _KernelWrapper):
    __doc__ = SpectralNormalizationBase.__doc__


@keras.saving.register_keras_serializable(package="kerasnorm")
class EqualizedLR(EqualizedLRBase, _KernelWrapper):
    __doc__ = EqualizedLRBase.__doc__


@keras.saving.register_keras_serializable(package="kerasnorm")
class ConstraintChain(ConstraintChainBase, keras.constraints.Constraint):
    __doc__ = ConstraintChainBase.__doc__
    _adapter = ADAPTER


ADAPTER.ConstraintChain = ConstraintChain
ADAPTER.PixelNorm = PixelNorm
ADAPTER.SpectralNorm = SpectralNorm
ADAPTER.SpectralNormalization = SpectralNormalization
ADAPTER.EqualizedLR = EqualizedLR
