"""`to_graph`: a Keras model as a networkx graph that rules can match on.

The graph flattens nested models: every call of every layer, at any depth,
is one graph node, and every tensor passed between two calls is an edge,
across model boundaries too. A layer called twice is two nodes tied to one
layer; a nested model called twice contributes its nodes twice.

Node ids are paths: `"conv1"` for a call in the top model, `"generator/conv1"`
inside a nested model called `generator`, `"dense#1"` for the second call of
layer `dense`. Each node carries plain attributes:

| attribute        | meaning                                                     |
|------------------|-------------------------------------------------------------|
| `op`             | the layer (or Keras 3 op) called; the InputLayer of an input|
| `class_name`     | `type(op).__name__`                                         |
| `classes`        | names of `type(op)` and its bases, for type selectors       |
| `layer_name`     | `op.name`                                                   |
| `scope`          | path of nested-model calls holding the node, `()` at the top|
| `is_input`       | an input of the model at `scope`                            |
| `is_output`      | produces an output of the model at `scope`                  |
| `outputs`        | `TensorInfo` (shape, dtype) of each output                  |
| `activation`     | name of the node's non-linearity, `None` if it has none     |
| `kernels`        | every `Kernel` of the layer (`kerasnorm.layers.kernels`)    |
| `role`           | `"generator"`, `"discriminator"` or `None`                  |
| `reaches_output` | an output of the node's role region is reached without     |
|                  | passing another kernel layer (see `kerasnorm.roles`)        |
| `region_input`   | an input of the outermost model of the node's role          |
| `wrapped`        | the class name of the kerasnorm wrapper around the layer    |
|                  | (`"SpectralNormalization"`, `"EqualizedLR"`), or `None`     |
| `ir`, `ir_node`  | the `ModelIR` holding the call and the call's name there    |
| `call`           | `ir.call_key(ir_node)`: shared by the nodes of every call   |
|                  | of a nested model                                           |

The graph's own attributes hold `model`, `adapter`, `ir` (the top
`ModelIR`), `scopes` (scope -> `ModelIR` of the model called there),
`roles` (scope -> role) and `role_decisions` (scope -> `RoleDecision`: the
role and why); actions may cache what they compute for the whole graph
there too (`nearest_data_format`).
"""

from __future__ import annotations

import inspect
from typing import Any

import keras
import networkx as nx

from kerasnorm import roles as roles_lib
from kerasnorm.adapters import adapter_for
from kerasnorm.errors import KerasNormTypeError
from kerasnorm.ir import ModelIR, Ref, read_model
from kerasnorm.layers.kernels import find_kernels
from kerasnorm.layers.wrapper import KernelWrapperBase

_ACTIVATION_LAYERS = {
    "ReLU": "relu",
    "LeakyReLU": "leaky_relu",
    "PReLU": "prelu",
    "ELU": "elu",
    "Softmax": "softmax",
    "ThresholdedReLU": "thresholded_relu",
}


def to_graph(model, role: str = "auto") -> nx.DiGraph:
    """Returns the call graph of a functional or Sequential Keras model.

    Args:
        model: A functional or Sequential model of Keras 3 or tf-keras.
        role: `"auto"` to decide each (nested) model's role from its
            structure and name (see `kerasnorm.roles`), or `"generator"` /
            `"discriminator"` for every part of the model.

    Returns:
        A `networkx.DiGraph` as described in the module docstring. The model
        is not modified.

    Raises:
        KerasNormTypeError: If `model` is not a Keras model with a graph.

    Example:

    >>> from kerasnorm.demo import build_discriminator
    >>> graph = kerasnorm.to_graph(build_discriminator(keras))
    >>> graph.nodes["conv1"]["class_name"], graph.nodes["conv1"]["role"]
    ('Conv2D', 'discriminator')
    """
    adapter = check_model(model)
    ir = read_model(model, adapter)
    graph = nx.DiGraph(model=model, adapter=adapter, ir=ir)
    _add_model(graph, ir, adapter, scope=(), sources=None)
    graph.graph["roles"] = roles_lib.assign(graph, role)
    roles_lib.mark_regions(graph)
    return graph


