"""The kernels of a built layer: which weights, where they live, how they are read.

A kernel is a trainable weight a layer multiplies its inputs by: the kernel
of a Dense or convolution, a depthwise or pointwise kernel, an Embedding
matrix, the kernel and recurrent kernel of an RNN cell, each projection of
a MultiHeadAttention. `find_kernels(layer, adapter)` lists them all, for
Keras's own layers and for layers it does not know:

* Keras's kernel layers are described by a table (the layout of each
  kernel, and the constructor argument whose constraint reaches it).
  Composite layers are searched through: `Bidirectional` and
  `TimeDistributed` through the layers they wrap, RNN layers through their
  cells, `MultiHeadAttention` through its four `EinsumDense` projections.
* In any other layer (your own), the kernel layers it holds as attributes
  are searched the same way, and its own trainable weights of rank 2 or
  more are kernels too, read in Keras's `(..., in, out)` convention (the
  record says the layout was assumed).
* Weights named `bias`, `beta`, `gamma` or `alpha`, and weights of rank 0
  or 1, are never kernels: they add or scale, they do not mix inputs.

Nothing is left out in silence: a kernel that spectral normalization cannot
apply to (a LoRA-enabled or quantized layer, a kernel whose place in the
layer cannot be found) is listed with the `problem` that stops it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from kerasnorm.errors import KerasNormValueError
from kerasnorm.ops import layouts, operators

# Weights that shift or scale activations (biases, normalization offsets
# and scales, PReLU's slopes), however many axes they have: they never mix
# inputs.
_NOT_KERNELS = frozenset({"bias", "beta", "gamma", "alpha"})

# Keras's own classes are recognised by name, in the layer's class
# hierarchy, only when the class comes from Keras itself.
_KERAS_MODULES = ("keras.", "tf_keras.")


@dataclasses.dataclass(frozen=True, eq=False)
class Kernel:
    """One kernel of a built layer.

    Attributes:
        path: Where it lives in the layer: sublayer names, then the weight
            (`"kernel"`, `"depthwise_kernel"`, `"lstm_cell/recurrent_kernel"`,
            `"forward_lstm/lstm_cell/kernel"`, `"query/kernel"`).
        variable: The weight itself.
        layout: How it maps inputs to outputs, as in `kerasnorm.ops.layouts`.
        holder: The layer that keeps the weight: the layer itself, or one it
            holds (MultiHeadAttention's `query` projection, an LSTM's cell).
        attribute: The attribute of `holder` the weight is stored in, or
            None if kerasnorm cannot find one (then `problem` says so).
        constraint_key: Where, in the layer's config, the constraint
            argument that reaches this kernel is: a path of keys and list
            indices (`("kernel_constraint",)`,
            `("layer", "config", "recurrent_constraint")`); None when no
            argument reaches it (the layer makes the kernel itself).
        assumed_layout: Whether `layout` is kerasnorm's assumption, for a
            layer it does not know, rather than a fact.
        problem: Why spectral normalization cannot apply to it at all, or
            None.
    """

    path: str
    variable: Any
    layout: str
    holder: Any
    attribute: str | None
    constraint_key: tuple | None
    assumed_layout: bool = False
    problem: str | None = None

    @property
    def owner(self) -> str:
        """The name of the layer that keeps the weight (`"query"`, ...)."""
        return self.holder.name

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.variable.shape)

    def describe(self) -> str:
        """`path` and shape, as the plan prints them: `"kernel (3, 3, 8, 16)"`."""
        return f"{self.path} {self.shape}"


@dataclasses.dataclass(frozen=True)
class _Place:
    """Where a (sub)layer sits inside the layer being searched."""

    prefix: str  # path prefix of its kernels
    config: tuple | None  # config path of its constructor arguments, None if none


def find_kernels(layer, adapter) -> tuple[Kernel, ...]:
    """Every kernel of a built `layer`, in a stable order.

    Args:
        layer: A built Keras layer (a kerasnorm `SpectralNormalization`
            wrapper stands for the layer it wraps).
        adapter: The adapter of the layer's Keras.

    Returns:
        A tuple of `Kernel`, empty for a layer without kernels.
    """
    if isinstance(layer, adapter.SpectralNormalization):
        layer = layer.layer
    if not isinstance(layer, adapter.layers.Layer):
        return ()  # a Keras 3 op, such as `ops.sum`
    return tuple(_search(layer, adapter, _Place("", ())))


def _search(layer, adapter, place: _Place) -> Iterator[Kernel]:
    names = _keras_class_names(layer)
    for class_names, handler in _HANDLERS:
        if names & class_names:
            found = list(handler(layer, adapter, place))
            yield from found
            yield from _leftovers(layer, adapter, place, found)
            return
    yield from _unknown(layer, adapter, place)


def _keras_class_names(layer) -> set[str]:
    return {
        cls.__name__
        for cls in type(layer).__mro__
        if (cls.__module__ or "").startswith(_KERAS_MODULES)
    }


def _weight(layer, attributes, path, layout, key, adapter, place):
    """The kernel held in the first of `attributes` that `layer` has."""
    # Keras 3 keeps some kernels in a private attribute behind a property
    # (Dense's `kernel` adds LoRA's product when LoRA is on).
    candidates = [*attributes, *(f"_{a}" for a in attributes)]
    variable = next(
        (
            value
            for value in (getattr(layer, a, None) for a in candidates)
            if adapter.is_variable(value)
        ),
        None,
    )
    if variable is None:
        return None
    config_key = None if place.config is None else (*place.config, key)
    return Kernel(
        path=place.prefix + path,
        variable=variable,
        layout=layout,
        holder=layer,
        attribute=_stored_in(layer, variable),
        constraint_key=config_key,
        problem=_kernel_problem(layer),
    )


def _stored_in(layer, variable) -> str | None:
    """The attribute of `layer` whose value is `variable` (not a property)."""
    return next((k for k, v in vars(layer).items() if v is variable), None)


def _kernel_problem(layer) -> str | None:
    if getattr(layer, "lora_enabled", False):
        return (
            "LoRA is enabled: the layer computes with kernel + lora_kernel_a @ "
            "lora_kernel_b, which spectral normalization of the kernel does not bound"
        )
    if getattr(layer, "quantization_mode", None):
        return f"the layer is quantized ({layer.quantization_mode})"
    return None


def _simple(*specs):
    """A handler for layers that hold kernels themselves, one spec per kernel.

    Each spec is `(attributes, path, layout, constraint argument)`.
    """

    def handler(layer, adapter, place):
        for attributes, path, layout, key in specs:
            kernel = _weight(layer, attributes, path, layout, key, adapter, place)
            if kernel is not None:
                yield kernel

    return handler


def _einsum_dense(layer, adapter, place):
    kernel = _weight(
        layer,
        ("kernel",),
        "kernel",
        layer.equation,
        "kernel_constraint",
        adapter,
        place,
    )
    if kernel is None:
        return
    try:
        layouts.check_layout(kernel.layout)
    except ValueError as error:
        kernel = dataclasses.replace(kernel, problem=str(error))
    yield kernel


def _attention(layer, adapter, place):
    # One `kernel_constraint` argument reaches every projection, whose
    # layouts differ: query, key and value (and GroupedQueryAttention's
    # gate) map `in` to heads x dim, the output projection heads x dim to
    # `out`.
    projections = ("_query_dense", "_key_dense", "_gate_dense", "_value_dense")
    for attribute in (*projections, "_output_dense"):
        projection = getattr(layer, attribute, None)
        if projection is None:
            continue
        for kernel in _einsum_dense(
            projection, adapter, _Place(f"{place.prefix}{projection.name}/", None)
        ):
            key = None if place.config is None else (*place.config, "kernel_constraint")
            yield dataclasses.replace(kernel, constraint_key=key)


def _rnn(layer, adapter, place):
    # LSTM, GRU, SimpleRNN and ConvLSTM list their cell's arguments in their
    # own config; a plain RNN(cell) nests the cell's config under "cell".
    config = _config(layer)
    cell_config = place.config
    if cell_config is not None and config is not None and "cell" in config:
        cell_config = (*cell_config, "cell", "config")
    yield from _search(
        layer.cell, adapter, _Place(f"{place.prefix}{layer.cell.name}/", cell_config)
    )


def _stacked_cells(layer, adapter, place):
    for index, cell in enumerate(layer.cells):
        config = (
            None if place.config is None else (*place.config, "cells", index, "config")
        )
        yield from _search(cell, adapter, _Place(f"{place.prefix}{cell.name}/", config))


def _bidirectional(layer, adapter, place):
    config = _config(layer) or {}
    # tf-keras rebuilds the backward layer from the forward layer's config
    # unless it was given one; Keras 3 always saves both.
    backward_key = "backward_layer" if "backward_layer" in config else "layer"
    for sublayer, key in (
        (layer.forward_layer, "layer"),
        (layer.backward_layer, backward_key),
    ):
        sub_config = None if place.config is None else (*place.config, key, "config")
        yield from _search(
            sublayer, adapter, _Place(f"{place.prefix}{sublayer.name}/", sub_config)
        )


def _wrapper(layer, adapter, place):
    config = _config(layer) or {}
    sub_config = None
    if place.config is not None and "layer" in config:
        sub_config = (*place.config, "layer", "config")
    yield from _search(
        layer.layer, adapter, _Place(f"{place.prefix}{layer.layer.name}/", sub_config)
    )


def _keras_spectral_normalization(layer, adapter, place):
    for kernel in _wrapper(layer, adapter, place):
        yield dataclasses.replace(
            kernel,
            problem="normalized already by Keras's own SpectralNormalization wrapper",
        )


def _locally_connected(layer, adapter, place):
    kernel = _weight(
        layer, ("kernel",), "kernel", "dense", "kernel_constraint", adapter, place
    )
    if kernel is not None:
        yield dataclasses.replace(
            kernel,
            problem="a locally connected kernel is one matrix per output position; "
            "kerasnorm does not normalize it",
        )


_KERNEL = (("kernel",), "kernel", "dense", "kernel_constraint")
_CELL = (
    _KERNEL,
    (("recurrent_kernel",), "recurrent_kernel", "dense", "recurrent_constraint"),
)

# Most specific classes first: in tf-keras, Conv2DTranspose, DepthwiseConv2D
# and SeparableConv2D are subclasses of Conv2D or its base, and
# Bidirectional and SpectralNormalization of Wrapper.
_HANDLERS = (
    (
        {"Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"},
        _simple((("kernel",), "kernel", "transpose", "kernel_constraint")),
    ),
    (
        {"DepthwiseConv1D", "DepthwiseConv2D"},
        _simple(
            (
                ("depthwise_kernel", "kernel"),
                "depthwise_kernel",
                "depthwise",
                "depthwise_constraint",
            )
        ),
    ),
    (
        {"SeparableConv1D", "SeparableConv2D"},
        _simple(
            (
                ("depthwise_kernel",),
                "depthwise_kernel",
                "depthwise",
                "depthwise_constraint",
            ),
            (
                ("pointwise_kernel",),
                "pointwise_kernel",
                "dense",
                "pointwise_constraint",
            ),
        ),
    ),
    ({"LocallyConnected1D", "LocallyConnected2D"}, _locally_connected),
    ({"Conv1D", "Conv2D", "Conv3D", "Dense"}, _simple(_KERNEL)),
    (
        {"Embedding"},
        _simple((("embeddings",), "embeddings", "dense", "embeddings_constraint")),
    ),
    ({"EinsumDense"}, _einsum_dense),
    ({"MultiHeadAttention", "GroupedQueryAttention"}, _attention),
    ({"SimpleRNNCell", "LSTMCell", "GRUCell", "ConvLSTMCell"}, _simple(*_CELL)),
    ({"StackedRNNCells"}, _stacked_cells),
    ({"RNN"}, _rnn),
    ({"Bidirectional"}, _bidirectional),
    ({"SpectralNormalization"}, _keras_spectral_normalization),
    ({"Wrapper"}, _wrapper),
)


_CONVOLUTIONS = frozenset(
    {
        *(f"Conv{n}D" for n in (1, 2, 3)),
        *(f"Conv{n}DTranspose" for n in (1, 2, 3)),
        *(f"DepthwiseConv{n}D" for n in (1, 2)),
        *(f"SeparableConv{n}D" for n in (1, 2)),
    }
)


def conv_geometry(kernel: Kernel, input_shape) -> operators.ConvGeometry | None:
    """Where the convolution `kernel` belongs to applies it, on `input_shape`.

    The operator norm of a convolution depends on the shape of what it is
    applied to; the largest singular value of its reshaped kernel does not
    bound it (see `kerasnorm.ops.operators`).

    Args:
        kernel: A kernel of a built layer, from `find_kernels`.
        input_shape: The shape of that layer's input, batch axis first.

    Returns:
        A `ConvGeometry` for a convolution's kernel (a separable
        convolution's pointwise kernel is a 1x1 convolution on the
        depthwise step's output), or None for a kernel whose matrix view is
        the linear map it computes (Dense, Embedding, EinsumDense, attention
        projections, recurrent kernels).

    Raises:
        KerasNormValueError: Where the operator is a convolution whose
            norm kerasnorm cannot compute, saying why.
    """
    names = _keras_class_names(kernel.holder)
    if not names & _CONVOLUTIONS:
        if any("Conv" in name for name in names):
            raise KerasNormValueError(
                f"{kernel.path} belongs to a {type(kernel.holder).__name__}, a "
                "convolution kerasnorm computes no operator norm for"
            )
        return None
    if "/" in kernel.path:
        raise KerasNormValueError(
            f"{kernel.path} belongs to a convolution inside the layer, whose input "
            "is not the layer's input"
        )
    shape = tuple(input_shape)[1:]
    if None in shape:
        raise KerasNormValueError(
            f"the layer's input shape {tuple(input_shape)} has an unknown size other "
            "than the batch, and a convolution's operator norm depends on it"
        )
    geometry = operators.ConvGeometry.of_layer(kernel.holder, shape)
    if kernel.path != "pointwise_kernel":
        return geometry
    depthwise_output = operators.output_shape(
        tuple(kernel.holder.depthwise_kernel.shape), "depthwise", geometry
    )
    return operators.ConvGeometry(depthwise_output, data_format=geometry.data_format)


def _unknown(layer, adapter, place) -> Iterator[Kernel]:
    """The kernels of a layer the table does not describe (your own layers).

    The kernel layers it keeps as attributes are searched as usual, but no
    constraint argument of the outer layer is known to reach them; its own
    trainable weights of rank 2 or more are read as `(..., in, out)`.
    """
    found = []
    for attribute, sublayer in _sublayers(layer, adapter):
        found.extend(
            dataclasses.replace(kernel, constraint_key=None)
            for kernel in _search(
                sublayer, adapter, _Place(f"{place.prefix}{attribute}/", None)
            )
        )
    yield from found
    yield from _leftovers(layer, adapter, place, found)


def _leftovers(layer, adapter, place, found) -> Iterator[Kernel]:
    """Kernel-like trainable weights of `layer` that `found` does not hold."""
    claimed = {id(kernel.variable) for kernel in found}
    candidates = [
        variable
        for variable in layer.trainable_weights
        if id(variable) not in claimed and _looks_like_kernel(variable)
    ]
    if not candidates:
        return  # the common case: a known layer whose handler found them all
    for _, sublayer in _sublayers(layer, adapter):
        claimed.update(id(weight) for weight in sublayer.weights)
    attributes = {
        id(value): name
        for name, value in vars(layer).items()
        if adapter.is_variable(value)
    }
    config = None
    for variable in candidates:
        if id(variable) in claimed:
            continue
        claimed.add(id(variable))
        attribute = attributes.get(id(variable))
        if attribute is None:
            yield Kernel(
                path=place.prefix + _short_name(variable),
                variable=variable,
                layout="dense",
                holder=layer,
                attribute=None,
                constraint_key=None,
                assumed_layout=True,
                problem=(
                    f"kerasnorm cannot find the attribute of {layer.name!r} that "
                    "holds it, so it cannot substitute it"
                ),
            )
            continue
        key = f"{attribute.lstrip('_')}_constraint"
        if config is None:
            config = _config(layer) or {}
        reaches = place.config is not None and key in config
        yield Kernel(
            path=place.prefix + attribute.lstrip("_"),
            variable=variable,
            layout="dense",
            holder=layer,
            attribute=attribute,
            constraint_key=(*place.config, key) if reaches else None,
            assumed_layout=True,
            problem=_kernel_problem(layer),
        )


def _looks_like_kernel(variable) -> bool:
    dtype = str(getattr(variable.dtype, "name", variable.dtype))
    return (
        len(variable.shape) >= 2
        and dtype.startswith(("float", "bfloat"))
        and _short_name(variable) not in _NOT_KERNELS
    )


def _short_name(variable) -> str:
    """`"kernel"` for Keras 3's `"kernel"` and tf-keras's `"dense/kernel:0"`."""
    return variable.name.rsplit("/", 1)[-1].split(":")[0]


def _sublayers(layer, adapter) -> list[tuple[str, Any]]:
    """`(attribute, layer)` for every layer held in an attribute of `layer`.

    Each sublayer once, under the first name found for it: public
    attributes first, so that a layer kept both in `self.f` and in Keras's
    own tracking list (`_layers`, `_self_tracked_trackables`) is `f`.
    """
    found = {}
    names = sorted(vars(layer), key=lambda name: name.startswith("_"))
    for name in names:
        value = vars(layer)[name]
        if isinstance(value, (list, tuple)):
            items = [(f"{name.lstrip('_')}[{i}]", v) for i, v in enumerate(value)]
        elif isinstance(value, dict):
            items = [(f"{name.lstrip('_')}[{k!r}]", v) for k, v in value.items()]
        else:
            items = [(name.lstrip("_") or name, value)]
        for path, item in items:
            if isinstance(item, adapter.layers.Layer) and id(item) not in found:
                found[id(item)] = (path, item)
    return list(found.values())


def _config(layer) -> dict | None:
    try:
        return layer.get_config()
    except NotImplementedError:
        return None


def config_value(config: dict, key: tuple):
    """The value at `key` (a `Kernel.constraint_key`) in a layer's config."""
    for part in key:
        config = config[part]
    return config


def set_config_value(config: dict, key: tuple, value) -> None:
    """Sets the value at `key` (a `Kernel.constraint_key`) in a layer's config."""
    config_value(config, key[:-1])[key[-1]] = value


def constrained_by(kernel: Kernel):
    """The constraint Keras applies to `kernel` after each optimizer step, or None."""
    return getattr(kernel.variable, "constraint", None)


def walk_layers(
    model, adapter, prefix: str = "", seen: set | None = None
) -> Iterator[tuple[str, Any]]:
    """`(path, layer)` for every layer under `model`, nested models opened.

    A path joins the names of the nested models and the layer with `/`; a
    layer shared by several models is listed once.
    """
    seen = set() if seen is None else seen
    for layer in model.layers:
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        path = prefix + layer.name
        if adapter.is_model(layer):
            yield from walk_layers(layer, adapter, path + "/", seen)
        else:
            yield path, layer
