"""Pictures: a plan's graph, line charts and image grids, with no plotting library.

`plot_plan` draws a model's graph as `Plan.plot` does: one box per layer
call, laid out in rows by topological generation, with the layers a plan
changes and the layers it inserts highlighted. The SVG is written by hand;
PNG needs matplotlib, which kerasnorm does not require. `plot_lines` writes
an SVG line chart (the demo's sigma plot) and `save_image_grid` a PNG grid
of images, through `tf.io.encode_png`.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

import networkx as nx
import numpy as np

from kerasnorm.errors import KerasNormValueError, MissingDependencyError

if TYPE_CHECKING:
    from kerasnorm.plan import Plan

# (fill, stroke) of each kind of box, and what the legend calls it.
BOX_STYLES = {
    "unchanged": ("#f5f5f5", "#9e9e9e", "unchanged"),
    "changed": ("#ffe0b2", "#ef6c00", "changed by the plan"),
    "inserted": ("#c8e6c9", "#2e7d32", "inserted by the plan"),
}
# Ten distinguishable line colours (matplotlib's "tab10").
LINE_COLOURS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)

_FONT_SIZE = 12
# Width of one character of a 12 px monospace font, a little generous, so
# that labels fit their boxes without measuring text.
_CHAR_WIDTH = 7.4
_LINE_HEIGHT = 15
_PAD = 8
_ROW_GAP = 36
_COLUMN_GAP = 18
# Room for an arrow passing through a row.
_LANE_WIDTH = 4
_MARGIN = 20
_HEADER_HEIGHT = 48


@dataclasses.dataclass
class Box:
    """One layer call in a graph picture.

    Attributes:
        lines: The text, one entry per line; the first is drawn in bold.
        kind: `"unchanged"`, `"changed"` or `"inserted"`.
        x: Left edge, in pixels.
        y: Top edge, in pixels.
        width: In pixels.
        height: In pixels.
    """

    lines: tuple[str, ...]
    kind: str
    x: float = 0.0
    y: float = 0.0
    width: float = 0.0
    height: float = 0.0

    @property
    def centre_x(self) -> float:
        return self.x + self.width / 2


@dataclasses.dataclass
class GraphLayout:
    """A graph picture before it is drawn: boxes, arrows, size.

    Attributes:
        title: The caption at the top.
        boxes: Box of each node of the drawn graph.
        routes: One arrow per edge, as the points it passes: the source's
            bottom, then the top and bottom of its lane through each row it
            crosses, then the target's top. It curves from one row to the
            next and runs straight down through a row.
        width: Of the whole picture, in pixels.
        height: Of the whole picture, in pixels.
    """

    title: str
    boxes: dict
    routes: list[list[tuple[float, float]]]
    width: float
    height: float


def plot_plan(plan: Plan, path: str | os.PathLike) -> pathlib.Path:
    """Draws the model graph of `plan`, its changes highlighted, to `path`.

    Layers the plan changes (spectral normalization) are orange, with the
    change written in the box; layers it inserts (PixelNorm, your own
    `InsertAfter` / `InsertBefore` layers) are green boxes drawn where the
    rewrite puts them. Skipped edits are not drawn.

    Args:
        plan: A `Plan` from `kerasnorm.plan`.
        path: Where to write. `.svg` is written by kerasnorm itself; `.png`
            needs matplotlib.

    Returns:
        `path`, as a `pathlib.Path`.

    Raises:
        KerasNormValueError: If `path` ends neither in `.svg` nor `.png`.
        MissingDependencyError: For `.png` when matplotlib is not installed.

    Example:

    >>> from kerasnorm.demo import build_discriminator
    >>> plan = kerasnorm.plan(build_discriminator(keras), policy="sngan")
    >>> svg = plan_svg(plan)
    >>> svg.count("SpectralNorm on kernel")
    3
    """
    path = pathlib.Path(path)
    suffix = path.suffix.lower()
    if suffix == ".svg":
        path.write_text(plan_svg(plan), encoding="utf-8")
    elif suffix == ".png":
        _write_png(layout_plan(plan), path)
    else:
        raise KerasNormValueError(
            f"Cannot draw a plan to {str(path)!r}: the file name must end in "
            "'.svg' or '.png'."
        )
    return path


def plan_svg(plan: Plan) -> str:
    """The picture `plot_plan` draws, as SVG text."""
    layout = layout_plan(plan)
    parts = [_graph_header(layout)]
    for route in layout.routes:
        parts.append(_route_svg(route))
    for box in layout.boxes.values():
        parts.append(_box_svg(box))
    parts.append("</svg>\n")
    return "\n".join(parts)


def layout_plan(plan: Plan) -> GraphLayout:
    """Places one box per layer call of `plan`'s model, inserted layers included.

    The layered layout of Sugiyama et al.: rows are the topological
    generations of the graph (with the inserted layers spliced in); an
    arrow that skips rows gets a lane, an empty slot, in each row it
    crosses, so that it never runs behind a box; in each row, boxes and
    lanes are ordered by the mean position of what feeds them, which keeps
    most arrows short and uncrossed.
    """
    drawn = _drawn_graph(plan)
    rows = [list(generation) for generation in nx.topological_generations(drawn)]
    row_of = {node: index for index, row in enumerate(rows) for node in row}
    # What feeds each box or lane from the row above, and each edge's lanes.
    fed_by: dict = {node: [] for node in drawn}
    lanes: dict = {}
    for source, target in drawn.edges:
        crossed = range(row_of[source] + 1, row_of[target])
        lanes[source, target] = [("lane", source, target, row) for row in crossed]
        steps = [source, *lanes[source, target], target]
        for upper, lower in itertools.pairwise(steps):
            fed_by.setdefault(lower, []).append(upper)
        for row, lane in zip(crossed, lanes[source, target], strict=True):
            rows[row].append(lane)

    boxes = {node: drawn.nodes[node]["box"] for node in drawn}
    for box in boxes.values():
        box.width = max(len(line) for line in box.lines) * _CHAR_WIDTH + 2 * _PAD
        box.height = len(box.lines) * _LINE_HEIGHT + _PAD
    centres: dict = {}
    row_spans = []
    y = _MARGIN + _HEADER_HEIGHT
    for row in rows:
        wanted = {item: _mean([centres[f] for f in fed_by[item]]) for item in row}
        row.sort(key=wanted.__getitem__)
        widths = [boxes[item].width if item in boxes else _LANE_WIDTH for item in row]
        lefts = _place_row(row, widths, wanted)
        for item, x, width in zip(row, lefts, widths, strict=True):
            if item in boxes:
                boxes[item].x, boxes[item].y = x, y
            centres[item] = x + width / 2
        height = max(boxes[item].height for item in row if item in boxes)
        row_spans.append((y, y + height))
        y += height + _ROW_GAP
    title = (
        f"Plan for model {plan.model.name!r} (mode={plan.mode!r}): "
        f"{len(plan.changes)} changes"
    )
    left = min(box.x for box in boxes.values())
    right = max(box.x + box.width for box in boxes.values())
    left, right = min(left, *centres.values()), max(right, *centres.values())
    width = max(right - left, len(title) * _CHAR_WIDTH, 520)
    shift = _MARGIN - left + (width - (right - left)) / 2
    for box in boxes.values():
        box.x += shift
    routes = []
    for (source, target), edge_lanes in lanes.items():
        start, end = boxes[source], boxes[target]
        points = [(start.centre_x, start.y + start.height)]
        for lane in edge_lanes:
            top, bottom = row_spans[lane[3]]
            points += [(centres[lane] + shift, top), (centres[lane] + shift, bottom)]
        points.append((end.centre_x, end.y))
        routes.append(points)
    return GraphLayout(
        title=title,
        boxes=boxes,
        routes=routes,
        width=width + 2 * _MARGIN,
        height=y - _ROW_GAP + _MARGIN,
    )


def _place_row(row: list, widths: list[float], wanted: dict) -> list[float]:
    """Left edges for a row's items, each as near its wanted centre as fits.

    Items are put at their wanted centres left to right, pushed right where
    they would overlap the one before; the row then moves back left by the
    mean push, so crowding spreads to both sides.
    """
    lefts, pushes, cursor = [], [], -math.inf
    for item, width in zip(row, widths, strict=True):
        wanted_left = wanted[item] - width / 2
        lefts.append(max(wanted_left, cursor))
        pushes.append(lefts[-1] - wanted_left)
        cursor = lefts[-1] + width + _COLUMN_GAP
    push = _mean(pushes)
    return [left - push for left in lefts]


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _drawn_graph(plan: Plan) -> nx.DiGraph:
    """The plan's graph with a box on each node and the inserted layers added.

    Inserted layers get node ids `(node, number)`, which no graph node has.
    A call action is planned once per call of the model holding it, but the
    rewrite inserts it into that model, so into every call of it: the box
    is drawn at every graph node of that call.
    """
    graph = plan.graph
    drawn = nx.DiGraph(graph.edges)
    changed = {}
    for edit in plan.changes:
        if edit.action.per_layer:
            changed.setdefault(id(graph.nodes[edit.node]["op"]), edit.detail)
    for node, data in graph.nodes(data=True):
        detail = changed.get(id(data["op"]))
        lines = (node, data["class_name"]) + ((detail,) if detail else ())
        drawn.add_node(node, box=Box(lines, "changed" if detail else "unchanged"))
    calls: dict = {}
    for node, data in graph.nodes(data=True):
        calls.setdefault((id(data["ir"]), data["ir_node"]), []).append(node)
    for number, edit in enumerate(plan.changes):
        if edit.action.per_layer:
            continue
        data = graph.nodes[edit.node]
        suffix = getattr(edit.action, "suffix", "pixel_norm")
        name = "/".join((*data["scope"], f"{data['layer_name']}_{suffix}"))
        lines = (name, edit.detail)
        for node in calls[(id(data["ir"]), data["ir_node"])]:
            if edit.action.position == "after":
                _splice_after(drawn, node, (node, number), lines)
            else:
                _splice_before(drawn, node, (node, number), lines)
    return drawn


def _splice_after(drawn: nx.DiGraph, node, new, lines) -> None:
    """Puts `new` between `node` and everything that reads it."""
    successors = list(drawn.successors(node))
    drawn.add_node(new, box=Box(lines, "inserted"))
    for successor in successors:
        drawn.remove_edge(node, successor)
        drawn.add_edge(new, successor)
    drawn.add_edge(node, new)


def _splice_before(drawn: nx.DiGraph, node, new, lines) -> None:
    """Puts one copy of `new` on each input of `node`."""
    for index, predecessor in enumerate(list(drawn.predecessors(node))):
        copy = (*new, index)
        drawn.add_node(copy, box=Box(lines, "inserted"))
        drawn.remove_edge(predecessor, node)
        drawn.add_edge(predecessor, copy)
        drawn.add_edge(copy, node)


def _svg_open(width: float, height: float) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'font-family="monospace" font-size="{_FONT_SIZE}">\n'
        f'<rect width="100%" height="100%" fill="white"/>'
    )


def _graph_header(layout: GraphLayout) -> str:
    parts = [
        _svg_open(layout.width, layout.height),
        f"<title>{escape(layout.title)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto">'
        '<path d="M 0 0 L 10 5 L 0 10 z" fill="#616161"/></marker></defs>',
        f'<text x="{_MARGIN}" y="{_MARGIN + 4}" font-weight="bold">'
        f"{escape(layout.title)}</text>",
    ]
    x = _MARGIN
    for fill, stroke, text in BOX_STYLES.values():
        parts.append(
            f'<rect x="{x}" y="{_MARGIN + 14}" width="14" height="14" rx="3" '
            f'fill="{fill}" stroke="{stroke}"/>'
            f'<text x="{x + 20}" y="{_MARGIN + 25}">{escape(text)}</text>'
        )
        x += 20 + len(text) * _CHAR_WIDTH + 24
    return "\n".join(parts)


def _route_path(route: list[tuple[float, float]]) -> list[tuple[str, tuple]]:
    """Path commands for a route: a vertical S-curve from each row to the next
    (`"C"`, with two control points and the end), a line through a row (`"L"`)."""
    commands: list[tuple[str, tuple]] = [("M", (route[0],))]
    for index, ((x1, y1), (x2, y2)) in enumerate(itertools.pairwise(route)):
        if index % 2:
            commands.append(("L", ((x2, y2),)))
        else:
            bend = (y2 - y1) / 2
            commands.append(("C", ((x1, y1 + bend), (x2, y2 - bend), (x2, y2))))
    return commands


def _route_svg(route: list[tuple[float, float]]) -> str:
    d = " ".join(
        f"{verb} " + " ".join(f"{x:.1f} {y:.1f}" for x, y in points)
        for verb, points in _route_path(route)
    )
    return (
        f'<path d="{d}" fill="none" stroke="#616161" stroke-width="1.2" '
        'marker-end="url(#arrow)"/>'
    )


def _box_svg(box: Box) -> str:
    fill, stroke, _ = BOX_STYLES[box.kind]
    parts = [
        f'<g><rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.width:.1f}" '
        f'height="{box.height:.1f}" rx="4" fill="{fill}" stroke="{stroke}" '
        'stroke-width="1.5"/>'
    ]
    for index, line in enumerate(box.lines):
        weight = ' font-weight="bold"' if index == 0 else ""
        baseline = box.y + _PAD / 2 + (index + 1) * _LINE_HEIGHT - 3
        parts.append(
            f'<text x="{box.x + _PAD:.1f}" y="{baseline:.1f}"{weight}>'
            f"{escape(line)}</text>"
        )
    parts.append("</g>")
    return "".join(parts)


def _write_png(layout: GraphLayout, path: pathlib.Path) -> None:
    """Draws `layout` with matplotlib, as the SVG draws it."""
    try:
        from matplotlib.figure import Figure
        from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
        from matplotlib.path import Path as MplPath
    except ImportError as error:
        raise MissingDependencyError(
            f"Writing {str(path)!r} as PNG needs matplotlib, which is not "
            "installed. Install it (`pip install matplotlib`) or write an .svg "
            "file instead."
        ) from error
    dpi = 100
    figure = Figure(figsize=(layout.width / dpi, layout.height / dpi), dpi=dpi)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_xlim(0, layout.width)
    axes.set_ylim(layout.height, 0)
    axes.axis("off")
    # Font sizes are in points: 72 per inch, where the SVG has `dpi` pixels.
    font = {"family": "monospace", "size": _FONT_SIZE * 72 / dpi}
    axes.text(_MARGIN, _MARGIN + 4, layout.title, fontweight="bold", **font)
    codes = {"M": MplPath.MOVETO, "L": MplPath.LINETO, "C": MplPath.CURVE4}
    for route in layout.routes:
        vertices, kinds = [], []
        for verb, points in _route_path(route):
            vertices += points
            kinds += [codes[verb]] * len(points)
        axes.add_patch(
            FancyArrowPatch(
                path=MplPath(vertices, kinds),
                arrowstyle="-|>",
                mutation_scale=10,
                color="#616161",
                linewidth=1.2,
            )
        )
    x = _MARGIN
    for fill, stroke, text in BOX_STYLES.values():
        axes.add_patch(
            FancyBboxPatch(
                (x, _MARGIN + 14),
                14,
                14,
                boxstyle="round,pad=0,rounding_size=3",
                facecolor=fill,
                edgecolor=stroke,
            )
        )
        axes.text(x + 20, _MARGIN + 25, text, **font)
        x += 20 + len(text) * _CHAR_WIDTH + 24
    for box in layout.boxes.values():
        fill, stroke, _ = BOX_STYLES[box.kind]
        axes.add_patch(
            FancyBboxPatch(
                (box.x, box.y),
                box.width,
                box.height,
                boxstyle="round,pad=0,rounding_size=4",
                facecolor=fill,
                edgecolor=stroke,
                linewidth=1.5,
            )
        )
        for index, line in enumerate(box.lines):
            axes.text(
                box.x + _PAD,
                box.y + _PAD / 2 + (index + 1) * _LINE_HEIGHT - 3,
                line,
                fontweight="bold" if index == 0 else "normal",
                **font,
            )
    figure.savefig(path, dpi=dpi)


def plot_lines(
    path: str | os.PathLike,
    series: Mapping[str, Sequence[float]],
    *,
    x: Sequence[float] | None = None,
    title: str = "",
    x_label: str = "",
    y_label: str = "",
) -> pathlib.Path:
    """Writes a line chart of one or more series as SVG, with axes and a legend.

    The y axis always includes 0, so a series that stays at 1 looks flat
    rather than like magnified noise. Non-finite values break their line.

    Args:
        path: Where to write; must end in `.svg`.
        series: Name -> values; each name gets a line and a legend entry.
        x: The x value of each position; defaults to 1, 2, 3, ...
        title: Drawn above the chart.
        x_label: Drawn under the x axis.
        y_label: Drawn beside the y axis.

    Returns:
        `path`, as a `pathlib.Path`.

    Raises:
        KerasNormValueError: If `path` does not end in `.svg`, `series` is
            empty, or a series is not as long as `x`.

    Example:

    >>> import tempfile
    >>> path = plot_lines(
    ...     tempfile.mkdtemp() + "/sigma.svg", {"conv1": [1.3, 1.0, 1.0]}
    ... )
    >>> ">conv1</text>" in path.read_text()  # the legend
    True
    """
    path = pathlib.Path(path)
    if path.suffix.lower() != ".svg":
        raise KerasNormValueError(
            f"plot_lines writes SVG: the file name must end in '.svg', "
            f"received {str(path)!r}."
        )
    path.write_text(
        line_chart_svg(series, x=x, title=title, x_label=x_label, y_label=y_label),
        encoding="utf-8",
    )
    return path


def line_chart_svg(
    series: Mapping[str, Sequence[float]],
    *,
    x: Sequence[float] | None = None,
    title: str = "",
    x_label: str = "",
    y_label: str = "",
) -> str:
    """The chart `plot_lines` draws, as SVG text."""
    if not series:
        raise KerasNormValueError("A line chart needs at least one series.")
    values = {name: np.asarray(ys, dtype="float64") for name, ys in series.items()}
    length = max(len(ys) for ys in values.values())
    xs = np.arange(1, length + 1, dtype="float64") if x is None else np.asarray(x)
    for name, ys in values.items():
        if len(ys) != len(xs):
            raise KerasNormValueError(
                f"Series {name!r} has {len(ys)} values for {len(xs)} x values."
            )
    finite = np.concatenate([ys[np.isfinite(ys)] for ys in values.values()])
    low = min(0.0, float(finite.min())) if finite.size else 0.0
    high = float(finite.max()) if finite.size else 1.0
    y_ticks = _ticks(low, high)
    x_ticks = _ticks(float(xs.min()), float(xs.max())) if len(xs) else [0.0, 1.0]
    legend_width = max(len(name) for name in values) * _CHAR_WIDTH + 40
    width, height = 640 + legend_width, 400
    left, right, top, bottom = 70, width - legend_width - 10, 40, height - 50

    def to_x(value: float) -> float:
        return left + (value - x_ticks[0]) / (x_ticks[-1] - x_ticks[0]) * (right - left)

    def to_y(value: float) -> float:
        return bottom - (value - y_ticks[0]) / (y_ticks[-1] - y_ticks[0]) * (
            bottom - top
        )

    parts = [
        _svg_open(width, height),
        f"<title>{escape(title)}</title>",
        f'<text x="{width / 2:.0f}" y="22" text-anchor="middle" '
        f'font-weight="bold">{escape(title)}</text>',
    ]
    for tick in y_ticks:
        y = to_y(tick)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" '
            'stroke="#e0e0e0"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{tick:g}</text>"
        )
    for tick in x_ticks:
        x_pixel = to_x(tick)
        parts.append(
            f'<line x1="{x_pixel:.1f}" y1="{bottom}" x2="{x_pixel:.1f}" '
            f'y2="{bottom + 5}" stroke="black"/>'
            f'<text x="{x_pixel:.1f}" y="{bottom + 18}" text-anchor="middle">'
            f"{tick:g}</text>"
        )
    parts.append(
        f'<polyline points="{left},{top} {left},{bottom} {right},{bottom}" '
        'fill="none" stroke="black"/>'
        f'<text x="{(left + right) / 2:.0f}" y="{height - 12}" '
        f'text-anchor="middle">{escape(x_label)}</text>'
        f'<text x="16" y="{(top + bottom) / 2:.0f}" text-anchor="middle" '
        f'transform="rotate(-90 16 {(top + bottom) / 2:.0f})">'
        f"{escape(y_label)}</text>"
    )
    for index, (name, ys) in enumerate(values.items()):
        colour = LINE_COLOURS[index % len(LINE_COLOURS)]
        for segment in _finite_runs(xs, ys):
            points = " ".join(f"{to_x(a):.1f},{to_y(b):.1f}" for a, b in segment)
            parts.append(
                f'<polyline points="{points}" fill="none" stroke="{colour}" '
                'stroke-width="1.5"/>'
            )
        legend_y = top + 10 + index * 20
        parts.append(
            f'<line x1="{right + 15}" y1="{legend_y}" x2="{right + 35}" '
            f'y2="{legend_y}" stroke="{colour}" stroke-width="3"/>'
            f'<text x="{right + 40}" y="{legend_y + 4}">{escape(name)}</text>'
        )
    parts.append("</svg>\n")
    return "\n".join(parts)


def _finite_runs(xs: np.ndarray, ys: np.ndarray) -> list[list[tuple]]:
    """The runs of consecutive points whose y is finite."""
    runs: list[list[tuple]] = [[]]
    for a, b in zip(xs, ys, strict=True):
        if np.isfinite(b):
            runs[-1].append((float(a), float(b)))
        elif runs[-1]:
            runs.append([])
    return [run for run in runs if run]


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About `count` round tick values covering [low, high], ends included."""
    if high <= low:
        high = low + 1.0
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step + 1e-9)
    last = math.ceil(high / step - 1e-9)
    return [round(k * step, 12) for k in range(first, last + 1)]