def check_model(model):
    """The adapter of `model`; raises `KerasNormTypeError` unless it is a
    functional or Sequential Keras model."""
    if isinstance(model, (list, tuple, dict)) or not hasattr(model, "name"):
        raise KerasNormTypeError(
            f"Expected a Keras model, received {type(model).__name__}."
        )
    adapter = adapter_for(model)
    if not adapter.is_model(model):
        raise KerasNormTypeError(
            f"Expected a Keras model, received the layer {model.name!r} "
            f"({type(model).__name__}). Wrap it in a functional model first."
        )
    if adapter.graph_view(model) is None:
        raise KerasNormTypeError(
            f"Model {model.name!r} of class {type(model).__name__} has no layer graph "
            "(a subclassed model, or a Sequential without an input shape), so "
            "kerasnorm cannot see where its layers connect. Build it with the "
            "functional API or as a Sequential starting with keras.Input(...), "
            "or attach kerasnorm.SpectralNorm / PixelNorm in its code by hand."
        )
    return adapter


def node_id(scope: tuple[str, ...], name: str) -> str:
    """The graph id of call `name` in the nested-model path `scope`."""
    return "/".join((*scope, name))


def _add_model(
    graph: nx.DiGraph,
    ir: ModelIR,
    adapter,
    scope: tuple[str, ...],
    sources: list[str] | None,
) -> dict[Ref, str]:
    """Adds one instance of `ir` under `scope`; returns its outputs' producers.

    Args:
        sources: For a nested model, the graph nodes feeding each of its
            flattened inputs; None for the top model.

    Returns:
        Map from each `Ref` of `ir` to the graph node that produces it
        (inside a nested model for a nested model's outputs).
    """
    graph.graph.setdefault("scopes", {})[scope] = ir
    producers: dict[Ref, str] = {}
    input_refs = keras.tree.flatten(ir.inputs)
    for position, ref in enumerate(input_refs):
        node = ir.nodes[ref.node]
        gid = node_id(scope, node.name)
        _add_node(graph, gid, node, ir, scope)
        if sources is not None:
            graph.add_edge(sources[position], gid)
        producers[ref] = gid
    for node in ir:
        if node.is_input:
            continue
        feeding = [producers[ref] for ref in node.refs()]
        if node.submodel is not None:
            inner = _add_model(
                graph, node.submodel, adapter, (*scope, node.name), feeding
            )
            for index, ref in enumerate(node.submodel.output_refs()):
                producers[Ref(node.name, index)] = inner[ref]
            continue
        gid = node_id(scope, node.name)
        _add_node(graph, gid, node, ir, scope)
        for source in feeding:
            graph.add_edge(source, gid)
        for index in range(len(node.outputs)):
            producers[Ref(node.name, index)] = gid
    for ref in ir.output_refs():
        graph.nodes[producers[ref]]["is_output"] = True
        graph.nodes[producers[ref]].setdefault("outputs_of", set()).add(scope)
    return producers


def _add_node(graph, gid: str, node, ir: ModelIR, scope) -> None:
    adapter = graph.graph["adapter"]
    # A layer already wrapped by kerasnorm is seen as the layer it wraps.
    wrapped = isinstance(node.op, KernelWrapperBase)
    layer = node.op.layer if wrapped else node.op
    kernels = () if node.is_input else find_kernels(layer, adapter)
    graph.add_node(
        gid,
        op=node.op,
        class_name=type(layer).__name__,
        classes=tuple(cls.__name__ for cls in type(layer).__mro__),
        layer_name=node.op.name,
        scope=scope,
        is_input=node.is_input,
        is_output=False,
        outputs=node.outputs,
        activation=_activation_of(layer, kernels),
        kernels=kernels,
        wrapped=type(node.op).__name__ if wrapped else None,
        role=None,
        reaches_output=False,
        region_input=False,
        ir=ir,
        ir_node=node.name,
        call=ir.call_key(node.name),
    )


def _activation_of(layer: Any, kernels) -> str | None:
    """The non-linearity of an activation layer or a kernel layer, or None."""
    classes = [cls.__name__ for cls in type(layer).__mro__]
    for class_name in classes:
        if class_name in _ACTIVATION_LAYERS:
            return _ACTIVATION_LAYERS[class_name]
    if not (kernels or "Activation" in classes):
        return None
    activation = getattr(layer, "activation", None)
    if _is_builtin_function(activation):
        # Named as the config would name it, without building the config:
        # get_config took a third of the graph's construction.
        activation = activation.__name__
    else:
        activation = layer.get_config().get("activation")
    if isinstance(activation, dict):
        activation = activation.get("class_name", "custom")
    if activation in (None, "linear"):
        return None
    return str(activation)


def _is_builtin_function(activation) -> bool:
    """Whether `activation` is one of Keras's activation functions."""
    module = getattr(activation, "__module__", None) or ""
    return inspect.isfunction(activation) and module.split(".")[0] in (
        "keras",
        "tf_keras",
    )
