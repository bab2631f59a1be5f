"""Numpy references the tests compare kerasnorm against, and parametrization helpers."""

import itertools

import numpy as np
import pytest

from kerasnorm.adapters import ADAPTERS


def adapter_named(name: str):
    """The adapter whose `name` is `name` ("keras3" or "tf_keras")."""
    return next(adapter for adapter in ADAPTERS if adapter.name == name)


def some_by_default(default: set, *axes) -> list:
    """Every combination of `axes` as pytest params; those not in `default`
    carry the `slow` mark, so the default run covers each value once at least
    and `-m slow` all of them."""
    return [
        pytest.param(
            *combination,
            marks=() if combination in default else pytest.mark.slow,
            id="-".join(map(str, combination)),
        )
        for combination in itertools.product(*axes)
    ]


def top_singular_value(kernel: np.ndarray, layout: str = "dense") -> float:
    """sigma of a kernel's matrix view (output channels as columns), by SVD."""
    kernel = np.asarray(kernel, dtype=np.float64)
    if layout == "transpose":
        kernel = np.swapaxes(kernel, -1, -2)
        matrix = kernel.reshape(-1, kernel.shape[-1])
    elif layout == "depthwise":
        matrix = kernel.reshape(-1, kernel.shape[-2] * kernel.shape[-1])
    else:
        matrix = kernel.reshape(-1, kernel.shape[-1])
    return float(np.linalg.svd(matrix, compute_uv=False)[0])


# Parameters that never multiply their input but can have rank >= 2:
# MultiHeadAttention's and EinsumDense's per-head biases (heads, key_dim),
# PReLU's alpha (1, 1, C), LayerNormalization's gamma/beta when it normalizes
# over (H, W, C) as in WGAN-GP. Keras names them so in both Kerases.
NON_KERNEL_NAMES = frozenset({"bias", "alpha", "gamma", "beta"})


def is_kernel(variable) -> bool:
    """Whether a trainable weight is a kernel, by a rule of rank and name.

    A kernel has rank 2 or more, and its own name is not one of
    `NON_KERNEL_NAMES`. Rank alone excludes every per-channel vector (biases,
    normalization gammas and betas, a scalar gamma); the names exclude the
    non-multiplying parameters that can be rank 2 or more. The name is not
    used to *include*: hand-written layers name their weights freely ("w",
    or nothing at all, which gives "variable" in Keras 3 and "Variable" in
    tf-keras). The tests' own rule, written apart from kerasnorm's.
    """
    own_name = variable.name.split("/")[-1].split(":")[0]
    return len(variable.shape) >= 2 and own_name not in NON_KERNEL_NAMES


def kernel_weights(layer) -> list:
    """The trainable weights of `layer` (its sublayers' included) that are kernels."""
    return [w for w in layer.trainable_weights if is_kernel(w)]


def reference_sigma(layer, variable, value=None) -> float:
    """sigma of the linear map a kernel computes inside `layer`, by SVD.

    Written apart from kerasnorm, from the layers' definitions: the matrix
    maps the axes a kernel is summed over with the input (rows) to the axes
    of the output it produces (columns). `value` stands for the variable's
    value when given (a wrapper's effective kernel).
    """
    owner = _owner(layer, variable)
    kernel = np.asarray(variable if value is None else value, np.float64)
    classes = {cls.__name__ for cls in type(owner).__mro__}
    if "EinsumDense" in classes:
        # MultiHeadAttention's projections are EinsumDense layers too.
        matrix = _einsum_matrix(owner.equation, kernel)
    elif classes & {"Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"}:
        swapped = np.swapaxes(kernel, -1, -2)
        matrix = swapped.reshape(-1, swapped.shape[-1])
    elif classes & {"DepthwiseConv1D", "DepthwiseConv2D"} or (
        classes & {"SeparableConv1D", "SeparableConv2D"}
        and variable is owner.depthwise_kernel
    ):
        matrix = kernel.reshape(-1, kernel.shape[-2] * kernel.shape[-1])
    else:
        matrix = kernel.reshape(-1, kernel.shape[-1])
    return float(np.linalg.svd(matrix, compute_uv=False)[0])


def _owner(layer, variable):
    """The layer, `layer` or one it holds at any depth, keeping `variable`."""
    frontier = [layer]
    while frontier:
        current = frontier.pop(0)
        # TensorFlow's tracked dicts are proxies with no __dict__ of their own.
        values = list(
            (current if isinstance(current, dict) else vars(current)).values()
        )
        if any(value is variable for value in values):
            return current
        for value in values:
            items = value if isinstance(value, (list, tuple)) else [value]
            frontier.extend(
                item for item in items if hasattr(item, "trainable_weights")
            )
    raise AssertionError(f"no layer in {layer.name!r} keeps {variable.name!r}")


def _einsum_matrix(equation: str, kernel: np.ndarray) -> np.ndarray:
    inputs, kernel_axes = equation.split("->")[0].split(",")
    rows = [i for i, axis in enumerate(kernel_axes) if axis in inputs]
    cols = [i for i, axis in enumerate(kernel_axes) if axis not in inputs]
    moved = np.transpose(kernel, rows + cols)
    size = int(np.prod([kernel.shape[i] for i in rows]))
    return moved.reshape(size, -1)


def pixel_norm_reference(x: np.ndarray, axis: int = -1, epsilon: float = 1e-8):
    x = np.asarray(x, dtype=np.float64)
    return x / np.sqrt(np.mean(x**2, axis=axis, keepdims=True) + epsilon)


def snapshot(model) -> tuple:
    """Everything about a model the rewriter must leave untouched, comparable."""
    import json

    layers = []
    stack = [model]
    while stack:
        current = stack.pop()
        for layer in current.layers:
            constraints = {
                key: type(getattr(layer, key)).__name__
                for key in (
                    "kernel_constraint",
                    "depthwise_constraint",
                    "pointwise_constraint",
                )
                if getattr(layer, key, None) is not None
            }
            weights = tuple(np.asarray(w).tobytes() for w in layer.weights)
            layers.append(
                (
                    layer.name,
                    type(layer).__name__,
                    layer.trainable,
                    repr(constraints),
                    weights,
                )
            )
            if hasattr(layer, "layers"):
                stack.append(layer)
    return (
        model.name,
        json.dumps(model.get_config(), sort_keys=True, default=str),
        tuple(layers),
    )
