"""Roles: which parts of a model are a generator and which a discriminator.

`role="auto"` decides each model, and each nested model, from its
structure, with its name as evidence.

**Structure.** An input is a *sample* if it is a floating-point tensor of
rank 3 or more (an image, audio, a video, a sequence of features) or an
integer tensor of rank 2 or more with more than one element per example
(token ids, an 8-bit image); other inputs are latents and conditions (a
rank-2 latent, a class label, a mask).

- Rank rules, at any nesting level: a model with a floating-point input, no
  sample input, and only outputs of rank 3 or more is a generator ("maps
  latent (32,) to (16, 16, 3)"); a model with a sample input and only
  outputs of rank 2 or less is a discriminator ("reduces (16, 16, 3) to
  (1,)").
- Size rule, for the top model and for models nested in a model with no
  role: a model with sample inputs and only outputs of rank 3 or more, all
  sizes known, is a discriminator if its outputs hold at most 1/8 of the
  values of its sample inputs (a PatchGAN map), else a generator (image to
  image: U-Net, pix2pix and CycleGAN generators). Unknown sizes decide
  nothing.
- A model that feeds a nested generator into a nested discriminator
  (`Model(z, D(G(z)))`, a CycleGAN's training model) is a combined model:
  it has no role, and each nested model is judged as a top model is. A
  nested model counts as a generator here if it holds kernels and either a
  rank rule or its name makes it one, or the size rule does and it maps to
  the shape of one of the combined model's sample inputs (a fake image like
  the real one). So the blocks of a discriminator, which the size rule
  alone would call generators, do not make it a combined model.

**Name.** A model's name is split into whole words: at characters other
than letters and digits, at a lower-to-upper case change (`netD`: net, d),
before the last capital of a run of capitals followed by a lower-case
letter (`DCGANGenerator`: dcgan, generator) and at a letter followed by a
digit (`generator1`: generator, 1), never at a digit followed by a letter
(`unet_3d`: unet, 3d). A word in `GENERATOR_TOKENS` says generator, one in
`DISCRIMINATOR_TOKENS` discriminator; words of both roles say nothing.

**Decision.** Structure decides when the name agrees or says nothing; the
name decides when structure says nothing. When both speak and disagree, the
model has no role, and a policy that needs one raises an error asking for
`role=`. When neither speaks, a nested model takes the role of the model
around it (a residual block in a generator, a to_rgb block), and the top
model has none. Each decision is a `RoleDecision` with its reason, which
`Plan.roles` and the printed plan show. An explicit `role="generator"` or
`"discriminator"` covers the whole model instead.

The role region of a node is the outermost model around it that has the
node's role. "Reaches an output" (the ProGAN rule's exception) means: an
output of that region is reached from the node without passing another
kernel layer. For a generator nested in a GAN, the region is the
generator, so its final `tanh` is recognised even though a discriminator
follows it.
"""

from __future__ import annotations

import dataclasses
import math
import re

import keras
import networkx as nx

from kerasnorm.errors import KerasNormValueError
from kerasnorm.ir import ModelIR, TensorInfo

GENERATOR = "generator"
DISCRIMINATOR = "discriminator"
ROLES = (GENERATOR, DISCRIMINATOR)

GENERATOR_TOKENS = frozenset({"generator", "gen", "g", "decoder"})
DISCRIMINATOR_TOKENS = frozenset({"discriminator", "disc", "d", "critic"})

# Outputs holding at most this fraction of a model's sample values make it a
# discriminator under the size rule: a 70x70 PatchGAN maps two 256x256x3
# images to 30x30x1 (1/437), while image-to-image generators keep the size.
_SIZE_RATIO = 8

# Zero-width places where a name splits into words (see the module docstring).
_WORD_BREAK = re.compile(
    r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=[0-9])"
)


@dataclasses.dataclass(frozen=True)
class RoleDecision:
    """The role of one model or nested model, and why.

    Attributes:
        role: `"generator"`, `"discriminator"` or None.
        reason: Why, in words, as the printed plan shows it.
        source: What decided: `"given"` (`role=`), `"rank"` or `"size"` (a
            structure rule), `"name"`, `"enclosing"` (the model around it),
            `"combined"` (a model feeding a generator into a discriminator),
            `"conflict"` (name and structure disagree) or `"undecided"`.

    Example:

    >>> from kerasnorm.demo import build_generator
    >>> decision = kerasnorm.plan(build_generator(keras)).roles["generator"]
    >>> print(decision)
    generator (maps latent (32,) to (16, 16, 3))
    >>> decision.source
    'rank'
    """

    role: str | None
    reason: str
    source: str

    def __str__(self) -> str:
        return f"{self.role or 'none'} ({self.reason})"


def check_role(role: str) -> str:
    """Returns `role` if it is `"auto"` or one of `ROLES`, else raises."""
    if role != "auto" and role not in ROLES:
        raise KerasNormValueError(
            f"Unknown role {role!r}. Expected 'auto', 'generator' or 'discriminator'."
        )
    return role


