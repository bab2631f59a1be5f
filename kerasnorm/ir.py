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
another moves every later use of the old output onto the new node. As in
torch.fx, a verb costs what it changes, not the size of the model: the nodes
are kept in a linked list (`NodeTable`), and a `ModelIR` indexes which nodes
read each output (`Node.users` in torch.fx), so an insertion rewrites only
the readers of the output it intercepts. `k` insertions into a model of `n`
nodes cost `O(n + k)` (the index is built once), where rewriting every node
and rebuilding the order at each insertion cost `O(n * k)`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import Any

import keras


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
            for leaf in keras.tree.flatten((self.args, self.kwargs))
            if isinstance(leaf, Ref)
        ]


class NodeTable(MutableMapping[str, Node]):
    """Nodes by name, in graph order, with insertion after any node in O(1).

    A dict keeps its keys in insertion order but can only append, so putting
    a node in the middle meant rebuilding it. This mapping keeps the order
    in a doubly linked list of names instead; lookups go through a dict.
    Assigning a new name appends it; assigning an existing one keeps its
    place.

    Args:
        nodes: Nodes by name, in order.
    """

    def __init__(self, nodes: Mapping[str, Node] | Iterable[tuple[str, Node]] = ()):
        self._nodes: dict[str, Node] = {}
        # `None` is the sentinel closing the ring: `_next[None]` is the first
        # name, `_previous[None]` the last.
        self._next: dict[str | None, str | None] = {None: None}
        self._previous: dict[str | None, str | None] = {None: None}
        self.update(nodes)

    def __getitem__(self, name: str) -> Node:
        return self._nodes[name]

    def __setitem__(self, name: str, node: Node) -> None:
        if name not in self._nodes:
            self._link(self._previous[None], name)
        self._nodes[name] = node

    def __delitem__(self, name: str) -> None:
        del self._nodes[name]
        before, after = self._previous.pop(name), self._next.pop(name)
        self._next[before], self._previous[after] = after, before

    def __iter__(self) -> Iterator[str]:
        name = self._next[None]
        while name is not None:
            yield name
            name = self._next[name]

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, name: object) -> bool:
        return name in self._nodes

    def __repr__(self) -> str:
        return f"NodeTable({list(self)!r})"

    def following(self, name: str) -> str | None:
        """The name after `name` in order, or None if `name` is the last."""
        return self._next[name]

    def insert_after(self, anchor: str, node: Node) -> None:
        """Puts `node` right after the node named `anchor`.

        Raises:
            KeyError: If there is no node named `anchor`.
            ValueError: If a node named `node.name` is already there.
        """
        if anchor not in self._nodes:
            raise KeyError(anchor)
        if node.name in self._nodes:
            raise ValueError(f"There is already a node named {node.name!r}.")
        self._link(anchor, node.name)
        self._nodes[node.name] = node

    def _link(self, before: str | None, name: str) -> None:
        after = self._next[before]
        self._next[before], self._previous[name] = name, before
        self._next[name], self._previous[after] = after, name


# Stands for the model's outputs among the readers of a `Ref`: no node is
# named None.
_OUTPUTS = None


