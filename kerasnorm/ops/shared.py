"""One traced graph for a function that every normalized kernel calls.

A train step calls the tracker once per kernel, and on TensorFlow each
call's ops cost host memory twice: as traced graph objects, and again as
the step's instantiated graph. Most of those ops are the rare path (the
loop that runs in the few steps needing more than one iteration): traced
per kernel, the tracker held about 22 MB per kernel, 1 GB for a
discriminator of 50 kernels.

`call` runs a function through one `tf.function` per kind of call (its
static arguments, dtypes, and the dimensions that fix the program's
structure), with the kernel's own sizes left unknown: kernels of any size
share one trace. Inlined, the shared graph still runs as the caller's own
ops (instantiated at each call site, as fast as before); not inlined, it
is instantiated once for all call sites and costs a function call per run,
the right trade for code that rarely runs. On JAX and PyTorch the function
is called as it is: JAX's jit traces each call site anyway, and PyTorch
runs eagerly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

_FUNCTIONS: dict[tuple, Any] = {}


def call(
    function: Callable[..., Any],
    tensors: tuple,
    shapes: tuple,
    static: tuple = (),
    result_shapes: tuple | None = None,
    inline: bool = True,
) -> Any:
    """`function(*tensors, *static)`, traced once per kind of call on TensorFlow.

    Args:
        function: A function of tensors, then of hashable static arguments.
        tensors: Its tensor arguments, any nesting of tuples.
        shapes: For each tensor, in the order `tf.nest.flatten(tensors)`
            lists them, its shape as the shared graph sees it: None for a
            dimension that may differ between calls, the number where the
            function's structure depends on it.
        static: Its other arguments: each distinct tuple gets its own graph.
        result_shapes: For each tensor of the result, in the order
            `tf.nest.flatten` lists them, the shape it has at this call,
            set on it (the shared graph's are the relaxed ones); None to
            leave them relaxed.
        inline: Whether TensorFlow may inline the shared graph at each call
            site; False to instantiate it once for all of them, for a
            function that rarely runs.

    Returns:
        What `function` returns.
    """
    if keras.backend.backend() != "tensorflow":
        return function(*tensors, *static)
    import tensorflow as tf

    leaves = zip(tf.nest.flatten(tensors), shapes, strict=True)
    signature = tf.nest.pack_sequence_as(
        tensors, [tf.TensorSpec(shape, leaf.dtype) for leaf, shape in leaves]
    )
    key = (function, static, inline, tuple(tf.nest.flatten(signature)))
    traced = _FUNCTIONS.get(key)
    if traced is None:
        traced = tf.function(
            lambda *args: function(*args, *static),
            input_signature=signature,
            autograph=False,
            experimental_attributes=None if inline else {"_noinline": True},
        )
        _FUNCTIONS[key] = traced
    result = traced(*tensors)
    if result_shapes is not None:
        for tensor, shape in zip(tf.nest.flatten(result), result_shapes, strict=True):
            tensor.set_shape(shape)
    return result
