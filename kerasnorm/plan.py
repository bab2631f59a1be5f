"""`plan`: match rules against a model's graph and list the changes; build nothing.

Matching goes rule by rule, in the order given, and node by node in
topological order. A layer action (spectral normalization) is planned once
per layer, however many calls the layer has; a call action (an insertion) is
planned once per call of the model that holds it, however many times that
model is itself called. The first rule to claim a layer or call wins; later
claims are listed as skipped, with the reason.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections import Counter
from collections.abc import Sequence
from typing import Literal

import networkx as nx

from kerasnorm.actions import (
    Action,
    ConstrainKernel,
    SpectralNormalize,
    WrapSpectral,
    is_spectral,
)
from kerasnorm.errors import KerasNormTypeError, KerasNormValueError
from kerasnorm.graph import to_graph
from kerasnorm.layers.kernels import Kernel, constrained_by
from kerasnorm.policies import get_policy
from kerasnorm.roles import RoleDecision, check_role
from kerasnorm.rules import Rule

# What a node of `Plan.to_networkx()` is: a layer call the plan leaves as
# it is, one whose layer it changes, or a layer it inserts.
NodeKind = Literal["unchanged", "changed", "inserted"]


@dataclasses.dataclass(frozen=True)
class Edit:
    """One change a plan makes (or skips).

    The record the rewrite carries out and `Plan.to_networkx` draws from:
    neither works out again which call an insertion goes to or what the
    inserted layer is called.

    Attributes:
        node: The graph node (see `to_graph`) the rule matched.
        layer: The name of the layer called there.
        action: The action, resolved for the plan's mode.
        rule: The name of the rule that chose it.
        detail: What exactly changes, in words.
        call: The call's key in the model that holds it
            (`ModelIR.call_key`): a nested model called twice has one key
            per call of its own, shared by both of its calls, and an
            insertion goes into the nested model, so into both.
        skipped: Why the change is not made, or None if it is.
        kernels: For spectral normalization, the paths (see
            `kerasnorm.layers.kernels.Kernel`) of the layer's kernels it
            normalizes, or, when skipped, leaves alone.
        blocked: Whether the change was skipped because it cannot be made
            (rather than because it was made already): `strict=True`
            raises for these.
        inserted: The name of the layer an insertion adds
            (`"act1_pixel_norm"`; the rewrite appends `_1`, `_2`... where
            the model has that name already), None for a change of the
            layer itself.
    """

    node: str
    layer: str
    action: Action
    rule: str
    detail: str
    call: tuple[int, str]
    skipped: str | None = None
    kernels: tuple[str, ...] = ()
    blocked: bool = False
    inserted: str | None = None

    @property
    def kind(self) -> NodeKind:
        """`"inserted"` for an insertion, `"changed"` for a change of the layer."""
        return "changed" if self.inserted is None else "inserted"

    @property
    def reason(self) -> str:
        """What changes and the rule that chose it, in words."""
        return f"{self.detail} (rule {self.rule!r})"


@dataclasses.dataclass(frozen=True)
class KernelStatus:
    """What a plan does with one kernel of the model.

    Attributes:
        node: The graph node of the layer's first call.
        layer: The layer's name.
        kernel: The `kerasnorm.layers.kernels.Kernel`.
        status: `"normalized"` (this plan normalizes it), `"rescaled"`
            (this plan equalizes its learning rate), `"already normalized"`
            (it has a SpectralNorm constraint or wrapper), `"already
            rescaled"` (it is in an EqualizedLR wrapper), `"skipped"` (a
            rule chose it but it cannot be changed; see `reason`) or `"not
            selected"` (no rule chose it).
        reason: The rule, or why the kernel is left as it is.
    """

    node: str
    layer: str
    kernel: Kernel
    status: str
    reason: str


class Plan:
    """The changes `apply_normalization` would make, printable as a table.

    Attributes:
        graph: The model's graph, from `to_graph`.
        edits: Every `Edit`, made or skipped, in matching order.
        mode: `"constraint"` or `"reparam"`.
    """

    def __init__(self, graph: nx.DiGraph, edits: list[Edit], mode: str):
        self.graph = graph
        self.edits = edits
        self.mode = mode

    @property
    def model(self):
        return self.graph.graph["model"]

    @property
    def roles(self) -> dict[str, RoleDecision]:
        """The role of the model and of each nested model, and why.

        Keyed by path: the model's name, then the nested-model calls
        (`"gan/generator"`); see `kerasnorm.roles` for the rules.
        """
        name = self.model.name
        return {
            "/".join((name, *scope)): decision
            for scope, decision in self.graph.graph["role_decisions"].items()
        }

    @property
    def changes(self) -> list[Edit]:
        """The edits that are made."""
        return [edit for edit in self.edits if edit.skipped is None]

    def kernels(self) -> list[KernelStatus]:
        """Every kernel of the model, each once, with what the plan does to it.

        Every trainable kernel of every layer (see
        `kerasnorm.layers.kernels`) is listed, at any depth of nesting, so
        none is passed over in silence.
        """
        done: dict[tuple[int, str], tuple[str, str]] = {}
        for edit in self.edits:
            op = self.graph.nodes[edit.node]["op"]
            for path in edit.kernels:
                if edit.skipped is None:
                    status = edit.action.kernel_status
                    done[id(op), path] = (status, f"rule {edit.rule!r}")
                elif edit.blocked:
                    done.setdefault((id(op), path), ("skipped", edit.skipped))
        statuses, seen = [], set()
        for node in nx.topological_sort(self.graph):
            data = self.graph.nodes[node]
            if id(data["op"]) in seen:
                continue
            seen.add(id(data["op"]))
            for kernel in data["kernels"]:
                status, reason = done.get((id(data["op"]), kernel.path), (None, None))
                if status is None:
                    if data["wrapped"] == "EqualizedLR":
                        status, reason = "already rescaled", "before this plan"
                    elif data["wrapped"] or is_spectral(constrained_by(kernel)):
                        status, reason = "already normalized", "before this plan"
                    else:
                        role = data["role"] or "no role"
                        status, reason = "not selected", f"no rule chose it ({role})"
                statuses.append(
                    KernelStatus(node, data["layer_name"], kernel, status, reason)
                )
        return statuses

    def totals(self) -> Counter:
        """How many changes of each action type."""
        return Counter(type(edit.action).__name__ for edit in self.changes)

    def __len__(self) -> int:
        return len(self.changes)

    @property
    def title(self) -> str:
        """The first line of the printed plan: the model and the mode."""
        return f"Plan for model {self.model.name!r} (mode={self.mode!r})"

    def to_networkx(self) -> nx.DiGraph:
        """The model's layer calls as the rewrite builds them, inserted layers included.

        One node per layer call, with the ids of `to_graph`, and one per
        inserted layer, where the rewrite puts it; one edge per tensor
        passed. An inserted layer's id is its name with the path of the
        nested model holding it (`"block/dense_pixel_norm"`), and `#1`,
        `#2`... where that id is taken: a nested model called twice has
        its insertion at both calls, and `InsertBefore` puts one layer on
        each input. Skipped edits are not shown. Each node has:

        - `kind` (`NodeKind`): `"unchanged"`; `"changed"`, its layer is
          changed (so at every call of it); or `"inserted"`.
        - `label` (`str`): the node id and the layer's class,
          `"conv1 (Conv2D)"`; for an inserted layer, its id without `#`.
        - `reason` (`str`): the change's `Edit.reason`; `""` for an
          unchanged call.
        - `edit` (`Edit` or None): the change; None for an unchanged call.

        The graph's attribute `title` is the plan's `title` and the number
        of changes.

        Returns:
            A `networkx.DiGraph`.

        Example:

        >>> from kerasnorm.demo import build_generator
        >>> graph = kerasnorm.plan(build_generator(keras), "progan").to_networkx()
        >>> sorted(n for n, kind in graph.nodes(data="kind") if kind == "inserted")
        ['act1_pixel_norm', 'act2_pixel_norm', 'fc_act_pixel_norm', 'z_pixel_norm']
        >>> list(graph.successors("act1"))
        ['act1_pixel_norm']
        >>> graph.nodes["act1_pixel_norm"]["reason"]
        "insert PixelNorm(axis=-1) after (rule 'progan: activation')"
        """
        graph = self.graph
        changed = {
            id(graph.nodes[edit.node]["op"]): edit
            for edit in self.changes
            if edit.kind == "changed"
        }
        drawn = nx.DiGraph(title=f"{self.title}: {len(self.changes)} changes")
        for node, data in graph.nodes(data=True):
            edit = changed.get(id(data["op"]))
            drawn.add_node(
                node,
                kind=edit.kind if edit else "unchanged",
                label=f"{node} ({data['class_name']})",
                reason=edit.reason if edit else "",
                edit=edit,
            )
        drawn.add_edges_from(graph.edges)
        calls: dict[tuple[int, str], list[str]] = {}
        for node, call in graph.nodes(data="call"):
            calls.setdefault(call, []).append(node)
        for edit in self.changes:
            if edit.kind != "inserted":
                continue
            for node in calls[edit.call]:
                label = "/".join((*graph.nodes[node]["scope"], edit.inserted))
                box = {"kind": "inserted", "label": label, "reason": edit.reason}
                if edit.action.position == "after":
                    new = _free_id(drawn, label)
                    successors = list(drawn.successors(node))
                    drawn.add_node(new, **box, edit=edit)
                    drawn.remove_edges_from((node, s) for s in successors)
                    drawn.add_edges_from([(node, new), *((new, s) for s in successors)])
                else:
                    for predecessor in list(drawn.predecessors(node)):
                        new = _free_id(drawn, label)
                        drawn.add_node(new, **box, edit=edit)
                        drawn.remove_edge(predecessor, node)
                        drawn.add_edges_from([(predecessor, new), (new, node)])
        return drawn

    def to_dot(self) -> str:
        """`to_networkx()` as DOT text, for Graphviz or pydot; needs neither.

        A box per node, labelled with its `label` and, under it, its
        `reason`; its `class` is its `kind`. `kerasnorm.plot_plan` draws it.

        Returns:
            The text of a DOT `digraph`.

        Example:

        >>> from kerasnorm.demo import build_discriminator
        >>> dot = kerasnorm.plan(build_discriminator(keras), "sngan").to_dot()
        >>> dot.count("class=changed"), dot.count(" -> ")
        (3, 6)
        """
        graph = self.to_networkx()
        lines = [
            f"digraph {_dot_string(self.model.name)} {{",
            f"  label={_dot_string(graph.graph['title'])};",
            "  labelloc=t;",
            '  node [shape=box, style="rounded,filled", fillcolor=white];',
        ]
        for node, data in graph.nodes(data=True):
            text = "\n".join(filter(None, (data["label"], data["reason"])))
            lines.append(
                f"  {_dot_string(node)} [label={_dot_string(text)}, "
                f"class={data['kind']}];"
            )
        lines += [
            f"  {_dot_string(source)} -> {_dot_string(target)};"
            for source, target in graph.edges
        ]
        return "\n".join([*lines, "}"]) + "\n"

    def __str__(self) -> str:
        header = ("node", "change", "rule", "note")
        rows = [
            (
                edit.node,
                edit.detail,
                edit.rule,
                f"skipped: {edit.skipped}" if edit.skipped else "",
            )
            for edit in self.edits
        ]
        columns = 4 if any(row[3] for row in rows) else 3
        header, rows = header[:columns], [row[:columns] for row in rows]
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(columns)]
        line = "  ".join(f"{{:<{w}}}" for w in widths)
        out = [
            self.title,
            *(f"role of {path!r}: {decision}" for path, decision in self.roles.items()),
            line.format(*header).rstrip(),
            line.format(*("-" * w for w in widths)).rstrip(),
            *(line.format(*row).rstrip() for row in rows),
        ]
        totals = ", ".join(f"{n} {name}" for name, n in sorted(self.totals().items()))
        skipped = len(self.edits) - len(self.changes)
        out.append(
            f"{len(self.changes)} changes ({totals or 'none'}), {skipped} skipped"
        )
        kernels = Counter(status.status for status in self.kernels())
        if kernels:
            counts = ", ".join(
                f"{kernels[name]} {name}"
                for name in (
                    "normalized",
                    "rescaled",
                    "already normalized",
                    "already rescaled",
                    "skipped",
                    "not selected",
                )
                if kernels[name]
            )
            out.append(f"kernels: {counts}")
        return "\n".join(out)

    def __repr__(self) -> str:
        return f"<Plan {self.model.name!r}: {len(self.changes)} changes>"


def plan(
    model,
    policy: str | Sequence[str] | None = None,
    *,
    role: str = "auto",
    rules: Sequence[Rule] | None = None,
    mode: str = "constraint",
    strict: bool = False,
    **sn_options,
) -> Plan:
    """Matches a policy's rules (and your own) against `model`; changes nothing.

    Args:
        model: A functional or Sequential model, Keras 3 or tf-keras.
        policy: A registered policy name (`"progan"`, `"sngan"`, `"sagan"`,
            `"biggan"`, or your own), a list of names, or None.
        role: `"auto"`, `"generator"` or `"discriminator"`; see
            `kerasnorm.roles`.
        rules: More rules, applied after the policy's.
        mode: `"constraint"` (SpectralNorm kernel constraints) or
            `"reparam"` (SpectralNormalization wrappers).
        strict: Raise if a rule matches no node, or chooses a kernel it
            cannot normalize (see `Plan.kernels`).
        **sn_options: Options for every spectral normalization the policy
            adds (`n_iter`, `tol`, `max_iter`, `block_size`, `eps`; in constraint mode
            also `sigma`, `clip`).

    Returns:
        A `Plan`.

    Raises:
        KerasNormTypeError: If `model` is not a functional or Sequential
            Keras model, or `rules` holds something else than rules.
        KerasNormValueError: For an unknown policy, role or mode, a rule
            that matches nothing or a kernel that cannot be normalized
            under `strict`, or a model whose role cannot be decided.
    """
    check_role(role)
    all_rules = list(get_policy(policy))
    if rules is not None:
        if isinstance(rules, Rule) or not all(isinstance(r, Rule) for r in rules):
            raise KerasNormTypeError(
                f"`rules` must be a list of Rule, received {rules!r}"
            )
        all_rules.extend(rules)
    graph = to_graph(model, role)
    if any(rule.selector.uses_role for rule in all_rules):
        _check_roles_decided(graph)
    order = list(nx.topological_sort(graph))
    claimed: dict[tuple, str] = {}
    edits: list[Edit] = []
    unmatched: list[Rule] = []
    for rule in all_rules:
        action = rule.action
        if isinstance(action, SpectralNormalize):
            action = SpectralNormalize(**{**sn_options, **action.options}).resolve(mode)
        matched = [node for node in order if rule.selector(graph, node)]
        if not matched:
            unmatched.append(rule)
        for node in matched:
            edits.extend(_edit(graph, node, rule, action, claimed))
    if strict:
        _check_nothing_blocked(edits, model)
        if unmatched:
            raise KerasNormValueError(
                f"Rule {unmatched[0].name!r} matches no layer of model "
                f"{model.name!r} (strict=True)."
            )
    return Plan(graph, edits, mode)


def _edit(graph, node, rule, action, claimed) -> list[Edit]:
    data = graph.nodes[node]
    if action.per_layer:
        key = ("layer", id(data["op"]))
    else:
        key = ("call", data["call"], action.position)
    edit = functools.partial(
        Edit,
        node=node,
        layer=data["layer_name"],
        action=action,
        rule=rule.name,
        call=data["call"],
        inserted=None if action.per_layer else action.inserted_name(graph, node),
    )
    every_kernel = tuple(k.path for k in data["kernels"]) if action.per_layer else ()
    if key in claimed:
        if claimed[key] == rule.name:
            # The same layer through another of its calls, or the same call
            # through another call of the model that holds it.
            return []
        reason = f"already changed by rule {claimed[key]!r}"
        return [edit(detail=action.describe(graph, node), skipped=reason)]
    claimed[key] = rule.name
    reason = action.skip_reason(graph, node)
    if reason is not None or not isinstance(action, (ConstrainKernel, WrapSpectral)):
        return [
            edit(
                detail=action.describe(graph, node),
                skipped=reason,
                kernels=every_kernel,
            )
        ]
    targets, blocked = action.split(graph, node)
    edits = []
    if targets:
        edits.append(
            edit(
                detail=action.describe(graph, node, targets),
                kernels=tuple(k.path for k in targets),
            )
        )
    by_reason: dict[str, list] = {}
    for kernel, why in blocked:
        by_reason.setdefault(why, []).append(kernel)
    for why, kernels in by_reason.items():
        edits.append(
            edit(
                detail=action.describe(graph, node, kernels),
                skipped=why,
                kernels=tuple(k.path for k in kernels),
                blocked=True,
            )
        )
    return edits


def _check_nothing_blocked(edits: list[Edit], model) -> None:
    """Raises if a rule chose kernels it cannot normalize (`strict=True`)."""
    blocked = [edit for edit in edits if edit.blocked]
    if blocked:
        listed = "; ".join(
            f"{edit.node} ({', '.join(edit.kernels)}): {edit.skipped}"
            for edit in blocked
        )
        raise KerasNormValueError(
            f"Model {model.name!r} has kernels its rules chose but cannot normalize "
            f"(strict=True): {listed}."
        )


def _check_roles_decided(graph: nx.DiGraph) -> None:
    """Raises if a part of the model that holds layers a policy acts on has no role."""
    decisions = graph.graph["role_decisions"]
    for _, data in graph.nodes(data=True):
        if data["role"] is None and (data["kernels"] or data["activation"]):
            scope = data["scope"]
            # A nested model that only lacks its enclosing model's role
            # points at the enclosing model whose name and structure disagree.
            source = scope
            while source and decisions[source].source == "undecided":
                source = source[:-1]
            if decisions[source].source == "conflict":
                raise KerasNormValueError(
                    f"The {_where(graph, source)} says two roles: "
                    f"{decisions[source].reason}. Pass role='generator' or "
                    "role='discriminator', or rename the model."
                )
            raise KerasNormValueError(
                f"Cannot tell whether {_where(graph, scope)} is a generator or a "
                f"discriminator (it holds layer {data['layer_name']!r}): "
                f"it {decisions[scope].reason}. Pass role='generator' or "
                "role='discriminator', or name the model so that it says (e.g. "
                "'my_generator')."
            )


def _where(graph: nx.DiGraph, scope: tuple) -> str:
    if scope:
        return f"nested model {'/'.join(scope)!r}"
    return f"model {graph.graph['scopes'][scope].name!r}"


def _free_id(graph: nx.DiGraph, name: str) -> str:
    """`name`, or `name#1`, `name#2`... : the first that is not a node of `graph`."""
    numbered = (f"{name}#{number}" for number in itertools.count(1))
    return next(id_ for id_ in itertools.chain([name], numbered) if id_ not in graph)


def _dot_string(text: str) -> str:
    """`text` as a quoted DOT string."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'
