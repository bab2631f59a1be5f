"""The plan's record of its changes, its graph and DOT text, and the pictures."""

import ast
import functools
import pathlib
import sys
import xml.etree.ElementTree as ET

import keras
import networkx as nx
import numpy as np
import pytest
import tensorflow as tf

import kerasnorm
from kerasnorm import pictures, select
from kerasnorm.demo import build_discriminator, build_generator
from kerasnorm.errors import KerasNormValueError
from kerasnorm.rewrite import rewrite

PACKAGE = pathlib.Path(kerasnorm.__file__).parent
PIPELINE = (
    "ir",
    "graph",
    "select",
    "rules",
    "actions",
    "plan",
    "rewrite",
    "roles",
    "policies",
    "api",
)
INSERTED = ["z_pixel_norm", "fc_act_pixel_norm", "act1_pixel_norm", "act2_pixel_norm"]


def _noise_before_add(keras_module):
    """A critic whose Add gets a GaussianNoise on each of its two inputs."""
    image = keras_module.Input((8, 8, 3), name="image")
    left = keras_module.layers.Conv2D(4, 3, padding="same", name="left")(image)
    right = keras_module.layers.Conv2D(4, 1, name="right")(image)
    merged = keras_module.layers.Add(name="add")([left, right])
    rule = kerasnorm.Rule(
        select.name("add"),
        kerasnorm.InsertBefore(
            functools.partial(keras_module.layers.GaussianNoise, 0.1), "noise"
        ),
        name="noise",
    )
    return keras_module.Model(image, merged, name="critic"), rule


def _block_called_twice(keras_module):
    block_input = keras_module.Input((8,), name="block_input")
    hidden = keras_module.layers.Dense(8, activation="relu", name="dense")(block_input)
    block = keras_module.Model(block_input, hidden, name="block")
    z = keras_module.Input((8,), name="z")
    return keras_module.Model(z, block(block(z)), name="generator")


def test_the_record_of_insertions(adapter):
    plan = kerasnorm.plan(build_generator(adapter.keras), "progan")
    top = plan.graph.graph["ir"]
    assert [edit.inserted for edit in plan.changes] == INSERTED
    assert [edit.call for edit in plan.changes] == [
        top.call_key(name) for name in ("z", "fc_act", "act1", "act2")
    ]
    assert {edit.kind for edit in plan.changes} == {"inserted"}
    assert plan.changes[0].reason == (
        "insert PixelNorm(axis=-1) after (rule 'progan: latent')"
    )
    assert plan.changes[1].reason == (
        "insert PixelNorm(axis=-1) after (rule 'progan: activation')"
    )
    # The rewrite names the layers as the record says.
    model = rewrite(plan)
    pixel_norms = [
        layer.name for layer in model.layers if isinstance(layer, adapter.PixelNorm)
    ]
    assert pixel_norms == INSERTED


def test_the_record_of_layer_changes(adapter):
    plan = kerasnorm.plan(build_discriminator(adapter.keras), "sngan")
    assert [(edit.node, edit.kind, edit.inserted) for edit in plan.changes] == [
        ("conv1", "changed", None),
        ("conv2", "changed", None),
        ("score", "changed", None),
    ]
    assert plan.changes[2].reason == (
        "SpectralNorm on kernel (rule 'sngan: discriminator kernels')"
    )
    assert plan.changes[0].call == plan.graph.nodes["conv1"]["call"]


