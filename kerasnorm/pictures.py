"""Pictures: a plan's graph, line charts and image grids, by the usual tools.

`plot_plan` draws the graph of `Plan.to_networkx` as `keras.utils.plot_model`
draws a model: through pydot and Graphviz's `dot` program when both are
there, otherwise with matplotlib. `plot_lines` draws a line chart with
matplotlib. Both write PNG, SVG or PDF, by the file's suffix; matplotlib
and pydot are the optional extra `pip install "kerasnorm[pictures]"`.
`save_image_grid` writes a PNG through `tf.io.encode_png` and needs neither.

The pipeline (`plan`, `rewrite` and what they use) does not import this
module: it describes the changes, this module only draws them.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import networkx as nx
import numpy as np

from kerasnorm.errors import KerasNormValueError, MissingDependencyError

if TYPE_CHECKING:
    from kerasnorm.plan import Plan

# (fill, edge, legend) of each kind of node of `Plan.to_networkx`.
BOX_STYLES = {
    "unchanged": ("#f5f5f5", "#9e9e9e", "unchanged"),
    "changed": ("#ffe0b2", "#ef6c00", "changed by the plan"),
    "inserted": ("#c8e6c9", "#2e7d32", "inserted by the plan"),
}
FORMATS = (".png", ".svg", ".pdf")

_FONT = {"family": "monospace", "size": 9}
# Space around a box's text, in units of the font size.
_PAD = 0.4
_DPI = 100


def plot_plan(plan: Plan, path: str | os.PathLike) -> pathlib.Path:
    """Draws the model graph of `plan`, its changes highlighted, to `path`.

    One box per layer call and per inserted layer (`Plan.to_networkx`):
    the layers the plan changes orange, the layers it inserts green, where
    the rewrite puts them, each with what changes and the rule. Drawn by
    Graphviz's `dot` through pydot when both are installed (as
    `keras.utils.plot_model` does), otherwise by matplotlib, in rows by
    topological generation, with a legend.

    Args:
        plan: A `Plan` from `kerasnorm.plan`.
        path: Where to write; `.png`, `.svg` or `.pdf`.

    Returns:
        `path`, as a `pathlib.Path`.

    Raises:
        KerasNormValueError: If `path` ends in another suffix.
        MissingDependencyError: If neither Graphviz (with pydot) nor
            matplotlib is installed.

    Example:

    >>> import tempfile
    >>> from kerasnorm.demo import build_generator
    >>> plan = kerasnorm.plan(build_generator(keras), policy="progan")
    >>> path = kerasnorm.plot_plan(plan, tempfile.mkdtemp() + "/generator.png")
    >>> path.read_bytes()[:4]
    b'\\x89PNG'
    """
    path = _checked_path(path, "plot_plan")
    if _graphviz_available():
        _plot_with_graphviz(plan, path)
    else:
        _plot_with_matplotlib(plan, path)
    return path


def _graphviz_available() -> bool:
    """Whether pydot imports and Graphviz's `dot -V` runs, as Keras checks."""
    try:
        import pydot  # noqa: F401

        subprocess.run(["dot", "-V"], capture_output=True, check=True, timeout=60)
    except (ImportError, OSError, subprocess.SubprocessError):
        return False
    return True


def _plot_with_graphviz(plan: Plan, path: pathlib.Path) -> None:
    import pydot

    (graph,) = pydot.graph_from_dot_data(plan.to_dot())
    for node in graph.get_nodes():
        kind = (node.get("class") or "").strip('"')
        if kind in BOX_STYLES:
            fill, edge, _ = BOX_STYLES[kind]
            node.set("fillcolor", f'"{fill}"')
            node.set("color", f'"{edge}"')
    graph.write(str(path), format=path.suffix[1:])


