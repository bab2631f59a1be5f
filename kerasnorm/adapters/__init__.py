"""The two Kerases behind one interface; `adapter_for` is the only flavour check.

`kerasnorm.adapters.keras3` holds the classes for Keras 3, and
`kerasnorm.adapters.tf_keras` those for tf-keras (Keras 2). On Keras 3's
TensorFlow backend both are imported with kerasnorm, so models of either
Keras that hold kerasnorm layers load with nothing but `import kerasnorm`.
On the JAX and PyTorch backends only Keras 3's are: tf-keras computes with
TensorFlow, which kerasnorm then leaves unimported.
"""

from __future__ import annotations

import keras

from kerasnorm.adapters import keras3
from kerasnorm.adapters.base import Adapter
from kerasnorm.errors import KerasNormTypeError, UnsupportedKerasError


def keras3_backend() -> str:
    """The backend Keras 3 runs on in this process (fixed when it was imported)."""
    return keras.backend.backend()


def _adapters() -> tuple[Adapter, ...]:
    if keras.backend.backend() != "tensorflow":
        return (keras3.ADAPTER,)
    from kerasnorm.adapters import tf_keras

    return (keras3.ADAPTER, tf_keras.ADAPTER)


ADAPTERS: tuple[Adapter, ...] = _adapters()

# Keras 3's other backends (numpy, openvino) run models but do not train them.
TRAINING_BACKENDS = ("tensorflow", "jax", "torch")


def adapter_for(obj) -> Adapter:
    """The adapter of the Keras that `obj` (a model, layer or variable) is from.

    Raises:
        KerasNormTypeError: If `obj` belongs to neither Keras.
        UnsupportedKerasError: If it is a tf-keras object while Keras 3 runs
            on a backend other than TensorFlow, or a Keras 3 object on a
            backend that does not train (numpy, openvino).
    """
    backend = keras.backend.backend()
    if type(obj).__module__.startswith("tf_keras.") and backend != "tensorflow":
        # kerasnorm's ops are keras.ops: on tf-keras's TensorFlow tensors
        # they need Keras 3 on its TensorFlow backend too.
        raise UnsupportedKerasError(
            "kerasnorm computes for tf-keras models with keras.ops on "
            f"TensorFlow, but Keras 3 runs on the {backend!r} backend in this "
            "process. Leave KERAS_BACKEND unset (or set it to tensorflow) "
            "when you use tf-keras."
        )
    if backend not in TRAINING_BACKENDS and keras3.ADAPTER.owns(obj):
        raise UnsupportedKerasError(
            "kerasnorm runs on Keras 3's tensorflow, jax and torch backends, but "
            f"Keras 3 runs on the {backend!r} backend here, which does not "
            "train models. Set KERAS_BACKEND to one of those before importing "
            "keras."
        )
    for adapter in ADAPTERS:
        if adapter.owns(obj):
            return adapter
    raise KerasNormTypeError(
        f"Expected a Keras 3 or tf-keras object, received {type(obj).__name__}: "
        f"{obj!r:.80}"
    )


def active_adapter() -> Adapter:
    """The adapter of the Keras that `tf.keras` is in this process.

    On Keras 3's JAX and PyTorch backends, that of Keras 3.
    """
    if keras.backend.backend() != "tensorflow":
        return keras3.ADAPTER
    import tensorflow as tf

    for adapter in ADAPTERS:
        if issubclass(tf.keras.layers.Layer, adapter.layers.Layer):
            return adapter
    raise UnsupportedKerasError(
        f"`tf.keras` is neither Keras 3 nor tf-keras: {tf.keras.layers.Layer!r}"
    )
