"""`lipschitz_bound(model)`: each layer's Lipschitz constant and their product.

A model made of layers called one after another is Lipschitz with at most
the product of its layers' constants (in the l2 norm). The constant of a
linear layer is its operator norm: for a convolution, the largest singular
value of the convolution on the input shape it is called on, which is not
the reshaped kernel's (`kerasnorm.ops.operators`); for Dense, its matrix's.
The parameter-free layers GANs use have known constants: 1 for ReLU,
LeakyReLU with a slope at most 1, tanh, flattening and padding; 1/4 for the
sigmoid; sqrt(2 * 2) for a 2x2 nearest upsampling.

The product bounds the model only where the model is such a chain and every
factor is known. Where it is not, the report says so, node by node: a sum
of branches (a residual `Add`) is bounded by the sum of their constants,
not by a product along one path; attention, layer normalization and
PixelNorm have no global constant; recurrent layers and layers kerasnorm
does not know get none. The report is of the model at inference: dropout
is the identity, batch normalization the affine map of its moving
statistics.
"""

from __future__ import annotations

import dataclasses
import math

import networkx as nx
import numpy as np

from kerasnorm.actions import layer_input_shape
from kerasnorm.errors import KerasNormValueError
from kerasnorm.graph import to_graph
from kerasnorm.layers.kernels import conv_geometry
from kerasnorm.layers.wrapper import KernelWrapperBase
from kerasnorm.ops import sigma as sigma_ops

# Largest slope of each activation function, by Keras's name for it.
_ACTIVATION_SLOPES = {
    "relu": 1.0,
    "relu6": 1.0,
    "tanh": 1.0,
    "sigmoid": 0.25,
    "hard_sigmoid": 1 / 6,
    "softplus": 1.0,
    "softsign": 1.0,
    "softmax": 1.0,
    "silu": 1.0998,
    "swish": 1.0998,
    "gelu": 1.1290,
}

# Layers that reshape, copy or pass their input on: constant 1.
_ONE_LIPSCHITZ = frozenset(
    {
        "Flatten",
        "Reshape",
        "Permute",
        "Identity",
        "Dropout",
        "SpatialDropout1D",
        "SpatialDropout2D",
        "SpatialDropout3D",
        "GaussianDropout",
        "GaussianNoise",
        "AlphaDropout",
        "ZeroPadding1D",
        "ZeroPadding2D",
        "ZeroPadding3D",
        "Cropping1D",
        "Cropping2D",
        "Cropping3D",
        "GlobalMaxPooling1D",
        "GlobalMaxPooling2D",
        "GlobalMaxPooling3D",
        "GlobalAveragePooling1D",
        "GlobalAveragePooling2D",
        "GlobalAveragePooling3D",
    }
)

# Layers whose kernels' norms make their constant.
_LINEAR_KERNEL_LAYERS = frozenset(
    {
        "Dense",
        "EinsumDense",
        *(f"Conv{n}D" for n in (1, 2, 3)),
        *(f"Conv{n}DTranspose" for n in (1, 2, 3)),
        "DepthwiseConv1D",
        "DepthwiseConv2D",
        "SeparableConv1D",
        "SeparableConv2D",
    }
)

_NO_GLOBAL_CONSTANT = {
    "PixelNorm": "it divides by its input's norm: no global Lipschitz constant",
    "LayerNormalization": "it divides by its input's spread: no global constant",
    "GroupNormalization": "it divides by its input's spread: no global constant",
    "UnitNormalization": "it divides by its input's norm: no global constant",
    "MultiHeadAttention": "attention has no global Lipschitz constant",
    "GroupedQueryAttention": "attention has no global Lipschitz constant",
    "Embedding": "its input is indices, not a vector",
}


@dataclasses.dataclass(frozen=True)
class LayerBound:
    """One call's Lipschitz constant, as far as kerasnorm knows it.

    Attributes:
        node: The call's node in `kerasnorm.to_graph(model)`.
        class_name: The layer's class.
        constant: An upper bound of the call's Lipschitz constant (exact for
            linear layers and the activations listed above), or None when
            kerasnorm has none.
        norms: Each kernel's operator norm by path (empty for layers
            without kernels).
        reason: How the constant was found, or why there is none.
    """

    node: str
    class_name: str
    constant: float | None
    norms: dict[str, float]
    reason: str