def _plot_with_matplotlib(plan: Plan, path: pathlib.Path) -> None:
    """Rows by topological generation, each ordered by where its inputs sit."""
    figure_class, canvas_class = _matplotlib(path)
    from matplotlib.patches import Patch

    graph = plan.to_networkx()
    rows: dict[int, list] = {}
    order: dict = {}
    for number, generation in enumerate(nx.topological_generations(graph)):
        # The mean place of a node's inputs in the rows above keeps most
        # arrows short and uncrossed.
        rows[number] = sorted(
            generation,
            key=lambda n: np.mean([order[p] for p in graph.predecessors(n)] or [0]),
        )
        order.update((node, place) for place, node in enumerate(rows[number]))
    positions = nx.multipartite_layout(graph, subset_key=rows, align="horizontal")

    figure = figure_class(dpi=_DPI)
    canvas = canvas_class(figure)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.axis("off")
    texts = {}
    for node, data in graph.nodes(data=True):
        fill, edge, _ = BOX_STYLES[data["kind"]]
        texts[node] = axes.text(
            *positions[node],
            "\n".join(filter(None, (data["label"], data["reason"]))),
            ha="center",
            va="center",
            multialignment="center",
            bbox={"boxstyle": f"round,pad={_PAD}", "fc": fill, "ec": edge},
            zorder=2,
            **_FONT,
        )
    # Boxes are as large as their text measures; rows and columns are
    # spaced by the largest box.
    renderer = canvas.get_renderer()
    pad = 2 * _PAD * _FONT["size"] / 72
    extents = {n: t.get_window_extent(renderer) for n, t in texts.items()}
    column = max(e.width for e in extents.values()) / _DPI + pad + 0.3
    row = max(e.height for e in extents.values()) / _DPI + pad + 0.5
    columns = max(len(nodes) for nodes in rows.values())
    xs, ys = np.array(list(positions.values())).T
    spans = [(np.ptp(xs), columns), (np.ptp(ys), len(rows))]
    step = next((span / (count - 1) for span, count in spans if count > 1), 1.0)
    header = 0.8
    width, height = max(columns * column, 6.0), len(rows) * row + header
    figure.set_size_inches(width, height)
    axes.set_position((0, 0, 1, 1 - header / height))
    # Centred columns in a figure wider than them; row 0 at the top.
    half_width = width / column * step / 2
    axes.set_xlim(xs.mean() - half_width, xs.mean() + half_width)
    axes.set_ylim(ys.max() + step / 2, ys.min() - step / 2)
    units_per_inch = step / row
    for source, target in graph.edges:
        half = {n: (extents[n].height / _DPI + pad) / 2 for n in (source, target)}
        (x1, y1), (x2, y2) = positions[source], positions[target]
        axes.annotate(
            "",
            xy=(x2, y2 - half[target] * units_per_inch),
            xytext=(x1, y1 + half[source] * units_per_inch),
            arrowprops={"arrowstyle": "-|>", "color": "#616161", "lw": 1.0},
            zorder=1,
        )
    figure.suptitle(graph.graph["title"], y=1 - 0.15 / height, **_FONT)
    legend = [Patch(fc=f, ec=e, label=text) for f, e, text in BOX_STYLES.values()]
    figure.legend(
        handles=legend,
        loc="upper center",
        bbox_to_anchor=(0.5, 1 - 0.35 / height),
        ncol=len(legend),
        frameon=False,
        prop=_FONT,
    )
    figure.savefig(path, format=path.suffix[1:])


