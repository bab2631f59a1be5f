"""Actions: what a rule does to the nodes its selector picks.

Two kinds, after the unit they change:

* Layer actions change a layer, so every call of it: `ConstrainKernel`
  attaches a `SpectralNorm` constraint to each kernel, `WrapSpectral` wraps
  the layer in `SpectralNormalization`. `SpectralNormalize` is either one,
  as the rewrite's `mode` says.
* Call actions insert a new layer into the graph: `InsertPixelNorm` and
  `InsertAfter` after a call's output, `InsertBefore` on a call's inputs.

Every action can tell that it was already applied (`skip_reason`), which
makes applying a policy twice a no-op, and describes itself for the plan.
Actions never import Keras: the layers they create come from the graph's
adapter, or from the user's factory.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

import networkx as nx

from kerasnorm.errors import KerasNormTypeError, KerasNormValueError
from kerasnorm.layers.tracking import TRACKING_OPTIONS, Tracking

MODES = ("constraint", "reparam")


class Action:
    """Base class of actions. `per_layer` actions change layers, others calls."""

    per_layer = False

    def skip_reason(self, graph: nx.DiGraph, node: str) -> str | None:
        """Why this action must not apply at `node`, or None if it may."""
        return None

    def describe(self, graph: nx.DiGraph, node: str) -> str:
        """A short account of the change, for the plan table."""
        return repr(self)

    def get_config(self) -> dict:
        return {}

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({options})"


def _is_spectral(constraint, adapter) -> bool:
    if isinstance(constraint, adapter.SpectralNorm):
        return True
    if isinstance(constraint, adapter.ConstraintChain):
        return any(_is_spectral(c, adapter) for c in constraint.constraints)
    return False


class _SpectralAction(Action):
    per_layer = True
    allowed_options = frozenset({*TRACKING_OPTIONS, "sigma", "clip"})

    def __init__(self, **options: Any):
        unknown = set(options) - self.allowed_options
        if unknown:
            raise KerasNormValueError(
                f"{type(self).__name__} takes no option {sorted(unknown)}; it takes "
                f"{', '.join(sorted(self.allowed_options))}."
            )
        Tracking(**{k: v for k, v in options.items() if k in TRACKING_OPTIONS})
        self.options = options

    def skip_reason(self, graph, node):
        data = graph.nodes[node]
        if not data["kernels"]:
            return "no kernel to normalize"
        if data["wrapped"]:
            return "already wrapped in SpectralNormalization"
        adapter = graph.graph["adapter"]
        layer = data["op"]
        if all(
            _is_spectral(getattr(layer, slot.constraint_key, None), adapter)
            for slot in data["kernels"]
        ):
            return "already has a SpectralNorm constraint"
        return None

    def get_config(self):
        return dict(self.options)


class ConstrainKernel(_SpectralAction):
    """Attaches a `SpectralNorm` constraint to every kernel of the layer.

    A kernel that already has a constraint keeps it: the two are chained in
    a `ConstraintChain`, the existing one first.

    Args:
        **options: `SpectralNorm` options (`n_iter`, `tol`, `max_iter`,
            `block_size`, `sigma`, `clip`, `eps`); the layout comes from the
            layer type.
    """

    def describe(self, graph, node):
        layer = graph.nodes[node]["op"]
        parts = []
        for slot in graph.nodes[node]["kernels"]:
            existing = getattr(layer, slot.constraint_key, None)
            text = f"SpectralNorm on {slot.attributes[0]}"
            if existing is not None:
                text += f" (after existing {type(existing).__name__})"
            parts.append(text)
        return "; ".join(parts)

    def constraint_for(self, adapter, slot, existing):
        """The constraint the rewritten layer gets for kernel `slot`."""
        spectral = adapter.SpectralNorm(layout=slot.layout, **self.options)
        if existing is None:
            return spectral
        return adapter.ConstraintChain([existing, spectral])


class WrapSpectral(_SpectralAction):
    """Wraps the layer in `SpectralNormalization` (the reparametrization).

    Args:
        **options: `SpectralNormalization` options (`n_iter`, `tol`,
            `max_iter`, `block_size`, `eps`).
    """

    allowed_options = frozenset(TRACKING_OPTIONS)

    def describe(self, graph, node):
        return "wrap in SpectralNormalization"


class SpectralNormalize(Action):
    """Spectral normalization as the rewrite's `mode` chooses.

    `mode="constraint"` makes it a `ConstrainKernel`, `mode="reparam"` a
    `WrapSpectral`, with the same options.
    """

    per_layer = True

    def __init__(self, **options: Any):
        self.options = options

    def resolve(self, mode: str) -> Action:
        if mode not in MODES:
            raise KerasNormValueError(
                f"Unknown mode {mode!r}. Expected 'constraint' or 'reparam'."
            )
        if mode == "reparam":
            return WrapSpectral(**self.options)
        return ConstrainKernel(**self.options)

    def get_config(self):
        return dict(self.options)


class _InsertAction(Action, abc.ABC):
    position = "after"

    @abc.abstractmethod
    def new_layer(self, graph: nx.DiGraph, node: str, name: str):
        """The layer to insert at `node`, named `name`."""


class InsertPixelNorm(_InsertAction):
    """Inserts a `PixelNorm` after the call's output.

    Its channel axis follows the nearest layer upstream with a
    `data_format` (1 for channels_first), else the last axis. Skipped when
    the output already goes into a PixelNorm.

    Args:
        epsilon: The PixelNorm epsilon. Defaults to `1e-8`.
    """

    def __init__(self, epsilon: float = 1e-8):
        self.epsilon = epsilon

    def skip_reason(self, graph, node):
        adapter = graph.graph["adapter"]
        if any(
            isinstance(graph.nodes[s]["op"], adapter.PixelNorm)
            for s in graph.successors(node)
        ):
            return "already followed by a PixelNorm"
        if graph.nodes[node]["outputs"][0].rank < 2:
            return "output has no channel axis"
        return None

    def describe(self, graph, node):
        return f"insert PixelNorm(axis={channel_axis(graph, node)}) after"

    def new_layer(self, graph, node, name):
        adapter = graph.graph["adapter"]
        return adapter.PixelNorm(
            epsilon=self.epsilon, axis=channel_axis(graph, node), name=name
        )

    def get_config(self):
        return {"epsilon": self.epsilon}


class InsertAfter(_InsertAction):
    """Inserts a layer of your own after the call's output.

    Args:
        factory: Called as `factory(name=...)` for each insertion; returns a
            new layer of the model's Keras (e.g. `keras.layers.Dropout` via
            `functools.partial(keras.layers.Dropout, 0.1)`).
        suffix: Added to the layer name to name the new layer.
    """

    def __init__(self, factory: Callable[..., Any], suffix: str | None = None):
        if not callable(factory):
            raise KerasNormTypeError(
                f"`factory` must be callable, received {factory!r}"
            )
        self.factory = factory
        self.suffix = suffix or _factory_name(factory)

    def describe(self, graph, node):
        return f"insert {self.suffix} {self.position}"

    def new_layer(self, graph, node, name):
        return self.factory(name=name)

    def get_config(self):
        return {"factory": _factory_name(self.factory)}


class InsertBefore(InsertAfter):
    """Inserts a layer of your own on each tensor input of the call."""

    position = "before"


def _factory_name(factory) -> str:
    target = getattr(factory, "func", factory)
    return getattr(target, "__name__", type(target).__name__)


def channel_axis(graph: nx.DiGraph, node: str) -> int:
    """1 if the nearest `data_format` upstream of `node` is channels_first, else -1."""
    frontier, seen = [node], set()
    while frontier:
        current = frontier.pop(0)
        if current in seen:
            continue
        seen.add(current)
        data_format = getattr(graph.nodes[current]["op"], "data_format", None)
        if data_format is not None:
            return 1 if data_format == "channels_first" else -1
        frontier.extend(graph.predecessors(current))
    return -1