def name_tokens(name: str) -> list[str]:
    """The whole words of a model's name, lower-cased.

    >>> name_tokens("netD"), name_tokens("unet_3d"), name_tokens("pix2pix_2d")
    (['net', 'd'], ['unet', '3d'], ['pix', '2pix', '2d'])
    """
    spaced = _WORD_BREAK.sub(" ", name)
    return [token.lower() for token in re.split(r"[\W_]+", spaced) if token]


def role_from_name(name: str) -> str | None:
    """The role a model's name announces, or None.

    >>> role_from_name("dcgan_generator"), role_from_name("netD"), role_from_name("gan")
    ('generator', 'discriminator', None)
    """
    return _name_evidence(name)[0]


def _name_evidence(name: str) -> tuple[str | None, str]:
    """The role a name announces (or None), and the word saying so (else why not)."""
    tokens = name_tokens(name)
    generator = [t for t in tokens if t in GENERATOR_TOKENS]
    discriminator = [t for t in tokens if t in DISCRIMINATOR_TOKENS]
    if generator and discriminator:
        words = ", ".join(repr(t) for t in (*generator, *discriminator))
        return None, f"its name has words of both roles ({words})"
    if generator:
        return GENERATOR, repr(generator[0])
    if discriminator:
        return DISCRIMINATOR, repr(discriminator[0])
    return None, "no role word in its name"


@dataclasses.dataclass(frozen=True)
class _Structure:
    """What a model's shapes say: a role (or None), why, and which rule."""

    role: str | None
    text: str
    rule: str | None = None


def _is_integer(info: TensorInfo) -> bool:
    return info.dtype.startswith(("int", "uint"))


def _size(info: TensorInfo) -> int | None:
    """Values per example, or None if a dimension is unknown."""
    dims = info.shape[1:]
    return None if None in dims else math.prod(dims)


def _is_sample(info: TensorInfo) -> bool:
    """An image, audio, video or feature sequence; or token ids."""
    if info.is_float:
        return info.rank >= 3
    if _is_integer(info) and info.rank >= 2:
        size = _size(info)
        return size is None or size > 1
    return False


def _shape_text(info: TensorInfo) -> str:
    return str(tuple(info.shape[1:]))


def _input_text(info: TensorInfo) -> str:
    shape = _shape_text(info)
    if info.is_float:
        return shape if info.rank >= 3 else f"latent {shape}"
    if _is_integer(info):
        if not _is_sample(info):
            return f"label {shape}"
        return f"tokens {shape}" if info.rank == 2 else shape
    return f"{'mask' if info.dtype == 'bool' else info.dtype} {shape}"


def _io(ir: ModelIR) -> tuple[list[TensorInfo], list[TensorInfo]]:
    inputs = [ir.nodes[ref.node].outputs[0] for ref in keras.tree.flatten(ir.inputs)]
    outputs = [ir.nodes[ref.node].outputs[ref.index] for ref in ir.output_refs()]
    return inputs, outputs


def _structure(ir: ModelIR, size_rule: bool) -> _Structure:
    """What the rank rules (and the size rule, if `size_rule`) say of `ir`."""
    inputs, outputs = _io(ir)
    samples = [info for info in inputs if _is_sample(info)]
    flow = (
        f"{' + '.join(_input_text(i) for i in inputs) or 'no input'} to "
        f"{' + '.join(_shape_text(o) for o in outputs) or 'no output'}"
    )
    if not inputs or not outputs:
        return _Structure(None, f"maps {flow}, which neither rule decides")
    large = all(o.rank >= 3 for o in outputs)
    if not samples and large and any(i.is_float for i in inputs):
        return _Structure(GENERATOR, f"maps {flow}", "rank")
    if samples and all(o.rank <= 2 for o in outputs):
        return _Structure(DISCRIMINATOR, f"reduces {flow}", "rank")
    if not size_rule:
        return _Structure(None, f"maps {flow}, which no rank rule decides")
    if not (samples and large):
        return _Structure(None, f"maps {flow}, which neither rule decides")
    sizes_in = [_size(i) for i in samples]
    sizes_out = [_size(o) for o in outputs]
    if None in sizes_in or None in sizes_out:
        return _Structure(
            None, f"maps {flow}, which no rank rule decides and whose sizes are unknown"
        )
    if sum(sizes_out) * _SIZE_RATIO <= sum(sizes_in):
        return _Structure(
            DISCRIMINATOR,
            f"reduces {flow}, at most 1/{_SIZE_RATIO} of its input's size",
            "size",
        )
    return _Structure(
        GENERATOR, f"maps {flow}, more than 1/{_SIZE_RATIO} of its input's size", "size"
    )


def _holds_kernels(graph: nx.DiGraph, scope: tuple) -> bool:
    return any(
        data["kernels"]
        for _, data in graph.nodes(data=True)
        if data["scope"][: len(scope)] == scope
    )


