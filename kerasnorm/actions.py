"""Actions: what a rule does to the nodes its selector picks.

Two kinds, after the unit they change:

* Layer actions change a layer, so every call of it: `ConstrainKernel`
  attaches a `SpectralNorm` constraint to each kernel, `WrapSpectral` wraps
  the layer in `SpectralNormalization`. `SpectralNormalize` is either one,
  as the rewrite's `mode` says. `EqualizeLearningRate` wraps the layer in
  `EqualizedLR`. A layer gets one layer action: the first rule to claim it.
* Call actions insert a new layer into the graph: `InsertPixelNorm` and
  `InsertAfter` after a call's output, `InsertBefore` on a call's inputs.

Every action can tell that it was already applied (`skip_reason`), which
makes applying a policy twice a no-op, and describes itself for the plan.
Actions never import Keras: the layers they create come from the graph's
adapter, or from the user's factory.
"""

from __future__ import annotations

import abc
import inspect
import re
from collections.abc import Callable
from typing import Any

import networkx as nx

from kerasnorm.adapters import ADAPTERS
from kerasnorm.errors import KerasNormTypeError, KerasNormValueError
from kerasnorm.layers.kernels import constrained_by, conv_geometry
from kerasnorm.layers.tracking import TRACKING_OPTIONS, Tracking, check_positive
from kerasnorm.ops import layouts

MODES = ("constraint", "reparam")


class Action:
    """Base class of actions. `per_layer` actions change layers, others calls.

    A layer action's `kernel_status` says what it does to each kernel, as
    the plan's kernel list reports it.
    """

    per_layer = False
    kernel_status: str | None = None
    # Where a call action puts its layer: "after" or "before" the call.
    position: str | None = None

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


def is_spectral(constraint) -> bool:
    """Whether a kernel constraint applies spectral normalization.

    True for a `SpectralNorm` of either Keras, and for a `ConstraintChain`
    holding one; False for anything else, None included. This is how
    kerasnorm tells that a layer is normalized already, and which kernels
    `kerasnorm.callbacks.normalized_sigmas` and `kerasnorm.fold` look at.

    Args:
        constraint: A layer's constraint attribute (`layer.kernel_constraint`),
            or None.

    Example:

    >>> is_spectral(kerasnorm.SpectralNorm())
    True
    >>> is_spectral(keras.constraints.MaxNorm(2.0))
    False
    """
    return spectral_constraint(constraint) is not None


def spectral_constraint(constraint):
    """The `SpectralNorm` a kernel constraint is or holds (in a
    `ConstraintChain`), or None."""
    for adapter in ADAPTERS:
        if isinstance(constraint, adapter.SpectralNorm):
            return constraint
        if isinstance(constraint, adapter.ConstraintChain):
            found = (spectral_constraint(c) for c in constraint.constraints)
            return next((c for c in found if c is not None), None)
    return None