def save_image_grid(
    path: str | os.PathLike,
    images,
    *,
    columns: int = 8,
    scale: int = 4,
    value_range: tuple[float, float] = (-1.0, 1.0),
) -> pathlib.Path:
    """Writes images side by side, row after row, as one PNG.

    Args:
        path: Where to write; must end in `.png`.
        images: A batch of images, `(count, height, width, channels)` with 1,
            3 or 4 channels (a generator's output).
        columns: Images per row.
        scale: Each pixel is drawn as a `scale` x `scale` square.
        value_range: The values drawn black and white; a tanh generator's
            `(-1, 1)` by default. Values outside are clipped.

    Returns:
        `path`, as a `pathlib.Path`.

    Raises:
        KerasNormValueError: If `path` does not end in `.png` or `images` is
            not a batch of images.

    Example:

    >>> import tempfile
    >>> path = save_image_grid(
    ...     tempfile.mkdtemp() + "/grid.png", np.zeros((6, 4, 4, 3)), columns=3
    ... )
    >>> tuple(tf.io.decode_png(path.read_bytes()).shape)
    (38, 56, 3)
    """
    path = pathlib.Path(path)
    if path.suffix.lower() != ".png":
        raise KerasNormValueError(
            f"save_image_grid writes PNG: the file name must end in '.png', "
            f"received {str(path)!r}."
        )
    images = np.asarray(images, dtype="float64")
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4) or not len(images):
        raise KerasNormValueError(
            "Expected a batch of images of shape (count, height, width, channels) "
            f"with 1, 3 or 4 channels, received shape {images.shape}."
        )
    low, high = value_range
    pixels = np.clip((images - low) / (high - low), 0.0, 1.0) * 255
    pixels = pixels.round().astype("uint8").repeat(scale, 1).repeat(scale, 2)
    count, height, width, channels = pixels.shape
    rows = -(-count // columns)
    gap = 2
    grid = np.full(
        (rows * (height + gap) + gap, columns * (width + gap) + gap, channels),
        255,
        dtype="uint8",
    )
    for index, image in enumerate(pixels):
        top = gap + (index // columns) * (height + gap)
        left = gap + (index % columns) * (width + gap)
        grid[top : top + height, left : left + width] = image
    # TensorFlow is a dependency on every backend, but heavy to import.
    import tensorflow as tf

    path.write_bytes(tf.io.encode_png(grid).numpy())
    return path
