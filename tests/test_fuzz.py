"""Property-based tests of the rewriter on random functional models.

hypothesis draws model recipes (see `fuzz_models`); each is built and
rewritten on both Kerases, and for each:

- the rewrite does not crash, in either SN mode and with the ProGAN policy;
- SN in constraint mode leaves the outputs bitwise identical, and puts a
  SpectralNorm on every kernel; in reparam mode it wraps every kernel layer;
- the graph without the inserted layers is isomorphic to the original;
- PixelNorm follows exactly the calls the ProGAN rule names, as worked out
  from the recipe itself (not from kerasnorm's graph attributes);
- the input model is unchanged.

The default run draws `FUZZ_EXAMPLES` recipes; the slow run draws more.
"""

from __future__ import annotations

import collections
import re

import fuzz_models
import networkx as nx
import numpy as np
import pytest
from helpers import is_kernel, snapshot
from hypothesis import HealthCheck, assume, given, settings

import kerasnorm
from kerasnorm.adapters import ADAPTERS

FUZZ_EXAMPLES = 50
SLOW_FUZZ_EXAMPLES = 1000
KERNEL_STEPS = {"dense", "conv", "shared", "to_image", "block"}
_OUR_NAME = re.compile(r"(s\d+_|input_\d+$)")


def expected_pixel_norms(recipe: fuzz_models.Recipe) -> collections.Counter:
    """Names of the calls a PixelNorm must follow, with multiplicity.

    The ProGAN rule on a model that is all generator: every rank-2 input, and
    every call with a non-linearity from which no model output is reached
    without passing a kernel layer.
    """
    n_inputs = len(recipe.inputs)
    # Calls the outputs do not need are not in the model at all.
    live = [False] * len(recipe.kinds)
    reaches = [False] * len(recipe.kinds)
    for tensor in recipe.outputs:
        live[tensor] = reaches[tensor] = True
    for index in reversed(range(len(recipe.steps))):
        step = recipe.steps[index]
        for source in fuzz_models.sources(step):
            live[source] |= live[n_inputs + index]
            reaches[source] |= reaches[n_inputs + index] and step[0] not in KERNEL_STEPS
    expected = collections.Counter(
        f"input_{i}" for i, (kind, _) in enumerate(recipe.inputs) if kind == "vector"
    )
    for index in range(len(recipe.steps)):
        if not live[n_inputs + index]:
            continue
        for name, feeds_kernel in _activation_calls(recipe, index):
            if feeds_kernel or not reaches[n_inputs + index]:
                expected[name] += 1
    return expected


def _activation_calls(recipe, index: int) -> list[tuple[str, bool]]:
    """(layer name, output feeds only a kernel) of each non-linear call."""
    step = recipe.steps[index]
    kind = step[0]
    if kind == "dense" and step[3]:
        return [(f"s{index}_dense", False)]
    if kind == "conv" and step[4]:
        return [(f"s{index}_{step[2]}", False)]
    if kind == "activation":
        return [(f"s{index}_act", False)]
    if kind == "shared":
        return _activation_calls(recipe, step[2])
    if kind == "block":
        _, source, _, _, activation, twice = step
        inner = "dense" if recipe.kinds[source] == "vector" else "conv"
        names = [f"s{index}_block_{inner}"] if activation else []
        names.append(f"s{index}_block_act")
        # The first of two calls feeds the second call's kernel, so is
        # selected; an insertion goes into the nested model, so into both.
        return [(name, twice) for name in names] * (2 if twice else 1)
    return []


def _without_pixel_norms(graph: nx.DiGraph, adapter) -> nx.DiGraph:
    """`graph` with every PixelNorm node bypassed (its inputs joined to its
    consumers)."""
    graph = graph.copy()
    for node in [n for n, d in graph.nodes(data=True) if _is_pixel_norm(d, adapter)]:
        for source in graph.predecessors(node):
            for target in graph.successors(node):
                graph.add_edge(source, target)
        graph.remove_node(node)
    return graph