class _SpectralAction(Action):
    per_layer = True
    kernel_status = "normalized"
    allowed_options = frozenset({*TRACKING_OPTIONS, "sigma", "clip", "operator_norm"})

    def __init__(self, **options: Any):
        unknown = set(options) - self.allowed_options
        if unknown:
            raise KerasNormValueError(
                f"{type(self).__name__} takes no option {sorted(unknown)}; it takes "
                f"{', '.join(sorted(self.allowed_options))}."
            )
        Tracking(**{k: v for k, v in options.items() if k in TRACKING_OPTIONS})
        operator_norm = options.get("operator_norm", False)
        if not isinstance(operator_norm, bool):
            raise KerasNormTypeError(
                f"`operator_norm` must be True or False. Received: {operator_norm!r}"
            )
        self.options = options

    @property
    def operator_norm(self) -> bool:
        """Whether convolutions are normalized by their operator norm."""
        return self.options.get("operator_norm", False)

    def geometry(self, graph: nx.DiGraph, node: str, kernel):
        """The convolution geometry `kernel` is normalized on, or None.

        None without `operator_norm`, or for a kernel whose matrix view is
        its operator (Dense, Embedding...).

        Raises:
            KerasNormValueError: Why the operator norm of `kernel` cannot be
                computed.
        """
        if not self.operator_norm:
            return None
        return conv_geometry(kernel, layer_input_shape(graph, node))

    def skip_reason(self, graph, node):
        data = graph.nodes[node]
        if not data["kernels"]:
            return "no kernel to normalize"
        if data["wrapped"]:
            return f"already wrapped in {data['wrapped']}"
        if all(is_spectral(constrained_by(k)) for k in data["kernels"]):
            return "already has a SpectralNorm constraint"
        return None

    def split(self, graph: nx.DiGraph, node: str) -> tuple[list, list]:
        """The layer's kernels this action normalizes, and those it cannot.

        Returns:
            `(targets, blocked)`: the `Kernel`s to normalize, and
            `(Kernel, reason)` for each kernel left as it is because it
            cannot be normalized this way. Kernels normalized already are
            in neither.
        """
        targets, blocked = [], []
        for kernel in graph.nodes[node]["kernels"]:
            if is_spectral(constrained_by(kernel)):
                continue
            reason = kernel.problem or self._blocked_reason(graph, node, kernel)
            if reason is None:
                targets.append(kernel)
            else:
                blocked.append((kernel, reason))
        return targets, blocked

    def _blocked_reason(self, graph, node, kernel) -> str | None:
        try:
            self.geometry(graph, node, kernel)
        except KerasNormValueError as error:
            return f"operator norm: {error}"
        return None

    def _operator_text(self, graph, node, kernel) -> str:
        try:
            geometry = self.geometry(graph, node, kernel)
        except KerasNormValueError:
            return ""  # the plan gives the reason as the skip's
        if geometry is None:
            return ""
        return f" (operator norm on input {geometry.input_shape})"

    def get_config(self):
        return dict(self.options)


class ConstrainKernel(_SpectralAction):
    """Attaches a `SpectralNorm` constraint to every kernel of the layer.

    The constraint goes into the layer's config, under the constructor
    argument that reaches each kernel (`kernel_constraint`,
    `recurrent_constraint`, `depthwise_constraint`..., inside a
    `Bidirectional`'s or `TimeDistributed`'s wrapped layer too), so it is
    saved with the model. A kernel no argument reaches (one a custom layer
    makes itself) cannot be constrained: the plan lists it as skipped, and
    `mode="reparam"` normalizes it. A kernel that already has a constraint
    keeps it: the two are chained in a `ConstraintChain`, the existing one
    first.

    Args:
        **options: `SpectralNorm` options (`n_iter`, `tol`, `max_iter`,
            `block_size`, `sigma`, `clip`, `eps`); the layout comes from the
            layer type.
    """

    def _blocked_reason(self, graph, node, kernel):
        if kernel.constraint_key is not None:
            return super()._blocked_reason(graph, node, kernel)
        return (
            "no constraint argument of the layer reaches it (the layer makes it "
            "itself); use mode='reparam', or give the layer a constraint "
            "argument it passes to this weight"
        )

    def split(self, graph, node):
        targets, blocked = super().split(graph, node)
        # One constraint argument serving kernels of several layouts needs
        # their creators' names to tell them apart.
        groups = constraint_groups(targets)
        for kernels in groups.values():
            owners = {}
            for kernel in kernels:
                owners.setdefault(kernel.owner, set()).add(kernel.layout)
            if any(len(found) > 1 for found in owners.values()):
                reason = (
                    "one constraint argument reaches kernels of different layouts "
                    "made by layers of the same name; use mode='reparam'"
                )
                blocked.extend((kernel, reason) for kernel in kernels)
                targets = [k for k in targets if k not in kernels]
        return targets, blocked

    def describe(self, graph, node, kernels=None):
        kernels = graph.nodes[node]["kernels"] if kernels is None else kernels
        parts = []
        for kernel in kernels:
            existing = constrained_by(kernel)
            text = f"SpectralNorm on {kernel.path}"
            text += self._operator_text(graph, node, kernel)
            if existing is not None:
                text += f" (after existing {type(existing).__name__})"
            if kernel.assumed_layout:
                text += " (read as (..., in, out))"
            parts.append(text)
        return "; ".join(parts)

    def constraint_for(self, adapter, kernels, existing, geometry=None):
        """The constraint the rewritten layer gets for `kernels`, one config key's.

        Args:
            adapter: The model's adapter.
            kernels: The kernels one constraint argument reaches.
            existing: The constraint the layer has there already, or None.
            geometry: The convolution's `ConvGeometry`, for its operator
                norm (see `geometry`), or None.
        """
        layouts = {kernel.owner: kernel.layout for kernel in kernels}
        layout = next(iter(layouts.values()))
        if len(set(layouts.values())) > 1:
            layout = layouts
        options = {k: v for k, v in self.options.items() if k != "operator_norm"}
        spectral = adapter.SpectralNorm(layout=layout, geometry=geometry, **options)
        if existing is None:
            return spectral
        return adapter.ConstraintChain([existing, spectral])


