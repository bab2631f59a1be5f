"""Selectors: predicates over the nodes of a `to_graph` graph, composable.

A selector is called as `selector(graph, node)` and returns a bool. They
combine with `&`, `|` and `~`, and print as the expression that built them,
which is how a plan names the rule that chose each change:

>>> selector = layer_type("Conv2D", "Dense") & role("discriminator") & ~name("logits")
>>> print(selector)
layer_type('Conv2D', 'Dense') & role('discriminator') & ~name('logits')

Any plain function `f(graph, node) -> bool` becomes a selector with
`where(f)`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import networkx as nx

from kerasnorm.errors import KerasNormTypeError
from kerasnorm.roles import check_role


class Selector:
    """A named predicate over graph nodes; see the module docstring."""

    def __init__(
        self,
        predicate: Callable[[nx.DiGraph, str], bool],
        text: str,
        uses_role: bool = False,
    ):
        self._predicate = predicate
        self._text = text
        # Whether matching depends on roles: only then must roles be decided.
        self.uses_role = uses_role

    def __call__(self, graph: nx.DiGraph, node: str) -> bool:
        return bool(self._predicate(graph, node))

    def __and__(self, other: Selector) -> Selector:
        other = _as_selector(other)
        return Selector(
            lambda g, n: self(g, n) and other(g, n),
            f"{self._text} & {other._text}",
            self.uses_role or other.uses_role,
        )

    def __or__(self, other: Selector) -> Selector:
        other = _as_selector(other)
        return Selector(
            lambda g, n: self(g, n) or other(g, n),
            f"({self._text} | {other._text})",
            self.uses_role or other.uses_role,
        )

    def __invert__(self) -> Selector:
        return Selector(lambda g, n: not self(g, n), f"~{self._text}", self.uses_role)

    def __repr__(self) -> str:
        return self._text


def _as_selector(value: Any) -> Selector:
    if isinstance(value, Selector):
        return value
    raise KerasNormTypeError(
        f"Selectors combine only with selectors; received {value!r}. Wrap a "
        "function `f(graph, node) -> bool` as `kerasnorm.select.where(f)`."
    )


def where(
    predicate: Callable[[nx.DiGraph, str], bool], text: str | None = None
) -> Selector:
    """A selector from any function `predicate(graph, node) -> bool`."""
    if not callable(predicate):
        raise KerasNormTypeError(
            f"`predicate` must be callable, received {predicate!r}"
        )
    return Selector(predicate, text or f"where({getattr(predicate, '__name__', 'f')})")


def layer_type(*types: str | type) -> Selector:
    """Calls of layers of the given classes (or their subclasses).

    Args:
        *types: Class names (`"Conv2D"`, matched against the class and its
            bases, in either Keras) or classes.
    """
    names = {t for t in types if isinstance(t, str)}
    classes = tuple(t for t in types if isinstance(t, type))

    def predicate(graph, node):
        data = graph.nodes[node]
        return bool(names & set(data["classes"])) or isinstance(data["op"], classes)

    text = ", ".join(repr(t) if isinstance(t, str) else t.__name__ for t in types)
    return Selector(predicate, f"layer_type({text})")


def name(pattern: str) -> Selector:
    """Calls of layers whose name matches the regular expression `pattern`."""
    compiled = re.compile(pattern)
    return Selector(
        lambda g, n: compiled.fullmatch(g.nodes[n]["layer_name"]) is not None,
        f"name({pattern!r})",
    )


def role(which: str) -> Selector:
    """Nodes in a part of the model with role `which` ("generator", ...)."""
    check_role(which)
    return Selector(
        lambda g, n: g.nodes[n]["role"] == which, f"role({which!r})", uses_role=True
    )


def model_input(
    rank: int | None = None, floating: bool | None = None, nested: bool = False
) -> Selector:
    """Model inputs, optionally of a given rank and (non-)floating dtype.

    Args:
        rank: Keep inputs of this rank (batch axis included).
        floating: Keep floating-point (True) or other (False) inputs.
        nested: Also count the inputs of models nested in a model of the
            same role (a block's input); by default only the inputs of the
            outermost model of the node's role count.
    """

    def predicate(graph, node):
        data = graph.nodes[node]
        if not data["is_input"] or not (nested or data["region_input"]):
            return False
        info = data["outputs"][0]
        return (rank is None or info.rank == rank) and (
            floating is None or info.is_float == floating
        )

    options = [
        f"{key}={value!r}"
        for key, value in (("rank", rank), ("floating", floating), ("nested", nested))
        if value not in (None, False) or (key == "floating" and value is False)
    ]
    return Selector(predicate, f"model_input({', '.join(options)})")


def model_output() -> Selector:
    """Calls producing an output of the (nested) model holding them."""
    return Selector(lambda g, n: g.nodes[n]["is_output"], "model_output()")


def reaches_output() -> Selector:
    """Calls from which an output is reached without another kernel layer.

    See `kerasnorm.roles` for which output counts.
    """
    return Selector(lambda g, n: g.nodes[n]["reaches_output"], "reaches_output()")


def has_kernel() -> Selector:
    """Calls of layers holding a kernel, at any depth (see `kerasnorm.layers.kernels`).

    Dense, convolutions, Embedding, EinsumDense, attention, RNN layers,
    Bidirectional and TimeDistributed around them, and layers of your own
    with kernel sublayers or weights of rank 2 or more.
    """
    return Selector(lambda g, n: bool(g.nodes[n]["kernels"]), "has_kernel()")


def activation_point() -> Selector:
    """Calls applying a non-linearity: activation layers, or kernel layers
    with a non-linear `activation=` argument."""
    return Selector(
        lambda g, n: g.nodes[n]["activation"] is not None, "activation_point()"
    )


def everything() -> Selector:
    """Every node."""
    return Selector(lambda g, n: True, "everything()")