@dataclasses.dataclass(frozen=True)
class LipschitzReport:
    """Every call's constant, their product, and where it is not a bound.

    Attributes:
        layers: A `LayerBound` per call, in topological order; inputs and
            calls with constant 1 included.
        product: The product of the known constants.
        caveats: Why the product does not bound the model, one entry per
            place (a call with no constant, a node combining branches);
            empty when it does.
    """

    layers: tuple[LayerBound, ...]
    product: float
    caveats: tuple[str, ...]

    @property
    def is_bound(self) -> bool:
        """Whether `product` bounds the model's Lipschitz constant."""
        return not self.caveats

    def __str__(self) -> str:
        rows = [("node", "layer", "constant", "how")]
        for layer in self.layers:
            constant = "-" if layer.constant is None else f"{layer.constant:.4g}"
            rows.append((layer.node, layer.class_name, constant, layer.reason))
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        lines = [
            "  ".join(
                [*(c.ljust(w) for c, w in zip(row[:3], widths, strict=True)), row[3]]
            )
            for row in rows
        ]
        verdict = "a bound" if self.is_bound else "not a bound"
        lines.append(f"product: {self.product:.4g} ({verdict})")
        lines.extend(f"  {caveat}" for caveat in self.caveats)
        return "\n".join(lines)


def lipschitz_bound(model) -> LipschitzReport:
    """Each layer's Lipschitz constant in `model`, their product, and its caveats.

    Convolutions are measured by their operator norm on the input shape the
    model calls them with (block Lanczos run to convergence, float32,
    within about 1e-6 of the unrolled operator's SVD), whatever normalized
    them; a wrapped layer by the kernels it computes with at inference.

    Args:
        model: A functional or Sequential model of either Keras.

    Returns:
        A `LipschitzReport`; `str()` of it is a table.

    Example:

    >>> from kerasnorm.demo import build_discriminator
    >>> d = build_discriminator(keras)
    >>> report = kerasnorm.lipschitz_bound(d)
    >>> report.is_bound, [b.node for b in report.layers if b.norms]
    (True, ['conv1', 'conv2', 'score'])
    >>> normalized = kerasnorm.apply_normalization(
    ...     d, "sngan", mode="reparam", operator_norm=True
    ... )
    >>> round(kerasnorm.lipschitz_bound(normalized).product, 3)
    1.0
    """
    graph = to_graph(model)
    layers, caveats = [], []
    for node in nx.topological_sort(graph):
        data = graph.nodes[node]
        if data["is_input"]:
            continue
        bound = _layer_bound(graph, node)
        layers.append(bound)
        if bound.constant is None:
            caveats.append(f"{node} ({bound.class_name}): {bound.reason}")
    product = math.prod(b.constant for b in layers if b.constant is not None)
    return LipschitzReport(tuple(layers), float(product), tuple(caveats))