class WrapSpectral(_SpectralAction):
    """Wraps the layer in `SpectralNormalization` (the reparametrization).

    Every kernel of the layer is normalized, composite and custom layers'
    too (see `SpectralNormalization`); a layer with a kernel that cannot be
    (see `kerasnorm.layers.kernels.Kernel.problem`) is left as it is.

    Args:
        **options: `SpectralNormalization` options (`n_iter`, `tol`,
            `max_iter`, `block_size`, `eps`).
    """

    allowed_options = frozenset({*TRACKING_OPTIONS, "operator_norm"})

    def split(self, graph, node):
        targets, blocked = super().split(graph, node)
        if blocked:
            # The wrapper normalizes all of a layer's kernels or none.
            reason = "the wrapper normalizes all of a layer's kernels, and " + (
                "; ".join(f"{k.path} cannot be: {why}" for k, why in blocked)
            )
            blocked = [(kernel, reason) for kernel in targets] + blocked
            targets = []
        return targets, blocked

    def wrap(self, adapter, layer, name: str, dtype):
        """`layer` (built) in the wrapper this action plans, named `name`."""
        return adapter.SpectralNormalization(
            layer, name=name, dtype=dtype, **self.options
        )

    def describe(self, graph, node, kernels=None):
        kernels = graph.nodes[node]["kernels"] if kernels is None else kernels
        assumed = [k.path for k in kernels if k.assumed_layout]
        text = "wrap in SpectralNormalization"
        if len(kernels) > 1 or assumed:
            text += f" ({', '.join(k.path for k in kernels)})"
        if kernels:
            text += self._operator_text(graph, node, kernels[0])
        if assumed:
            text += f"; {', '.join(assumed)} read as (..., in, out)"
        return text


def constraint_groups(kernels) -> dict[tuple, list]:
    """Kernels by the config key of the constraint argument that reaches them."""
    groups: dict[tuple, list] = {}
    for kernel in kernels:
        groups.setdefault(kernel.constraint_key, []).append(kernel)
    return groups


class SpectralNormalize(Action):
    """Spectral normalization as the rewrite's `mode` chooses.

    `mode="constraint"` makes it a `ConstrainKernel`, `mode="reparam"` a
    `WrapSpectral`, with the same options.
    """

    per_layer = True
    kernel_status = "normalized"

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


class EqualizeLearningRate(Action):
    """Wraps the layer in `EqualizedLR`: kernels stored as V, used as c * V.

    ProGAN's equalized learning rate, `c = gain * lr_multiplier /
    sqrt(fan_in)` per kernel (see `EqualizedLR`). The rewritten layer
    computes what the original did: its kernels are stored divided by `c`
    (and its biases by `lr_multiplier`), unless `reinitialize` draws them
    afresh.

    Args:
        gain: He's gain. Defaults to `sqrt(2)`; `1.0` suits a linear output
            layer.
        lr_multiplier: Multiplies the learning rate of kernels and biases.
            Defaults to `1.0`.
        reinitialize: Draw the stored kernels from `N(0, 1 / lr_multiplier**2)`
            instead of converting the layer's. Defaults to `False`.
    """

    per_layer = True
    kernel_status = "rescaled"

    def __init__(
        self,
        gain: float = 2.0**0.5,
        lr_multiplier: float = 1.0,
        reinitialize: bool = False,
    ):
        self.gain = check_positive("gain", gain)
        self.lr_multiplier = check_positive("lr_multiplier", lr_multiplier)
        self.reinitialize = bool(reinitialize)

    def skip_reason(self, graph, node):
        data = graph.nodes[node]
        if not data["kernels"]:
            return "no kernel to rescale"
        if data["wrapped"]:
            return f"already wrapped in {data['wrapped']}"
        problems = [k for k in data["kernels"] if k.problem is not None]
        if problems:
            return "; ".join(
                f"{k.path} cannot be rescaled: {k.problem}" for k in problems
            )
        return None

    def wrap(self, adapter, layer, name: str, dtype):
        """`layer` (built) in the wrapper this action plans, named `name`."""
        return adapter.EqualizedLR(layer, name=name, dtype=dtype, **self.get_config())

    def describe(self, graph, node):
        parts = []
        for kernel in graph.nodes[node]["kernels"]:
            fan_in = layouts.fan_in(kernel.shape, kernel.layout)
            scale = self.gain * self.lr_multiplier / fan_in**0.5
            parts.append(f"{kernel.path} * {scale:.4g} (fan_in {fan_in})")
        text = "equalized learning rate: " + "; ".join(parts)
        if self.lr_multiplier != 1.0:
            text += f"; biases * {self.lr_multiplier:g}"
        return text

    def get_config(self):
        return {
            "gain": self.gain,
            "lr_multiplier": self.lr_multiplier,
            "reinitialize": self.reinitialize,
        }


