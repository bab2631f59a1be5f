"""The `ModelIR` edit verbs, on graphs of plain objects (no Keras).

The verbs index each output's readers instead of scanning every node; the
reference below is the scan they replaced, kept as the specification.
"""

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kerasnorm import ir as ir_module
from kerasnorm.ir import ModelIR, Node, NodeTable, Ref, map_refs


def _graph(n_inputs, calls, outputs) -> ModelIR:
    """`calls`: (name, n_outputs, args) in order; `outputs`: a structure of Ref."""
    nodes = {
        f"in{i}": Node(f"in{i}", None, outputs=(None,), is_input=True)
        for i in range(n_inputs)
    }
    for name, n_outputs, args in calls:
        # Half the nodes hold their refs in a nested keyword, as a Keras 3
        # op with a list argument does.
        kwargs = {"more": [args[1:]]} if len(args) > 1 and len(name) % 2 else {}
        positional = args[:1] if kwargs else args
        nodes[name] = Node(name, None, positional, kwargs, outputs=(None,) * n_outputs)
    return ModelIR(None, "m", False, nodes, [Ref("in0")], outputs)


def _reference_insert_after(names, nodes, outputs, ref, node):
    """The verb as it was: rewrite every node but `node`, rebuild the order."""
    new = Ref(node.name, 0)

    def swap(r):
        return new if r == ref else r

    for other in nodes.values():
        other.args, other.kwargs = map_refs((other.args, other.kwargs), swap)
    nodes[node.name] = node
    return _reference_place(names, nodes, node.name, ref.node), map_refs(outputs, swap)


def _reference_insert_before(names, nodes, consumer, ref, node):
    new = Ref(node.name, 0)
    target = nodes[consumer]
    target.args, target.kwargs = map_refs(
        (target.args, target.kwargs), lambda r: new if r == ref else r
    )
    nodes[node.name] = node
    return _reference_place(names, nodes, node.name, ref.node)


def _reference_place(names, nodes, name, after):
    position = names.index(after) + 1
    while position < len(names) and nodes[names[position]].is_input:
        position += 1
    return [*names[:position], name, *names[position:]]


@st.composite
def _edited_graphs(draw):
    n_inputs = draw(st.integers(1, 3))
    refs = [Ref(f"in{i}") for i in range(n_inputs)]
    calls = []
    for index in range(draw(st.integers(1, 10))):
        name = f"c{index}" + "x" * draw(st.integers(0, 1))
        args = tuple(draw(st.lists(st.sampled_from(refs), min_size=1, max_size=3)))
        n_outputs = draw(st.integers(1, 2))
        calls.append((name, n_outputs, args))
        refs += [Ref(name, i) for i in range(n_outputs)]
    outputs = draw(st.lists(st.sampled_from(refs), min_size=1, max_size=3))
    edits = []
    for index in range(draw(st.integers(1, 8))):
        # Inserted nodes' outputs may be edited around too.
        ref = draw(st.sampled_from(refs))
        new = f"new{index}"
        if draw(st.booleans()):
            edits.append(("after", ref, new, None))
        else:
            edits.append(("before", ref, new, draw(st.sampled_from(calls))[0]))
        refs.append(Ref(new, 0))
    return n_inputs, calls, outputs, edits


@settings(max_examples=300, deadline=None)
@given(_edited_graphs())
def test_verbs_do_what_rewriting_every_node_did(case):
    n_inputs, calls, outputs, edits = case
    edited = _graph(n_inputs, calls, outputs)
    reference = _graph(n_inputs, calls, outputs)
    names, nodes, ref_outputs = list(reference.nodes), dict(reference.nodes), outputs
    for verb, ref, new, consumer in edits:
        node, twin = (Node(new, None, (ref,), outputs=(None,)) for _ in range(2))
        if verb == "after":
            edited.insert_after(ref, node)
            names, ref_outputs = _reference_insert_after(
                names, nodes, ref_outputs, ref, twin
            )
        else:
            edited.insert_before(consumer, ref, node)
            names = _reference_insert_before(names, nodes, consumer, ref, twin)
    assert list(edited.nodes) == names
    assert [(n.args, n.kwargs) for n in edited] == [
        (nodes[name].args, nodes[name].kwargs) for name in names
    ]
    assert edited.outputs == ref_outputs
    # The readers index kept up by the edits is the one a copy builds afresh.
    rebuilt = dataclasses.replace(edited)._users_index()
    assert {ref: set(users) for ref, users in edited._users.items() if users} == {
        ref: set(users) for ref, users in rebuilt.items()
    }


