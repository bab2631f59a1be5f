"""A small, Keras-neutral record of a functional model's graph, and its edit verbs.

A `ModelIR` lists the calls of one Keras model in topological order. Each
call (`Node`) names the operation it calls (a layer, a Keras 3 op, or a
nested model, whose own `ModelIR` hangs on the node) and its arguments, in
which every symbolic tensor is replaced by a `Ref` to the node and output
that produced it. Nothing here imports Keras: the adapters read a model into
a `ModelIR` and build a model back from one; `kerasnorm.graph` turns a tree
of them into a networkx graph for matching; `kerasnorm.rewrite` edits them.

The edit verbs keep the record consistent, the way torch.fx's
`inserting_after` and `replace_all_uses_with` do: inserting a node after
another moves every later use of the old output onto the new node.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class Ref:
    """Output `index` of the node called `node`: an edge of the graph."""

    node: str
    index: int = 0


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """Shape (batch axis included, `None` for unknown) and dtype of a tensor."""

    shape: tuple[int | None, ...]
    dtype: str

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def is_float(self) -> bool:
        return self.dtype.startswith(("float", "bfloat"))


@dataclasses.dataclass
class Node:
    """One call in a model's graph, or one of its inputs.

    Attributes:
        name: Unique within the model: the layer's name, with `#1`, `#2`...
            appended for its second, third... call in this model.
        op: The layer or operation called; for an input, its InputLayer.
        args: Positional arguments, with `Ref` in place of symbolic tensors.
        kwargs: Keyword arguments, likewise.
        outputs: One `TensorInfo` per output tensor, in flattened order.
        submodel: The `ModelIR` of `op` when `op` is a nested model.
        is_input: Whether the node is a model input.
    """

    name: str
    op: Any
    args: tuple = ()
    kwargs: dict = dataclasses.field(default_factory=dict)
    outputs: tuple[TensorInfo, ...] = ()
    submodel: ModelIR | None = None
    is_input: bool = False

    def refs(self) -> list[Ref]:
        """Every `Ref` among the arguments, in order (with repeats)."""
        return [
            leaf
            for leaf in tf.nest.flatten((self.args, self.kwargs))
            if isinstance(leaf, Ref)
        ]


@dataclasses.dataclass
class ModelIR:
    """The graph of one functional or Sequential model.

    Attributes:
        model: The Keras model it was read from.
        name: The model's name.
        sequential: Whether the model is a `Sequential`.
        nodes: Nodes by name, inputs first, in topological order.
        inputs: The model's inputs as a structure (list, dict...) of `Ref`.
        outputs: The model's outputs as a structure of `Ref`.
    """

    model: Any
    name: str
    sequential: bool
    nodes: dict[str, Node]
    inputs: Any
    outputs: Any

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes.values())

    def output_refs(self) -> list[Ref]:
        return tf.nest.flatten(self.outputs)

    def insert_after(self, ref: Ref, node: Node) -> None:
        """Inserts `node`, which reads `ref`, and moves every other use of `ref` to it.

        Uses in later nodes and in the model outputs now read output 0 of
        `node`; `node`'s own arguments keep reading `ref`.
        """
        replacement = Ref(node.name, 0)
        self._replace_uses(ref, replacement, skip=node.name)
        self._insert(node, after=ref.node)

    def insert_before(self, consumer: str, ref: Ref, node: Node) -> None:
        """Inserts `node`, which reads `ref`, between `ref` and `consumer` only."""
        replacement = Ref(node.name, 0)
        target = self.nodes[consumer]
        target.args, target.kwargs = map_refs(
            (target.args, target.kwargs), lambda r: replacement if r == ref else r
        )
        self._insert(node, after=ref.node)

    def _replace_uses(self, old: Ref, new: Ref, skip: str) -> None:
        def swap(ref):
            return new if ref == old else ref

        for node in self.nodes.values():
            if node.name != skip:
                node.args, node.kwargs = map_refs((node.args, node.kwargs), swap)
        self.outputs = map_refs(self.outputs, swap)

    def _insert(self, node: Node, after: str) -> None:
        items = list(self.nodes.items())
        position = next(i for i, (name, _) in enumerate(items) if name == after) + 1
        # Later inputs stay ahead of any call.
        while position < len(items) and items[position][1].is_input:
            position += 1
        items.insert(position, (node.name, node))
        self.nodes = dict(items)


def map_refs(structure: Any, function: Callable[[Ref], Any]) -> Any:
    """Applies `function` to every `Ref` leaf of a nested structure."""
    return tf.nest.map_structure(
        lambda leaf: function(leaf) if isinstance(leaf, Ref) else leaf, structure
    )


def read_model(model, adapter, cache: dict | None = None) -> ModelIR:
    """Reads the graph of a functional or Sequential model, nested models too.

    Args:
        model: A Keras model with a graph.
        adapter: The adapter of the model's Keras.
        cache: `id(model) -> ModelIR` of the models read so far, so that a
            nested model called twice is read once.

    Returns:
        The model's `ModelIR`; nodes calling a nested functional or
        Sequential model carry its `ModelIR` as `submodel`.

    The caller checks that `model` has a graph (`kerasnorm.graph.check_model`).
    """
    cache = {} if cache is None else cache
    if id(model) in cache:
        return cache[id(model)]
    view = adapter.graph_view(model)
    refs: dict[int, Ref] = {}
    nodes: dict[str, Node] = {}
    # A shared operation's calls are numbered in the order they were made.
    call_indices: dict[int, list[int]] = {}
    for op, _, _, _, index in view.calls:
        call_indices.setdefault(id(op), []).append(index)

    def name_for(op, index: int = 0) -> str:
        rank = sorted(call_indices.get(id(op), [index])).index(index)
        return op.name if rank == 0 else f"{op.name}#{rank}"

    def to_ref(leaf):
        return refs[id(leaf)] if adapter.is_symbolic(leaf) else leaf

    for tensor in tf.nest.flatten(view.inputs):
        layer = adapter.input_layer(tensor)
        name = name_for(layer)
        info = (adapter.tensor_info(tensor),)
        nodes[name] = Node(name, layer, outputs=info, is_input=True)
        refs[id(tensor)] = Ref(name, 0)
    for op, args, kwargs, outputs, index in view.calls:
        name = name_for(op, index)
        args, kwargs = tf.nest.map_structure(to_ref, (tuple(args), dict(kwargs)))
        has_graph = adapter.is_model(op) and adapter.graph_view(op) is not None
        nodes[name] = Node(
            name,
            op,
            args=args,
            kwargs=kwargs,
            outputs=tuple(adapter.tensor_info(t) for t in outputs),
            submodel=read_model(op, adapter, cache) if has_graph else None,
        )
        refs.update((id(t), Ref(name, i)) for i, t in enumerate(outputs))
    ir = ModelIR(
        model=model,
        name=model.name,
        sequential=view.sequential,
        nodes=nodes,
        inputs=tf.nest.map_structure(to_ref, view.inputs),
        outputs=tf.nest.map_structure(to_ref, view.outputs),
    )
    cache[id(model)] = ir
    return ir