class _InsertAction(Action, abc.ABC):
    position = "after"
    # Added to the name of the call's layer to name the inserted layer.
    suffix: str

    def inserted_name(self, graph: nx.DiGraph, node: str) -> str:
        """The name of the layer inserted at `node`: its layer's name and `suffix`."""
        return f"{graph.nodes[node]['layer_name']}_{self.suffix}"

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

    suffix = "pixel_norm"

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
        policy = dtype_policy_at(graph, node)
        return adapter.PixelNorm(
            epsilon=self.epsilon,
            axis=channel_axis(graph, node),
            name=name,
            **({} if policy is None else {"dtype": policy}),
        )

    def get_config(self):
        return {"epsilon": self.epsilon}


class InsertAfter(_InsertAction):
    """Inserts a layer of your own after the call's output.

    The new layer is named after the call's layer and `suffix`
    (`"act1_Dropout"`). It is not inserted again where it already is: the
    action is skipped when the output already goes into a layer of that
    name (or that name with a number, `"act1_Dropout_1"`) of the class the
    factory makes, so applying the same rule twice changes nothing.

    When the factory takes a `dtype` keyword (a Keras layer class does, and
    so does a `functools.partial` of one that does not set it), the layer
    gets the dtype policy of the layer it follows (for a model input, of
    the input's first consumer), so it computes in the same precision as
    its neighbours under per-layer mixed precision.

    Args:
        factory: Called as `factory(name=...)` (and `dtype=...`, see above)
            for each insertion; returns a new layer of the model's Keras
            (e.g. `functools.partial(keras.layers.Dropout, 0.1)`).
        suffix: Added to the layer name to name the new layer. Defaults to
            the factory's name (`"Dropout"` for the partial above).
    """

    def __init__(self, factory: Callable[..., Any], suffix: str | None = None):
        if not callable(factory):
            raise KerasNormTypeError(
                f"`factory` must be callable, received {factory!r}"
            )
        self.factory = factory
        self.suffix = suffix or _factory_name(factory)

    def skip_reason(self, graph, node):
        name = self.inserted_name(graph, node)
        if self.position == "after":
            neighbours, where = list(graph.successors(node)), "followed"
        else:
            neighbours, where = list(graph.predecessors(node)), "preceded"
        inserted = [n for n in neighbours if self._is_inserted(graph, n, name)]
        # After: the output feeds the inserted layer. Before: every input
        # comes through one.
        if inserted and (self.position == "after" or inserted == neighbours):
            names = sorted({graph.nodes[n]["layer_name"] for n in inserted})
            return f"already {where} by {', '.join(names)}"
        return None

    def _is_inserted(self, graph, node, name: str) -> bool:
        """Whether `node` calls a layer this action inserted under `name`."""
        pattern = re.escape(name) + r"(_\d+)?"
        if not re.fullmatch(pattern, graph.nodes[node]["layer_name"]):
            return False
        made = getattr(self.factory, "func", self.factory)
        if not isinstance(made, type):
            # A function: what it makes is known only by making one.
            made = type(self.factory(name=name))
        return isinstance(graph.nodes[node]["op"], made)

    def describe(self, graph, node):
        return f"insert {self.suffix} {self.position}"

    def new_layer(self, graph, node, name):
        policy = dtype_policy_at(graph, node)
        if policy is not None and _takes_dtype(self.factory):
            return self.factory(name=name, dtype=policy)
        return self.factory(name=name)

    def get_config(self):
        return {"factory": _factory_name(self.factory)}