def _chain(length: int) -> ModelIR:
    calls = [
        (f"c{i}", 1, (Ref(f"c{i - 1}") if i else Ref("in0"),)) for i in range(length)
    ]
    return _graph(1, calls, [Ref(f"c{length - 1}")])


def test_each_insertion_rewrites_only_the_readers(monkeypatch):
    calls = []
    monkeypatch.setattr(
        ir_module, "map_refs", lambda s, f: calls.append(1) or map_refs(s, f)
    )
    graph = _chain(300)
    for i in range(300):
        graph.insert_after(Ref(f"c{i}"), Node(f"p{i}", None, (Ref(f"c{i}"),)))
    # One reader per output: the next call, or for the last one the outputs.
    assert len(calls) == 300
    assert graph.outputs == [Ref("p299")]
    assert graph.nodes["c150"].args == (Ref("p149"),)
    assert list(graph.nodes)[:5] == ["in0", "c0", "p0", "c1", "p1"]


def test_insert_after_an_input_keeps_the_inputs_first():
    graph = _graph(3, [("c", 1, (Ref("in0"), Ref("in2")))], [Ref("c")])
    graph.insert_after(Ref("in0"), Node("p", None, (Ref("in0"),)))
    assert list(graph.nodes) == ["in0", "in1", "in2", "p", "c"]
    assert graph.nodes["c"].refs() == [Ref("p"), Ref("in2")]


def test_failed_insertions_change_nothing():
    graph = _chain(3)
    before = [(name, node.args) for name, node in graph.nodes.items()]
    with pytest.raises(KeyError):
        graph.insert_after(Ref("missing"), Node("p", None, (Ref("missing"),)))
    with pytest.raises(KeyError):
        graph.insert_before("missing", Ref("c0"), Node("p", None, (Ref("c0"),)))
    with pytest.raises(ValueError, match="already a node named 'c2'"):
        graph.insert_after(Ref("c0"), Node("c2", None, (Ref("c0"),)))
    assert [(name, node.args) for name, node in graph.nodes.items()] == before
    assert graph.outputs == [Ref("c2")]


def test_a_copy_indexes_its_own_nodes():
    graph = _chain(2)
    graph.insert_after(Ref("c0"), Node("p", None, (Ref("c0"),)))
    copy = dataclasses.replace(
        graph, nodes={name: dataclasses.replace(n) for name, n in graph.nodes.items()}
    )
    copy.insert_after(Ref("p"), Node("q", None, (Ref("p"),)))
    assert copy.nodes["c1"].args == (Ref("q"),)
    assert graph.nodes["c1"].args == (Ref("p"),)
    assert list(graph.nodes) == ["in0", "c0", "p", "c1"]


def test_node_table_is_an_ordered_mapping():
    table = NodeTable({"a": Node("a", None), "c": Node("c", None)})
    table.insert_after("a", Node("b", None))
    table["d"] = Node("d", None)
    table["a"] = Node("a", "replaced")
    assert list(table) == ["a", "b", "c", "d"] and len(table) == 4
    assert table["a"].op == "replaced"
    assert table.following("b") == "c" and table.following("d") is None
    del table["b"]
    del table["d"]
    table.insert_after("c", Node("e", None))
    assert list(table.items()) == [
        ("a", table["a"]),
        ("c", table["c"]),
        ("e", table["e"]),
    ]
    assert "b" not in table
    assert table == {"a": table["a"], "c": table["c"], "e": table["e"]}