def plot_lines(
    path: str | os.PathLike,
    series: Mapping[str, Sequence[float]],
    *,
    x: Sequence[float] | None = None,
    title: str = "",
    x_label: str = "",
    y_label: str = "",
) -> pathlib.Path:
    """Draws one or more series as lines with matplotlib, with a legend.

    The y axis always includes 0, so a series that stays at 1 looks flat
    rather than like magnified noise. Non-finite values break their line.

    Args:
        path: Where to write; `.png`, `.svg` or `.pdf`.
        series: Name -> values; each name gets a line and a legend entry.
        x: The x value of each position; defaults to 1, 2, 3, ...
        title: Drawn above the chart.
        x_label: Drawn under the x axis.
        y_label: Drawn beside the y axis.

    Returns:
        `path`, as a `pathlib.Path`.

    Raises:
        KerasNormValueError: If `path` ends in another suffix, `series` is
            empty, or a series is not as long as `x`.
        MissingDependencyError: If matplotlib is not installed.

    Example:

    >>> import tempfile
    >>> path = plot_lines(
    ...     tempfile.mkdtemp() + "/sigma.png", {"conv1": [1.3, 1.0, 1.0]}
    ... )
    >>> path.read_bytes()[:4]
    b'\\x89PNG'
    """
    return plot_line_panels(
        path, {"": series}, x=x, title=title, x_label=x_label, y_label=y_label
    )


def plot_line_panels(
    path: str | os.PathLike,
    panels: Mapping[str, Mapping[str, Sequence[float]]],
    *,
    x: Sequence[float] | None = None,
    title: str = "",
    x_label: str = "",
    y_label: str = "",
) -> pathlib.Path:
    """Draws charts of lines side by side, on one y scale, with one legend.

    For comparisons: the same series (by name, in the same colour) in each
    panel, such as each kernel's spectral norm without and with
    normalization. The y axis includes 0, as in `plot_lines`.

    Args:
        path: Where to write; `.png`, `.svg` or `.pdf`.
        panels: Panel title -> series (name -> values), left to right.
        x: The x value of each position; defaults to 1, 2, 3, ...
        title: Drawn above the panels.
        x_label: Drawn under each x axis.
        y_label: Drawn beside the first y axis.

    Returns:
        `path`, as a `pathlib.Path`.

    Raises:
        KerasNormValueError: If `path` ends in another suffix, there is no
            panel or a panel has no series, or a series is not as long as
            `x`.
        MissingDependencyError: If matplotlib is not installed.

    Example:

    >>> import tempfile
    >>> path = plot_line_panels(
    ...     tempfile.mkdtemp() + "/sigma.png",
    ...     {"before": {"conv1": [1.3, 1.6]}, "after": {"conv1": [1.0, 1.0]}},
    ... )
    >>> path.read_bytes()[:4]
    b'\\x89PNG'
    """
    path = _checked_path(path, "plot_lines")
    if not panels or not all(panels.values()):
        raise KerasNormValueError("A line chart needs at least one series.")
    values = {
        panel: {name: np.asarray(ys, dtype="float64") for name, ys in series.items()}
        for panel, series in panels.items()
    }
    length = max(len(ys) for series in values.values() for ys in series.values())
    xs = np.arange(1, length + 1) if x is None else np.asarray(x)
    for series in values.values():
        for name, ys in series.items():
            if len(ys) != len(xs):
                raise KerasNormValueError(
                    f"Series {name!r} has {len(ys)} values for {len(xs)} x values."
                )
    figure_class, canvas_class = _matplotlib(path)
    figure = figure_class(
        figsize=(2 + 6 * len(values), 4.5), dpi=_DPI, layout="constrained"
    )
    canvas_class(figure)
    grid = figure.subplots(1, len(values), sharey=True, squeeze=False)[0]
    names = list(dict.fromkeys(name for series in values.values() for name in series))
    colours = {name: f"C{index % 10}" for index, name in enumerate(names)}
    for axes, (panel, series) in zip(grid, values.items(), strict=True):
        for name, ys in series.items():
            axes.plot(xs, ys, label=name, color=colours[name], linewidth=1.5)
        axes.set(title=panel, xlabel=x_label)
        axes.grid(color="#e0e0e0")
    grid[0].set_ylim(bottom=min(0.0, grid[0].get_ylim()[0]))
    grid[0].set_ylabel(y_label)
    if title:
        figure.suptitle(title)
    # One entry per series name, whichever panels hold it.
    handles = {}
    for axes in grid:
        labelled = axes.get_legend_handles_labels()
        handles.update(zip(labelled[1], labelled[0], strict=True))
    grid[-1].legend(
        handles.values(),
        handles.keys(),
        loc="center left",
        bbox_to_anchor=(1.01, 0.5),
        frameon=False,
    )
    figure.savefig(path, format=path.suffix[1:])
    return path