class InsertBefore(InsertAfter):
    """Inserts a layer of your own on each tensor input of the call."""

    position = "before"


def layer_input_shape(graph: nx.DiGraph, node: str) -> tuple:
    """The shape of the first input of the layer called at `node`.

    Every call of the layer must see the same shape (batch aside), for one
    constraint or wrapper serves them all.

    Raises:
        KerasNormValueError: If the layer's calls see different shapes.
    """
    calls = graph.graph.get("calls_of_op")
    if calls is None:
        calls = graph.graph["calls_of_op"] = {}
        for each, data in graph.nodes(data=True):
            calls.setdefault(id(data["op"]), []).append(each)
    shapes = {
        _first_input_shape(graph, each) for each in calls[id(graph.nodes[node]["op"])]
    }
    if len(shapes) > 1:
        raise KerasNormValueError(
            "the layer is called on inputs of shapes "
            f"{', '.join(map(str, sorted(shapes, key=str)))}, and one "
            "normalization serves every call"
        )
    (shape,) = shapes
    return shape


def _first_input_shape(graph: nx.DiGraph, node: str) -> tuple:
    data = graph.nodes[node]
    ir = data["ir"]
    ref = ir.nodes[data["ir_node"]].refs()[0]
    return (None, *ir.nodes[ref.node].outputs[ref.index].shape[1:])


def dtype_policy_at(graph: nx.DiGraph, node: str):
    """The dtype policy for a layer inserted at `node`, or None if none is known.

    That of the layer called at `node`; for a model input, of the first
    layer that consumes it (looking through the inputs of nested models).
    A kerasnorm wrapper stands for the layer it wraps.
    """
    for current in _breadth_first(node, graph.successors):
        data = graph.nodes[current]
        if not data["is_input"]:
            op = data["op"].layer if data["wrapped"] else data["op"]
            return getattr(op, "dtype_policy", None)
    return None


def _takes_dtype(factory) -> bool:
    """Whether `factory` accepts `dtype=` and does not fix it already."""
    if "dtype" in (getattr(factory, "keywords", None) or {}):
        return False
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "dtype" or p.kind is p.VAR_KEYWORD for p in parameters)


def _factory_name(factory) -> str:
    target = getattr(factory, "func", factory)
    return getattr(target, "__name__", type(target).__name__)


def channel_axis(graph: nx.DiGraph, node: str) -> int:
    """1 if the nearest `data_format` upstream of `node` is channels_first, else -1.

    Nearest by the number of calls in between; of several as near, the one
    reached through the earliest inputs. Found for every node in one pass
    over the graph, kept on it: a search per node would make a rewrite
    quadratic in a model without any `data_format` (a Dense generator).
    """
    nearest = graph.graph.get("nearest_data_format")
    if nearest is None:
        nearest = graph.graph["nearest_data_format"] = _nearest_data_formats(graph)
    return 1 if nearest[node][1] == "channels_first" else -1


def _nearest_data_formats(graph: nx.DiGraph) -> dict[str, tuple[float, str | None]]:
    """`(distance, data_format)` of the nearest `data_format` upstream of each node."""
    nearest: dict[str, tuple[float, str | None]] = {}
    for node in nx.topological_sort(graph):
        data_format = getattr(graph.nodes[node]["op"], "data_format", None)
        if data_format is not None:
            nearest[node] = (0, data_format)
            continue
        found = [nearest[parent] for parent in graph.predecessors(node)]
        distance, data_format = min(
            (item for item in found if item[1] is not None),
            key=lambda item: item[0],
            default=(float("inf"), None),
        )
        nearest[node] = (distance + 1, data_format)
    return nearest


def _breadth_first(node: str, neighbours: Callable[[str], Any]):
    """`node`, then the nodes `neighbours` reaches from it, nearest first.

    Lazy: a node's neighbours are looked up only once the caller asks for
    the node after it, so a search that stops early goes no further.
    """
    frontier, seen = [node], set()
    while frontier:
        current = frontier.pop(0)
        if current in seen:
            continue
        seen.add(current)
        yield current
        frontier.extend(neighbours(current))