def test_a_nested_model_called_twice_has_one_call_key_and_two_insertions(adapter):
    plan = kerasnorm.plan(_block_called_twice(adapter.keras), "progan")
    nodes = plan.graph.nodes
    assert nodes["block/dense"]["call"] == nodes["block#1/dense"]["call"]
    assert nodes["block/dense"]["call"] != nodes["z"]["call"]
    (dense,) = [edit for edit in plan.changes if edit.layer == "dense"]
    assert (dense.call, dense.inserted) == (
        nodes["block/dense"]["call"],
        "dense_pixel_norm",
    )
    graph = plan.to_networkx()
    inserted = {
        n: d["label"] for n, d in graph.nodes(data=True) if d["kind"] == "inserted"
    }
    assert inserted == {
        "z_pixel_norm": "z_pixel_norm",
        "block/dense_pixel_norm": "block/dense_pixel_norm",
        "block#1/dense_pixel_norm": "block#1/dense_pixel_norm",
    }
    assert list(graph.successors("block/dense_pixel_norm")) == ["block#1/block_input"]


def test_insert_before_puts_one_layer_on_each_input(adapter):
    model, rule = _noise_before_add(adapter.keras)
    plan = kerasnorm.plan(model, rules=[rule])
    (edit,) = plan.changes
    assert (edit.inserted, edit.reason) == (
        "add_noise",
        "insert noise before (rule 'noise')",
    )
    graph = plan.to_networkx()
    assert sorted(graph.predecessors("add")) == ["add_noise", "add_noise#1"]
    assert {next(graph.predecessors(n)) for n in ("add_noise", "add_noise#1")} == {
        "left",
        "right",
    }
    assert graph.nodes["add_noise#1"]["label"] == "add_noise"
    rebuilt = rewrite(plan)
    names = [layer.name for layer in rebuilt.layers]
    assert {"add_noise", "add_noise_1"} <= set(names)


@pytest.mark.parametrize("mode", ["constraint", "reparam"])
def test_to_networkx_kinds_labels_and_reasons(mode):
    plan = kerasnorm.plan(build_discriminator(keras), "sngan", mode=mode)
    graph = plan.to_networkx()
    assert list(graph.nodes) == list(plan.graph.nodes)
    assert list(graph.edges) == list(plan.graph.edges)
    kinds = dict(graph.nodes(data="kind"))
    assert sorted(n for n, k in kinds.items() if k == "changed") == [
        "conv1",
        "conv2",
        "score",
    ]
    assert set(kinds.values()) == {"changed", "unchanged"}
    conv1 = graph.nodes["conv1"]
    assert conv1["label"] == "conv1 (Conv2D)"
    assert conv1["edit"] is plan.changes[0]
    detail = "SpectralNorm on kernel" if mode == "constraint" else "wrap in"
    assert conv1["reason"].startswith(detail)
    assert graph.nodes["act1"]["reason"] == ""
    assert graph.nodes["act1"]["edit"] is None
    assert graph.graph["title"] == (
        f"Plan for model 'discriminator' (mode={mode!r}): 3 changes"
    )


def test_to_networkx_splices_the_inserted_layers_in():
    plan = kerasnorm.plan(build_generator(keras), "progan")
    graph = plan.to_networkx()
    assert len(graph) == len(plan.graph) + 4
    assert sorted(n for n, k in graph.nodes(data="kind") if k == "inserted") == sorted(
        INSERTED
    )
    assert list(graph.successors("act1")) == ["act1_pixel_norm"]
    assert list(graph.successors("act1_pixel_norm")) == ["up2"]
    assert not graph.has_edge("act1", "up2")
    assert list(nx.topological_sort(graph))[:3] == ["z", "z_pixel_norm", "fc"]


def test_to_dot_parses_with_the_nodes_and_edges_of_the_graph():
    pydot = pytest.importorskip("pydot")
    model, rule = _noise_before_add(keras)
    plan = kerasnorm.plan(model, rules=[rule])
    graph = plan.to_networkx()
    (dot,) = pydot.graph_from_dot_data(plan.to_dot())
    # Every node id is quoted; the unquoted `node` holds the defaults.
    nodes = {
        n.get_name().strip('"'): n for n in dot.get_nodes() if n.get_name() != "node"
    }
    assert set(nodes) == set(graph.nodes)
    edges = {
        (e.get_source().strip('"'), e.get_destination().strip('"'))
        for e in dot.get_edges()
    }
    assert edges == set(graph.edges)
    assert {n: node.get("class") for n, node in nodes.items()} == dict(
        graph.nodes(data="kind")
    )
    assert nodes["add_noise#1"].get("label") == (
        "\"add_noise\\ninsert noise before (rule 'noise')\""
    )
    assert (
        dot.get_label() == "\"Plan for model 'critic' (mode='constraint'): 1 changes\""
    )