@dataclasses.dataclass
class ModelIR:
    """The graph of one functional or Sequential model.

    Attributes:
        model: The Keras model it was read from.
        name: The model's name.
        sequential: Whether the model is a `Sequential`.
        nodes: Nodes by name, inputs first, in topological order: a
            `NodeTable` (a dict given here is turned into one).
        inputs: The model's inputs as a structure (list, dict...) of `Ref`.
        outputs: The model's outputs as a structure of `Ref`.

    Edit the graph through the verbs (`insert_after`, `insert_before`): they
    keep an index of which nodes read each output, built at the first edit,
    which changes made to a node's arguments by hand would leave stale.
    """

    model: Any
    name: str
    sequential: bool
    nodes: NodeTable
    inputs: Any
    outputs: Any
    # Ref -> the names of the nodes reading it (`_OUTPUTS` for the model's
    # outputs), as an ordered set; None until the first edit needs it.
    _users: dict[Ref, dict[str | None, None]] | None = dataclasses.field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self):
        if not isinstance(self.nodes, NodeTable):
            self.nodes = NodeTable(self.nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes.values())

    def output_refs(self) -> list[Ref]:
        return keras.tree.flatten(self.outputs)

    def call_key(self, name: str) -> tuple[int, str]:
        """The key of the call named `name` in this model, wherever it is called.

        A nested model called twice is one `ModelIR`: both of its calls'
        graph nodes share the key, and an insertion planned at one of them
        is made in the model, so at both.
        """
        return (id(self), name)

    def insert_after(self, ref: Ref, node: Node) -> None:
        """Inserts `node`, which reads `ref`, and moves every other use of `ref` to it.

        Uses in later nodes and in the model outputs now read output 0 of
        `node`; `node`'s own arguments keep reading `ref`.
        """
        self._insert(node, after=ref.node)
        replacement = Ref(node.name, 0)
        users = self._users_index()
        readers = users.pop(ref, {})
        if node.name in readers:
            del readers[node.name]
            users[ref] = {node.name: None}
        for reader in readers:
            self._swap_in(reader, ref, replacement)
        users[replacement] = readers

    def insert_before(self, consumer: str, ref: Ref, node: Node) -> None:
        """Inserts `node`, which reads `ref`, between `ref` and `consumer` only."""
        if consumer not in self.nodes:
            raise KeyError(consumer)
        self._insert(node, after=ref.node)
        replacement = Ref(node.name, 0)
        self._swap_in(consumer, ref, replacement)
        users = self._users_index()
        if consumer in users.get(ref, {}):
            del users[ref][consumer]
            users[replacement] = {consumer: None}

    def _users_index(self) -> dict[Ref, dict[str | None, None]]:
        if self._users is None:
            self._users = {}
            for node in self.nodes.values():
                for ref in node.refs():
                    self._users.setdefault(ref, {})[node.name] = None
            for ref in self.output_refs():
                self._users.setdefault(ref, {})[_OUTPUTS] = None
        return self._users

    def _swap_in(self, reader: str | None, old: Ref, new: Ref) -> None:
        """Makes `reader` (a node's name, or `_OUTPUTS`) read `new` for `old`."""

        def swap(ref):
            return new if ref == old else ref

        if reader is _OUTPUTS:
            self.outputs = map_refs(self.outputs, swap)
        else:
            node = self.nodes[reader]
            node.args, node.kwargs = map_refs((node.args, node.kwargs), swap)

    def _insert(self, node: Node, after: str) -> None:
        """Puts `node` after the node named `after` and indexes what it reads."""
        # Later inputs stay ahead of any call.
        anchor = after
        while (following := self.nodes.following(anchor)) is not None and (
            self.nodes[following].is_input
        ):
            anchor = following
        users = self._users_index()
        self.nodes.insert_after(anchor, node)
        for ref in node.refs():
            users.setdefault(ref, {})[node.name] = None


def map_refs(structure: Any, function: Callable[[Ref], Any]) -> Any:
    """Applies `function` to every `Ref` leaf of a nested structure."""
    return keras.tree.map_structure(
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

    for tensor in keras.tree.flatten(view.inputs):
        layer = adapter.input_layer(tensor)
        name = name_for(layer)
        info = (adapter.tensor_info(tensor),)
        nodes[name] = Node(name, layer, outputs=info, is_input=True)
        refs[id(tensor)] = Ref(name, 0)
    for op, args, kwargs, outputs, index in view.calls:
        name = name_for(op, index)
        args, kwargs = keras.tree.map_structure(to_ref, (tuple(args), dict(kwargs)))
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
        inputs=keras.tree.map_structure(to_ref, view.inputs),
        outputs=keras.tree.map_structure(to_ref, view.outputs),
    )
    cache[id(model)] = ir
    return ir
