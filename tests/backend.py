"""The Keras 3 backend a test process runs on, for the backend-neutral tests.

Tests of `kerasnorm.ops` are written against this module and `keras.ops`,
so that `tests/test_backends.py` can run them again under JAX and PyTorch.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

NAME = keras.backend.backend()


def tensor(value, dtype=None):
    """A tensor of this backend holding `value`."""
    return ops.convert_to_tensor(np.asarray(value), dtype=dtype)


def numpy(value) -> np.ndarray:
    return ops.convert_to_numpy(value)


def float64_available() -> bool:
    """Whether float64 products stay float64: Keras 3 computes them in float32
    on JAX and PyTorch."""
    return keras.backend.result_type("float64", "float64") == "float64"


def gradient(function, x) -> np.ndarray:
    """The gradient at `x` (NumPy) of `function`, a scalar function of a tensor."""
    if NAME == "tensorflow":
        import tensorflow as tf

        x = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = function(x)
        return tape.gradient(value, x).numpy()
    if NAME == "jax":
        import jax

        return np.asarray(jax.grad(function)(tensor(x)))
    if NAME == "torch":
        import torch

        x = torch.tensor(x, requires_grad=True)
        function(x).backward()
        return x.grad.numpy()
    raise NotImplementedError(f"no gradient helper for backend {NAME!r}")


def compiled(function):
    """`function` compiled as the backend compiles train steps."""
    if NAME == "tensorflow":
        import tensorflow as tf

        return tf.function(function)
    if NAME == "jax":
        import jax

        return jax.jit(function)
    return function


def dtype_name(value) -> str:
    """The dtype of a tensor of this backend (or a TensorFlow one), as a string."""
    return keras.backend.standardize_dtype(value.dtype)