def _combined(graph: nx.DiGraph, scope: tuple) -> _Structure | None:
    """Says `scope` is combined if it feeds a generator into a discriminator."""
    ir = graph.graph["scopes"][scope]
    calls = [node for node in ir if node.submodel is not None]
    if len(calls) < 2:
        return None
    sample_shapes = {info.shape[1:] for info in _io(ir)[0] if _is_sample(info)}
    generators, discriminators = [], []
    for node in calls:
        child = (*scope, node.name)
        decision = _decide(graph, child, enclosing=None)
        if decision.role == DISCRIMINATOR:
            discriminators.append(node.name)
        elif (
            decision.role == GENERATOR
            and (
                decision.source in ("rank", "name")
                or any(info.shape[1:] in sample_shapes for info in node.outputs)
            )
            and _holds_kernels(graph, child)
        ):
            generators.append(node.name)
    if not generators or not discriminators:
        return None
    upstream: dict[str, set[str]] = {}
    for node in ir:
        upstream[node.name] = set()
        for ref in node.refs():
            upstream[node.name] |= {ref.node, *upstream[ref.node]}
    for g in generators:
        for d in discriminators:
            if g in upstream[d]:
                return _Structure(
                    None,
                    f"feeds generator {g!r} into discriminator {d!r}: a combined "
                    "model, whose parts are judged on their own",
                    "combined",
                )
    return None


def _decide(
    graph: nx.DiGraph, scope: tuple, enclosing: RoleDecision | None
) -> RoleDecision:
    """The role of the model at `scope`, inside a model decided `enclosing`.

    `enclosing` is None for the top model and for a nested model judged as
    if the model around it had no role.
    """
    ir = graph.graph["scopes"][scope]
    around = enclosing.role if enclosing is not None else None
    structure = _combined(graph, scope) or _structure(ir, size_rule=around is None)
    if structure.rule == "combined":
        return RoleDecision(None, structure.text, "combined")
    named, words = _name_evidence(ir.name)
    if structure.role and named and structure.role != named:
        return RoleDecision(
            None,
            f"its name says {named} ({words}) but its structure says "
            f"{structure.role} ({structure.text})",
            "conflict",
        )
    if structure.role:
        return RoleDecision(structure.role, structure.text, structure.rule)
    if named:
        return RoleDecision(
            named, f"its name says so ({words}); it {structure.text}", "name"
        )
    if around:
        return RoleDecision(
            around, f"like the model around it: it {structure.text}", "enclosing"
        )
    if scope and enclosing is not None:
        words += ", and the model around it has no role"
    return RoleDecision(None, f"{structure.text}; {words}", "undecided")


def assign(graph: nx.DiGraph, role: str = "auto") -> dict[tuple, str | None]:
    """Decides the role of every scope of `graph` and sets each node's `role`.

    Also sets `graph.graph["role_decisions"]`: scope -> `RoleDecision`, in
    the order of `graph.graph["scopes"]`.

    Args:
        graph: A graph from `kerasnorm.to_graph`, before roles are set.
        role: `"auto"` to decide each scope as the module docstring says,
            or `"generator"` / `"discriminator"` for every scope.

    Returns:
        Map from scope (path of nested-model calls) to its role.

    Raises:
        KerasNormValueError: If `role` is not one of the three.
    """
    check_role(role)
    decisions: dict[tuple, RoleDecision] = {}
    for scope in sorted(graph.graph["scopes"], key=len):
        if role != "auto":
            decisions[scope] = RoleDecision(role, f"role={role!r} was given", "given")
        else:
            enclosing = decisions[scope[:-1]] if scope else None
            decisions[scope] = _decide(graph, scope, enclosing)
    graph.graph["role_decisions"] = {
        scope: decisions[scope] for scope in graph.graph["scopes"]
    }
    roles = {scope: decision.role for scope, decision in decisions.items()}
    for _, data in graph.nodes(data=True):
        data["role"] = roles[data["scope"]]
    return roles


def region_root(roles: dict[tuple, str | None], scope: tuple) -> tuple:
    """The outermost scope around `scope` whose role is the role of `scope`."""
    root = scope
    while root and roles.get(root[:-1]) == roles[scope]:
        root = root[:-1]
    return root


def mark_regions(graph: nx.DiGraph) -> None:
    """Sets `reaches_output` and `region_input` on every node.

    `region_input` marks the inputs of the outermost model of a role (a
    generator's latent, not the input of a block nested in it);
    `reaches_output` is described in the module docstring.
    """
    roles = graph.graph["roles"]
    by_region: dict[tuple, list[str]] = {}
    for node, data in graph.nodes(data=True):
        by_region.setdefault(region_root(roles, data["scope"]), []).append(node)
    for root, members in by_region.items():
        targets = [n for n in members if root in graph.nodes[n].get("outputs_of", ())]
        reached = set(targets)
        frontier = [n for n in targets if not graph.nodes[n]["kernels"]]
        while frontier:
            node = frontier.pop()
            for parent in graph.predecessors(node):
                if parent in reached:
                    continue
                reached.add(parent)
                if not graph.nodes[parent]["kernels"]:
                    frontier.append(parent)
        for node in members:
            data = graph.nodes[node]
            data["reaches_output"] = node in reached
            data["region_input"] = data["is_input"] and data["scope"] == root
