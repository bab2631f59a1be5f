"""Plan.plot draws every call and highlights the plan's edits; charts and grids."""

import functools
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import tensorflow as tf
import zoo

import kerasnorm
from kerasnorm import plotting, select
from kerasnorm.demo import build_discriminator, build_generator
from kerasnorm.errors import KerasNormError, KerasNormValueError

SVG = "{http://www.w3.org/2000/svg}"
FILLS = {fill: kind for kind, (fill, _, _) in plotting.BOX_STYLES.items()}


def drawn_boxes(path) -> dict[str, tuple[str, list[str], float]]:
    """First line of each box -> (kind, all its lines, top y), from the SVG."""
    boxes = {}
    for group in ET.parse(path).getroot().iter(f"{SVG}g"):
        rect = group.find(f"{SVG}rect")
        lines = [text.text for text in group.iter(f"{SVG}text")]
        boxes[lines[0]] = (FILLS[rect.get("fill")], lines, float(rect.get("y")))
    return boxes


def test_generator_plot_shows_every_call_and_the_inserted_pixel_norms(
    adapter, tmp_path
):
    generator = build_generator(adapter.keras)
    plan = kerasnorm.plan(generator, "progan")
    path = plan.plot(tmp_path / "generator.svg")
    boxes = drawn_boxes(path)
    inserted = sorted(name for name, box in boxes.items() if box[0] == "inserted")
    assert inserted == [
        "act1_pixel_norm",
        "act2_pixel_norm",
        "fc_act_pixel_norm",
        "z_pixel_norm",
    ]
    assert set(boxes) - set(inserted) == set(kerasnorm.to_graph(generator).nodes)
    assert {box[0] for name, box in boxes.items() if name not in inserted} == {
        "unchanged"
    }
    # Each PixelNorm is drawn between the call it follows and the next one.
    assert boxes["fc_act"][2] < boxes["fc_act_pixel_norm"][2] < boxes["reshape"][2]
    assert boxes["z_pixel_norm"][1][1] == "insert PixelNorm(axis=-1) after"


@pytest.mark.parametrize("mode", ["constraint", "reparam"])
def test_discriminator_plot_highlights_the_changed_layers(adapter, tmp_path, mode):
    plan = kerasnorm.plan(build_discriminator(adapter.keras), "sngan", mode=mode)
    boxes = drawn_boxes(plan.plot(tmp_path / "discriminator.svg"))
    changed = {name: box[1] for name, box in boxes.items() if box[0] == "changed"}
    detail = "SpectralNorm on kernel" if mode == "constraint" else "wrap in"
    assert sorted(changed) == ["conv1", "conv2", "score"]
    assert all(lines[2].startswith(detail) for lines in changed.values())
    assert "inserted" not in {box[0] for box in boxes.values()}


def test_insert_before_is_drawn_on_every_input(adapter):
    keras = adapter.keras
    image = keras.Input((8, 8, 3), name="image")
    left = keras.layers.Conv2D(4, 3, padding="same", name="left")(image)
    right = keras.layers.Conv2D(4, 1, name="right")(image)
    merged = keras.layers.Add(name="add")([left, right])
    model = keras.Model(image, merged, name="critic")
    noise = kerasnorm.Rule(
        select.name("add"),
        kerasnorm.InsertBefore(
            functools.partial(keras.layers.GaussianNoise, 0.1), "noise"
        ),
    )
    layout = plotting.layout_plan(kerasnorm.plan(model, rules=[noise]))
    by_name = {box.lines[0]: box for box in layout.boxes.values()}
    inserted = [box for box in layout.boxes.values() if box.kind == "inserted"]
    # One GaussianNoise on each input of "add", drawn between the two.
    assert [box.lines for box in inserted] == [("add_noise", "insert noise before")] * 2
    for box in inserted:
        assert by_name["left"].y < box.y < by_name["add"].y


def test_a_nested_model_called_twice_gets_its_insertion_at_both_calls(adapter):
    keras = adapter.keras
    block_input = keras.Input((8,), name="block_input")
    hidden = keras.layers.Dense(8, activation="relu", name="dense")(block_input)
    block = keras.Model(block_input, hidden, name="block")
    z = keras.Input((8,), name="z")
    model = keras.Model(z, block(block(z)), name="generator")
    plan = kerasnorm.plan(model, "progan")
    layout = plotting.layout_plan(plan)
    inserted = [box.lines[0] for box in layout.boxes.values() if box.kind == "inserted"]
    assert sorted(inserted) == ["block/dense_pixel_norm"] * 2 + ["z_pixel_norm"]