def _imread(path) -> np.ndarray:
    return pytest.importorskip("matplotlib.image").imread(path)


def _force_matplotlib(monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(pictures, "_graphviz_available", lambda: False)


def _rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)]) / 255


def _has_colour(image: np.ndarray, colour: str) -> bool:
    return bool(np.any(np.all(np.abs(image[..., :3] - _rgb(colour)) < 1e-3, axis=-1)))


def test_plot_plan_with_matplotlib_writes_png(tmp_path, monkeypatch):
    _force_matplotlib(monkeypatch)
    plan = kerasnorm.plan(build_generator(keras), "progan")
    path = kerasnorm.plot_plan(plan, tmp_path / "generator.png")
    assert path == tmp_path / "generator.png"
    image = _imread(path)
    # Fifteen rows of boxes, one column.
    assert image.shape[0] > image.shape[1] > 300 and image.shape[2] in (3, 4)
    assert _has_colour(image, pictures.BOX_STYLES["inserted"][0])
    assert _has_colour(image, pictures.BOX_STYLES["unchanged"][0])
    discriminator = kerasnorm.plan(build_discriminator(keras), "sngan")
    image = _imread(kerasnorm.plot_plan(discriminator, path))
    assert _has_colour(image, pictures.BOX_STYLES["changed"][0])
    assert not _has_colour(
        image[image.shape[0] // 5 :], pictures.BOX_STYLES["inserted"][0]
    )


def _svg(path) -> tuple[ET.Element, list[str]]:
    """The root of an SVG file and its comments (matplotlib's text)."""
    parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True))
    root = ET.parse(path, parser).getroot()
    comments = [e.text.strip() for e in root.iter() if e.tag is ET.Comment]
    return root, comments