def _checked_path(path: str | os.PathLike, function: str) -> pathlib.Path:
    path = pathlib.Path(path)
    if path.suffix.lower() not in FORMATS:
        raise KerasNormValueError(
            f"{function} writes PNG, SVG or PDF: the file name must end in "
            f"'.png', '.svg' or '.pdf', received {str(path)!r}."
        )
    return path


def _matplotlib(path: pathlib.Path) -> tuple[type, type]:
    """matplotlib's `Figure` and Agg canvas: drawing off screen, through
    neither pyplot nor the user's backend."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise MissingDependencyError(
            f"Drawing {str(path)!r} needs matplotlib, which is not installed: "
            'pip install "kerasnorm[pictures]".'
        ) from error
    return Figure, FigureCanvasAgg


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
    grid = _image_grid(images, columns, scale, value_range)
    # TensorFlow is a dependency on every backend, but heavy to import.
    import tensorflow as tf

    path.write_bytes(tf.io.encode_png(grid).numpy())
    return path


def plot_image_grids(
    path: str | os.PathLike,
    grids: Mapping[str, object],
    *,
    columns: int = 4,
    value_range: tuple[float, float] = (-1.0, 1.0),
) -> pathlib.Path:
    """Draws batches of images as grids side by side, each under its title.

    For comparisons, such as real images next to two generators' samples.

    Args:
        path: Where to write; `.png`, `.svg` or `.pdf`.
        grids: Title -> a batch of images, `(count, height, width,
            channels)` with 1, 3 or 4 channels; left to right.
        columns: Images per row in each grid.
        value_range: The values drawn black and white, as in
            `save_image_grid`.

    Returns:
        `path`, as a `pathlib.Path`.

    Raises:
        KerasNormValueError: If `path` ends in another suffix, there is no
            grid, or one is not a batch of images.
        MissingDependencyError: If matplotlib is not installed.

    Example:

    >>> import tempfile
    >>> path = plot_image_grids(
    ...     tempfile.mkdtemp() + "/samples.png",
    ...     {"real": np.zeros((4, 8, 8, 3)), "generated": np.ones((4, 8, 8, 3))},
    ... )
    >>> path.read_bytes()[:4]
    b'\\x89PNG'
    """
    path = _checked_path(path, "plot_image_grids")
    if not grids:
        raise KerasNormValueError(
            "plot_image_grids needs at least one batch of images."
        )
    pixels = {
        title: _image_grid(images, columns, 4, value_range)
        for title, images in grids.items()
    }
    figure_class, canvas_class = _matplotlib(path)
    figure = figure_class(
        figsize=(3.2 * len(pixels), 3.6), dpi=_DPI, layout="constrained"
    )
    canvas_class(figure)
    for axes, (title, grid) in zip(
        figure.subplots(1, len(pixels), squeeze=False)[0], pixels.items(), strict=True
    ):
        if grid.shape[-1] == 1:
            # Unscaled: a uniform grid must not be stretched to black.
            axes.imshow(grid[..., 0], cmap="gray", vmin=0, vmax=255)
        else:
            axes.imshow(grid)
        axes.set_title(title)
        axes.set_axis_off()
    figure.savefig(path, format=path.suffix[1:])
    return path


def _image_grid(images, columns: int, scale: int, value_range) -> np.ndarray:
    """`images` in rows of `columns`, each pixel `scale` x `scale`, as uint8,
    on a white background with a gap between images."""
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
    return grid