def test_arrows_never_run_behind_a_box(adapter):
    """An arrow that skips rows passes each row through a lane of its own."""
    plan = kerasnorm.plan(zoo.sngan_discriminator(adapter.keras), "sngan")
    layout = plotting.layout_plan(plan)
    boxes = list(layout.boxes.values())
    lanes = [point for route in layout.routes for point in route[1:-1]]
    assert lanes, "the model has skip connections"
    for x, y in lanes:
        for box in boxes:
            inside_row = box.y <= y <= box.y + box.height
            assert not (inside_row and box.x < x < box.x + box.width), (x, y, box)
    for route in layout.routes:
        ys = [y for _, y in route]
        assert ys == sorted(ys), "arrows point down"


def test_png_needs_matplotlib(adapter, tmp_path, monkeypatch):
    plan = kerasnorm.plan(build_discriminator(adapter.keras), "sngan")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(
        kerasnorm.MissingDependencyError, match="pip install matplotlib"
    ):
        plan.plot(tmp_path / "d.png")
    assert issubclass(kerasnorm.MissingDependencyError, (KerasNormError, ImportError))
    # Where it was defined before kerasnorm.errors had it.
    assert plotting.MissingDependencyError is kerasnorm.MissingDependencyError
    assert not (tmp_path / "d.png").exists()


def test_png_with_matplotlib(adapter, tmp_path):
    pytest.importorskip("matplotlib")
    plan = kerasnorm.plan(build_generator(adapter.keras), "progan")
    layout = plotting.layout_plan(plan)
    image = tf.io.decode_png((plan.plot(tmp_path / "g.png")).read_bytes())
    assert tuple(image.shape[:2]) == (round(layout.height), round(layout.width))
    # Boxes are drawn: the inserted layers' green is there.
    fill = plotting.BOX_STYLES["inserted"][0]
    green = np.array([int(fill[i : i + 2], 16) for i in (1, 3, 5)])
    assert np.any(np.all(np.asarray(image)[..., :3] == green, axis=-1))


def test_plot_refuses_other_formats(adapter, tmp_path):
    plan = kerasnorm.plan(build_discriminator(adapter.keras), "sngan")
    with pytest.raises(KerasNormValueError, match=r"'\.svg' or '\.png'"):
        plan.plot(tmp_path / "d.pdf")


def test_line_chart_draws_one_line_per_series_with_a_legend(tmp_path):
    series = {"conv1": [1.5, 1.0, 1.0, 1.0], "score": [0.5, np.nan, 1.0, 1.0]}
    path = plotting.plot_lines(
        tmp_path / "sigma.svg", series, title="sigma", x_label="step", y_label="s"
    )
    root = ET.parse(path).getroot()
    lines = [
        p for p in root.iter(f"{SVG}polyline") if p.get("stroke") != "black"
    ]  # the axes are black
    # The NaN breaks "score" in two.
    assert [line.get("stroke") for line in lines] == [
        plotting.LINE_COLOURS[0],
        plotting.LINE_COLOURS[1],
        plotting.LINE_COLOURS[1],
    ]
    assert len(lines[0].get("points").split()) == 4
    texts = [text.text for text in root.iter(f"{SVG}text")]
    assert {"conv1", "score", "sigma", "step", "s", "0", "1.5"} <= set(texts)


def test_line_chart_errors(tmp_path):
    with pytest.raises(KerasNormValueError, match=r"end in '\.svg'"):
        plotting.plot_lines(tmp_path / "sigma.png", {"a": [1.0]})
    with pytest.raises(KerasNormValueError, match="at least one series"):
        plotting.plot_lines(tmp_path / "sigma.svg", {})
    with pytest.raises(KerasNormValueError, match="2 values for 3 x values"):
        plotting.plot_lines(tmp_path / "sigma.svg", {"a": [1.0, 2.0]}, x=[1, 2, 3])


def test_image_grid(tmp_path):
    images = np.full((5, 2, 3, 3), -1.0)
    images[1] = 1.0
    path = plotting.save_image_grid(tmp_path / "grid.png", images, columns=3, scale=2)
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
        plotting.save_image_grid(tmp_path / "grid.jpg", np.zeros((1, 2, 2, 3)))
    with pytest.raises(KerasNormValueError, match="shape"):
        plotting.save_image_grid(tmp_path / "grid.png", np.zeros((2, 2, 3)))
