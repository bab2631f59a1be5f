"""Numpy references the tests compare kerasnorm against."""

import numpy as np


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


def is_kernel_weight(weight) -> bool:
    """Whether a trainable weight multiplies inputs, by a rule of its own.

    Rank 2 or more, and not named as the weights that shift or scale
    activations are (biases, normalization gammas and betas, PReLU alphas).
    """
    name = weight.name.rsplit("/", 1)[-1].split(":")[0]
    return len(weight.shape) >= 2 and name not in {"bias", "gamma", "beta", "alpha"}


def kernel_weights(layer) -> list:
    """The trainable weights of `layer` (its sublayers' included) that are kernels."""
    return [w for w in layer.trainable_weights if is_kernel_weight(w)]


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