def _is_pixel_norm(data, adapter) -> bool:
    return isinstance(data["op"], adapter.PixelNorm)


def _same_call(a: dict, b: dict) -> bool:
    # Inner inputs and Keras 3 ops get generated names, which may differ.
    named = _OUR_NAME.match(a["layer_name"]) or _OUR_NAME.match(b["layer_name"])
    return a["class_name"] == b["class_name"] and (
        not named or a["layer_name"] == b["layer_name"]
    )


def _assert_isomorphic(original: nx.DiGraph, rewritten: nx.DiGraph) -> None:
    assert nx.is_isomorphic(original, rewritten, node_match=_same_call)


def _outputs(model, x) -> list[np.ndarray]:
    result = model(x, training=False)
    return [np.asarray(y) for y in (result if isinstance(result, list) else [result])]


def _check(adapter, recipe: fuzz_models.Recipe) -> None:
    try:
        model = fuzz_models.build(adapter.keras, recipe)
    except ValueError as error:
        # Keras before 3.14 cannot build a model that returns an input as it is.
        assume("not connected to `outputs`" not in str(error))
        raise
    before = snapshot(model)
    x = fuzz_models.sample_input(model)
    expected = _outputs(model, x)
    graph = kerasnorm.to_graph(model)

    constrained = kerasnorm.apply_normalization(
        model, "sngan", role="discriminator", mode="constraint"
    )
    for got, want in zip(_outputs(constrained, x), expected, strict=True):
        np.testing.assert_array_equal(got, want)
    constrained_graph = kerasnorm.to_graph(constrained)
    _assert_isomorphic(graph, constrained_graph)
    for _, data in constrained_graph.nodes(data=True):
        if data["is_input"] or not hasattr(data["op"], "weights"):
            continue
        for weight in data["op"].weights:
            if is_kernel(weight):
                assert isinstance(weight.constraint, adapter.SpectralNorm), weight.name

    wrapped = kerasnorm.apply_normalization(
        model, "sngan", role="discriminator", mode="reparam"
    )
    wrapped_graph = kerasnorm.to_graph(wrapped)
    _assert_isomorphic(graph, wrapped_graph)
    for _, data in wrapped_graph.nodes(data=True):
        has_kernel = any(is_kernel(w) for w in getattr(data["op"], "weights", []))
        is_wrapped = data["wrapped"] == "SpectralNormalization"
        assert is_wrapped == has_kernel, data["layer_name"]
    for got, want in zip(_outputs(wrapped, x), expected, strict=True):
        assert got.shape == want.shape and np.isfinite(got).all()

    normalized = kerasnorm.apply_normalization(model, "progan", role="generator")
    normalized_graph = kerasnorm.to_graph(normalized)
    followed = collections.Counter(
        normalized_graph.nodes[source]["layer_name"]
        for node, data in normalized_graph.nodes(data=True)
        if _is_pixel_norm(data, adapter)
        for source in normalized_graph.predecessors(node)
    )
    assert followed == expected_pixel_norms(recipe)
    _assert_isomorphic(graph, _without_pixel_norms(normalized_graph, adapter))
    for got, want in zip(_outputs(normalized, x), expected, strict=True):
        assert got.shape == want.shape and np.isfinite(got).all()

    assert snapshot(model) == before
    for got, want in zip(_outputs(model, x), expected, strict=True):
        np.testing.assert_array_equal(got, want)


def _fuzz(examples: int):
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(recipe=fuzz_models.recipes())
    def run(recipe):
        for adapter in ADAPTERS:
            _check(adapter, recipe)

    return run


def test_random_models_rewrite_correctly():
    _fuzz(FUZZ_EXAMPLES)()


@pytest.mark.slow
def test_many_random_models_rewrite_correctly():
    _fuzz(SLOW_FUZZ_EXAMPLES)()