def test_plot_plan_with_matplotlib_writes_svg_and_pdf(tmp_path, monkeypatch):
    _force_matplotlib(monkeypatch)
    plan = kerasnorm.plan(build_discriminator(keras), "sngan")
    root, comments = _svg(kerasnorm.plot_plan(plan, tmp_path / "d.svg"))
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    paths = list(root.iter("{http://www.w3.org/2000/svg}path"))
    assert len(paths) > 2 * len(plan.graph)  # a box and an arrow each, and text
    graph = plan.to_networkx()
    for node, data in graph.nodes(data=True):
        assert any(data["label"] in comment for comment in comments), node
    pdf = kerasnorm.plot_plan(plan, tmp_path / "d.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 5000


def test_plot_plan_uses_graphviz_when_it_is_there(tmp_path, monkeypatch):
    pydot = pytest.importorskip("pydot")
    written = []

    def write(self, path, format="raw", **_):
        written.append((path, format, self.to_string()))
        pathlib.Path(path).write_text(self.to_string())

    monkeypatch.setattr(pictures, "_graphviz_available", lambda: True)
    monkeypatch.setattr(pydot.Dot, "write", write)
    plan = kerasnorm.plan(build_discriminator(keras), "sngan")
    kerasnorm.plot_plan(plan, tmp_path / "d.svg")
    ((path, format, text),) = written
    assert (path, format) == (str(tmp_path / "d.svg"), "svg")
    (dot,) = pydot.graph_from_dot_data(text)
    fills = {n.get_name().strip('"'): n.get("fillcolor") for n in dot.get_nodes()}
    changed, unchanged = (
        f'"{pictures.BOX_STYLES[k][0]}"' for k in ("changed", "unchanged")
    )
    assert fills["conv1"] == fills["score"] == changed
    assert fills["act1"] == unchanged


def test_graphviz_needs_pydot_and_the_dot_program(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert pictures._graphviz_available() is False
    dot = tmp_path / "dot"
    dot.write_text("#!/bin/sh\necho 'dot - graphviz version 0'\n")
    dot.chmod(0o755)
    pytest.importorskip("pydot")
    assert pictures._graphviz_available() is True
    monkeypatch.setitem(sys.modules, "pydot", None)
    assert pictures._graphviz_available() is False


@pytest.mark.skipif(
    not pictures._graphviz_available(), reason="Graphviz's dot is not installed"
)
@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_plot_plan_with_graphviz(tmp_path, suffix):
    plan = kerasnorm.plan(build_generator(keras), "progan")
    path = kerasnorm.plot_plan(plan, tmp_path / f"generator{suffix}")
    if suffix == ".png":
        image = _imread(path)
        assert image.shape[0] > 200
        assert _has_colour(image, pictures.BOX_STYLES["inserted"][0])
    else:
        root, _ = _svg(path)
        texts = "".join(root.itertext())
        assert all(name in texts for name in INSERTED)


def test_plot_plan_refuses_other_formats(tmp_path):
    plan = kerasnorm.plan(build_discriminator(keras), "sngan")
    with pytest.raises(KerasNormValueError, match=r"'\.png', '\.svg' or '\.pdf'"):
        kerasnorm.plot_plan(plan, tmp_path / "d.jpg")
    assert not (tmp_path / "d.jpg").exists()


def test_pictures_without_matplotlib(tmp_path, monkeypatch):
    _force_matplotlib(monkeypatch)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    plan = kerasnorm.plan(build_discriminator(keras), "sngan")
    needs = (
        r'needs matplotlib, which is not installed: pip install "kerasnorm\[pictures\]"'
    )
    with pytest.raises(kerasnorm.MissingDependencyError, match=needs):
        kerasnorm.plot_plan(plan, tmp_path / "d.png")
    with pytest.raises(kerasnorm.MissingDependencyError, match=needs):
        pictures.plot_lines(tmp_path / "sigma.png", {"a": [1.0]})
    assert list(tmp_path.iterdir()) == []


def test_the_pipeline_does_not_import_the_pictures():
    for name in PIPELINE:
        tree = ast.parse((PACKAGE / f"{name}.py").read_text())
        imported = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {
            f"{node.module}.{alias.name}"
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
        }
        assert not {i for i in imported if "pictures" in i or "plotting" in i}, name
    assert not (PACKAGE / "plotting.py").exists()


def test_line_chart(tmp_path):
    pytest.importorskip("matplotlib")
    series = {"conv1": [1.5, 1.0, 1.0, 1.0], "score": [0.5, np.nan, 1.0, 1.0]}
    path = pictures.plot_lines(
        tmp_path / "sigma.png", series, title="sigma", x_label="step", y_label="s"
    )
    image = _imread(path)
    assert image.shape == (450, 800, 4)
    tab10 = ("#1f77b4", "#ff7f0e")
    assert all(_has_colour(image, colour) for colour in tab10)
    root, comments = _svg(
        pictures.plot_lines(tmp_path / "sigma.svg", series, x=[2, 4, 6, 8])
    )
    strokes = "".join(e.get("style", "") for e in root.iter())
    assert all(f"stroke: {colour}" in strokes for colour in tab10)
    # The legend, and the y axis down to 0.
    assert {"conv1", "score", "0.0", "8"} <= set(comments)


def test_line_chart_errors(tmp_path):
    with pytest.raises(KerasNormValueError, match=r"plot_lines writes PNG, SVG or PDF"):
        pictures.plot_lines(tmp_path / "sigma.jpg", {"a": [1.0]})
    with pytest.raises(KerasNormValueError, match="at least one series"):
        pictures.plot_lines(tmp_path / "sigma.svg", {})
    with pytest.raises(KerasNormValueError, match="2 values for 3 x values"):
        pictures.plot_lines(tmp_path / "sigma.svg", {"a": [1.0, 2.0]}, x=[1, 2, 3])


def test_image_grid(tmp_path):
    images = np.full((5, 2, 3, 3), -1.0)
    images[1] = 1.0
    path = pictures.save_image_grid(tmp_path / "grid.png", images, columns=3, scale=2)
    grid = tf.io.decode_png(path.read_bytes()).numpy()
    gap = 2
    assert grid.shape == (2 * (4 + gap) + gap, 3 * (6 + gap) + gap, 3)
    first = grid[gap : gap + 4, gap : gap + 6]
    second = grid[gap : gap + 4, 2 * gap + 6 : 2 * gap + 12]
    assert (first == 0).all() and (second == 255).all()
    # The sixth slot is empty: background.
    assert (grid[-4 - gap : -gap, -6 - gap : -gap] == 255).all()


def test_image_grid_errors(tmp_path):
    with pytest.raises(KerasNormValueError, match=r"end in '\.png'"):
        pictures.save_image_grid(tmp_path / "grid.jpg", np.zeros((1, 2, 2, 3)))
    with pytest.raises(KerasNormValueError, match="shape"):
        pictures.save_image_grid(tmp_path / "grid.png", np.zeros((2, 2, 3)))


def test_line_panels_share_colours_and_one_legend(tmp_path):
    pytest.importorskip("matplotlib")
    panels = {
        "without": {"conv1": [1.2, 1.4, 1.6], "score": [0.9, 0.8, 0.7]},
        "with": {"conv1": [1.0, 1.0, 1.0], "score": [1.0, 1.0, 1.0]},
    }
    image = _imread(pictures.plot_line_panels(tmp_path / "sigma.png", panels))
    assert image.shape == (450, 1400, 4)
    root, comments = _svg(pictures.plot_line_panels(tmp_path / "sigma.svg", panels))
    # Each name once in the legend, and both panels' titles.
    assert comments.count("conv1") == comments.count("score") == 1
    assert {"without", "with"} <= set(comments)
    styles = [e.get("style", "") for e in root.iter()]
    assert sum("stroke: #1f77b4" in style for style in styles) >= 3  # 2 lines, legend


def test_line_panels_errors(tmp_path):
    with pytest.raises(KerasNormValueError, match="at least one series"):
        pictures.plot_line_panels(tmp_path / "sigma.svg", {"without": {}})
    with pytest.raises(KerasNormValueError, match="at least one series"):
        pictures.plot_line_panels(tmp_path / "sigma.svg", {})


def test_image_grids_side_by_side(tmp_path):
    pytest.importorskip("matplotlib")
    black, white = np.full((4, 8, 8, 3), -1.0), np.full((4, 8, 8, 1), 1.0)
    path = pictures.plot_image_grids(
        tmp_path / "samples.png", {"real": black, "fake": white}, columns=2
    )
    image = _imread(path)
    assert image.shape[1] > 1.5 * image.shape[0]
    left, right = image[:, : image.shape[1] // 2], image[:, image.shape[1] // 2 :]
    # The black grid on the left, the white one (grey colour map) on the right.
    assert (left[..., :3] < 0.05).all(axis=-1).sum() > 4 * 32 * 32 * 0.9
    assert (right[..., :3] < 0.05).all(axis=-1).sum() < 200
    with pytest.raises(KerasNormValueError, match="shape"):
        pictures.plot_image_grids(tmp_path / "bad.png", {"real": np.zeros((2, 2))})
    with pytest.raises(KerasNormValueError, match="at least one batch of images"):
        pictures.plot_image_grids(tmp_path / "none.png", {})
