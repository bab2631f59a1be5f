"""Roles: which parts of a model are a generator and which a discriminator.

`role="auto"` decides each model, and each nested model, on its own:

1. By name: a model whose name has a token (split at `_`, `-`, digits and
   case changes) in `GENERATOR_TOKENS` is a generator, in
   `DISCRIMINATOR_TOKENS` a discriminator.
2. Else by structure: a model whose floating-point inputs all have rank 2
   (latent vectors; integer label inputs allowed) and whose outputs all
   have rank 3 or more (images, sequences) is a generator; a model with a
   floating-point input of rank 3 or more and outputs of rank 2 or less
   (scores, logits) is a discriminator.
3. Else a nested model takes the role of the model it is nested in, and
   the top model has no role.

So `Model(z, D(G(z)))` gets each part normalized by its own role, and
blocks nested in a discriminator are discriminator blocks. An explicit
`role="generator"` or `"discriminator"` covers the whole model instead.

The role region of a node is the outermost model around it that has the
node's role. "Reaches an output" (the ProGAN rule's exception) means: an
output of that region is reached from the node without passing another
kernel layer. For a generator nested in a GAN, the region is the
generator, so its final `tanh` is recognised even though a discriminator
follows it.
"""

from __future__ import annotations

import re

import networkx as nx
import tensorflow as tf

from kerasnorm.errors import KerasNormValueError

GENERATOR = "generator"
DISCRIMINATOR = "discriminator"
ROLES = (GENERATOR, DISCRIMINATOR)

GENERATOR_TOKENS = frozenset({"generator", "gen", "g", "decoder"})
DISCRIMINATOR_TOKENS = frozenset({"discriminator", "disc", "d", "critic"})


def check_role(role: str) -> str:
    """Returns `role` if it is `"auto"` or one of `ROLES`, else raises."""
    if role != "auto" and role not in ROLES:
        raise KerasNormValueError(
            f"Unknown role {role!r}. Expected 'auto', 'generator' or 'discriminator'."
        )
    return role


def role_from_name(name: str) -> str | None:
    """The role a model's name announces, or None.

    >>> role_from_name("dcgan_generator"), role_from_name("netD"), role_from_name("gan")
    ('generator', 'discriminator', None)
    """
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", name)
    tokens = {token.lower() for token in re.split(r"[\W_\d]+|\s", spaced) if token}
    if tokens & GENERATOR_TOKENS and not tokens & DISCRIMINATOR_TOKENS:
        return GENERATOR
    if tokens & DISCRIMINATOR_TOKENS and not tokens & GENERATOR_TOKENS:
        return DISCRIMINATOR
    return None


def role_from_structure(ir) -> str | None:
    """The role the shapes of a model's inputs and outputs suggest, or None."""
    inputs = [ir.nodes[ref.node].outputs[0] for ref in tf.nest.flatten(ir.inputs)]
    outputs = [ir.nodes[ref.node].outputs[ref.index] for ref in ir.output_refs()]
    float_inputs = [info for info in inputs if info.is_float]
    if not float_inputs or not outputs:
        return None
    if all(i.rank == 2 for i in float_inputs) and all(o.rank >= 3 for o in outputs):
        return GENERATOR
    if any(i.rank >= 3 for i in float_inputs) and all(o.rank <= 2 for o in outputs):
        return DISCRIMINATOR
    return None


def assign(graph: nx.DiGraph, role: str = "auto") -> dict[tuple, str | None]:
    """Decides the role of every scope of `graph` and sets each node's `role`.

    Returns:
        Map from scope (path of nested-model calls) to its role.
    """
    check_role(role)
    roles: dict[tuple, str | None] = {}
    for scope in sorted(graph.graph["scopes"], key=len):
        if role != "auto":
            roles[scope] = role
            continue
        ir = graph.graph["scopes"][scope]
        decided = role_from_name(ir.name) or role_from_structure(ir)
        roles[scope] = decided if decided else roles.get(scope[:-1])
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
