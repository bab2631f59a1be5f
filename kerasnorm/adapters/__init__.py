"""The two Kerases behind one interface; `adapter_for` is the only flavour check.

`kerasnorm.adapters.keras3` holds the classes for Keras 3, and
`kerasnorm.adapters.tf_keras` those for tf-keras (Keras 2). Both are
imported with kerasnorm, so models of either Keras that hold kerasnorm
layers load with nothing but `import kerasnorm`.
"""

from __future__ import annotations

import tensorflow as tf

from kerasnorm.adapters import keras3, tf_keras
from kerasnorm.adapters.base import Adapter
from kerasnorm.errors import KerasNormTypeError, UnsupportedKerasError

ADAPTERS: tuple[Adapter, ...] = (keras3.ADAPTER, tf_keras.ADAPTER)


def adapter_for(obj) -> Adapter:
    """The adapter of the Keras that `obj` (a model, layer or variable) is from.

    Raises:
        KerasNormTypeError: If `obj` belongs to neither Keras.
        UnsupportedKerasError: If it is a Keras 3 object on a backend other
            than TensorFlow.
    """
    for adapter in ADAPTERS:
        if adapter.owns(obj):
            adapter.check_usable()
            return adapter
    raise KerasNormTypeError(
        f"Expected a Keras 3 or tf-keras object, received {type(obj).__name__}: "
        f"{obj!r:.80}"
    )


def active_adapter() -> Adapter:
    """The adapter of the Keras that `tf.keras` is in this process."""
    for adapter in ADAPTERS:
        if issubclass(tf.keras.layers.Layer, adapter.layers.Layer):
            return adapter
    raise UnsupportedKerasError(
        f"`tf.keras` is neither Keras 3 nor tf-keras: {tf.keras.layers.Layer!r}"
    )