def _layer_bound(graph: nx.DiGraph, node: str) -> LayerBound:
    data = graph.nodes[node]
    name = data["class_name"]
    op = data["op"]
    layer = op.layer if data["wrapped"] else op

    def bound(constant, reason, norms=None):
        return LayerBound(node, name, constant, dict(norms or {}), reason)

    joined = graph.in_degree(node)
    if joined > 1:
        return bound(
            None,
            f"it combines {joined} inputs: a sum is bounded by the sum of its "
            "branches' constants, not by a product along one of them",
        )
    activation = data["activation"]
    slope = 1.0 if activation is None else _slope(activation, layer)
    if data["kernels"]:
        if name not in _LINEAR_KERNEL_LAYERS:
            reason = _NO_GLOBAL_CONSTANT.get(
                name, f"kerasnorm knows no Lipschitz constant for a {name}"
            )
            return bound(None, reason)
        try:
            norms, how = _kernel_norms(graph, node, op)
        except KerasNormValueError as error:
            return bound(None, str(error))
        if slope is None:
            return bound(None, f"no known slope for activation {activation!r}", norms)
        # A separable convolution is its depthwise step, then its pointwise.
        return bound(math.prod(norms.values()) * slope, how, norms)
    if activation is not None:
        if slope is None:
            return bound(None, f"no known slope for activation {activation!r}")
        return bound(slope, f"{activation}: largest slope")
    if name in _ONE_LIPSCHITZ:
        return bound(1.0, "passes its input on, reshaped or restricted")
    if name in ("MaxPooling1D", "MaxPooling2D", "MaxPooling3D"):
        overlap = _window_overlap(layer)
        return bound(math.sqrt(overlap), f"windows hold an input {overlap} time(s)")
    if name in ("AveragePooling1D", "AveragePooling2D", "AveragePooling3D"):
        overlap = _window_overlap(layer)
        window = math.prod(_pool_size(layer))
        return bound(
            math.sqrt(overlap / window), f"means of {window}, {overlap} per input"
        )
    if name in ("UpSampling1D", "UpSampling2D", "UpSampling3D"):
        return _upsampling_bound(layer, bound)
    if name == "BatchNormalization":
        scale = _batch_norm_scale(layer, graph.graph["adapter"])
        return bound(scale, "largest |gamma| / sqrt(variance)")
    reason = _NO_GLOBAL_CONSTANT.get(
        name, f"kerasnorm knows no Lipschitz constant for a {name}"
    )
    return bound(None, reason)


def _kernel_norms(graph, node, op) -> tuple[dict[str, float], str]:
    """Each kernel's operator norm, and how it was taken."""
    kernels = graph.nodes[node]["kernels"]
    if isinstance(op, KernelWrapperBase):
        values = op.effective_kernels()
    else:
        values = {k.path: k.variable for k in kernels}
    norms, hows = {}, set()
    for kernel in kernels:
        geometry = conv_geometry(kernel, layer_input_shape(graph, node))
        norms[kernel.path] = sigma_ops.norm_of(
            values[kernel.path], kernel.layout, geometry
        )
        if geometry is None:
            hows.add("matrix norm")
        else:
            hows.add(f"operator norm on input {geometry.input_shape}")
    return norms, "; ".join(sorted(hows))


def _slope(activation: str, layer) -> float | None:
    """The activation's largest slope, or None if kerasnorm does not know it."""
    if activation in ("leaky_relu", "elu"):
        config = layer.get_config()
        for key in ("negative_slope", "alpha"):
            if key in config:
                return max(1.0, abs(float(config[key])))
        return 1.0
    return _ACTIVATION_SLOPES.get(activation)


def _pool_size(layer) -> tuple[int, ...]:
    size = layer.get_config()["pool_size"]
    return (size,) if isinstance(size, int) else tuple(size)


def _window_overlap(layer) -> int:
    """The most pooling windows one input element falls in."""
    config = layer.get_config()
    strides = config.get("strides") or config["pool_size"]
    strides = (strides,) if isinstance(strides, int) else tuple(strides)
    return math.prod(
        -(-size // stride)
        for size, stride in zip(_pool_size(layer), strides, strict=True)
    )


def _upsampling_bound(layer, bound) -> LayerBound:
    config = layer.get_config()
    if config.get("interpolation", "nearest") != "nearest":
        return bound(None, "kerasnorm bounds nearest upsampling only")
    size = config["size"]
    size = (size,) if isinstance(size, int) else tuple(size)
    copies = math.prod(size)
    return bound(math.sqrt(copies), f"copies each input {copies} times")


def _batch_norm_scale(layer, adapter) -> float:
    """The largest channel scale of a BatchNormalization at inference,
    `|gamma| / sqrt(moving_variance + epsilon)`."""
    variance = adapter.to_numpy(layer.moving_variance).astype("float64")
    gamma = (
        adapter.to_numpy(layer.gamma).astype("float64")
        if getattr(layer, "gamma", None) is not None
        else np.ones_like(variance)
    )
    return float(np.max(np.abs(gamma) / np.sqrt(variance + layer.epsilon)))
