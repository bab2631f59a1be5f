"""Results as data, and their three renderings: a text table, JSON, markdown."""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib

# Hand-written: what was done where a target was missed, with the figures
# measured while doing it. The page's tables come from the run.
TRIED = pathlib.Path(__file__).with_name("tried.md")


@dataclasses.dataclass
class Table:
    """One table of a section.

    Attributes:
        title: What the table shows.
        columns: Column headings.
        rows: One list of cells per row; numbers are formatted on rendering.
        note: A sentence printed under the table, or empty.
    """

    title: str
    columns: list[str]
    rows: list[list]
    note: str = ""


@dataclasses.dataclass
class Target:
    """A measured figure against the figure it must reach.

    Attributes:
        name: What is measured.
        measured: The figure, or None if it could not be measured.
        limit: The largest value that meets the target.
        floor: The same run's figure for the least work any method of the
            target's kind must do (its section names that baseline), or
            None where no such baseline is measured. A limit below the
            floor cannot be met on this machine.
    """

    name: str
    measured: float | None
    limit: float
    floor: float | None = None

    @property
    def met(self) -> bool:
        return self.measured is not None and self.measured <= self.limit

    @property
    def out_of_reach(self) -> bool:
        """Whether the target is missed with its limit below the floor."""
        return not self.met and self.floor is not None and self.floor > self.limit

    @property
    def result(self) -> str:
        """The result column's text: met, missed, or missed out of reach."""
        if self.met:
            return "met"
        if self.out_of_reach:
            return f"missed, out of reach: floor {format_cell(float(self.floor))}"
        return "missed"


@dataclasses.dataclass
class Section:
    """The results of one benchmark section.

    Attributes:
        key: Short identifier, the key in the JSON file.
        title: Heading.
        description: What is measured and how, in a paragraph of markdown.
        tables: The tables shown.
        targets: The targets checked.
        data: Every measured figure, for the JSON file.
    """

    key: str
    title: str
    description: str
    tables: list[Table] = dataclasses.field(default_factory=list)
    targets: list[Target] = dataclasses.field(default_factory=list)
    data: dict = dataclasses.field(default_factory=dict)


def format_cell(value) -> str:
    """A number with the digits that matter; anything else as text."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "" if value is None else str(value)
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    if abs(value) < 1e-2 or abs(value) >= 1e5:
        return f"{value:.1e}"
    if abs(value) < 10:
        return f"{value:.3f}"
    return f"{value:.1f}"


def _format_limit(limit: float) -> str:
    return f"<= {format_cell(float(limit))}"


def text_table(table: Table) -> str:
    """`table` as aligned plain text."""
    cells = [table.columns] + [
        [format_cell(cell) for cell in row] for row in table.rows
    ]
    widths = [max(len(row[index]) for row in cells) for index in range(len(cells[0]))]
    lines = [table.title]
    for number, row in enumerate(cells):
        lines.append(
            "  ".join(
                cell.ljust(width) for cell, width in zip(row, widths, strict=True)
            )
        )
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    if table.note:
        lines.append(table.note)
    return "\n".join(lines)


def _escape(text: str) -> str:
    # A bare | (as in |sigma - 1|) would end a markdown table cell.
    return text.replace("|", "\\|")


def markdown_table(table: Table) -> str:
    """`table` as a markdown table under a bold title."""
    lines = [f"**{_escape(table.title)}**", ""]
    lines.append("| " + " | ".join(map(_escape, table.columns)) + " |")
    lines.append("|" + "|".join("---" for _ in table.columns) + "|")
    for row in table.rows:
        cells = (_escape(format_cell(cell)) for cell in row)
        lines.append("| " + " | ".join(cells) + " |")
    if table.note:
        lines += ["", table.note]
    return "\n".join(lines)


def targets_table(targets: list[Target]) -> Table:
    """The targets of a section as a table with a met/missed column."""
    note = ""
    if any(target.out_of_reach for target in targets):
        note = (
            "Out of reach: the limit lies below the floor, the same run's "
            "figure for the least work any method of the target's kind must "
            "do (its section names that baseline)."
        )
    return Table(
        "Targets",
        ["target", "measured", "limit", "result"],
        [
            [
                target.name,
                "not measured" if target.measured is None else target.measured,
                _format_limit(target.limit),
                target.result,
            ]
            for target in targets
        ],
        note,
    )


def print_section(section: Section) -> None:
    """Prints a section's tables and targets as text."""
    print(f"\n== {section.title} ==")
    tables = section.tables + (
        [targets_table(section.targets)] if section.targets else []
    )
    for table in tables:
        print()
        print(text_table(table))


def to_json(sections: list[Section], machine: dict, config: dict) -> dict:
    """Everything measured, as one JSON-serializable dictionary."""
    return {
        "machine": machine,
        "config": config,
        "sections": {
            section.key: {
                "title": section.title,
                "data": section.data,
                "targets": [
                    {
                        **dataclasses.asdict(target),
                        "met": target.met,
                        "out_of_reach": target.out_of_reach,
                    }
                    for target in section.targets
                ],
                "tables": [dataclasses.asdict(table) for table in section.tables],
            }
            for section in sections
        },
    }


def write_json(path: pathlib.Path, results: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, default=float) + "\n")


def markdown(sections: list[Section], machine: dict, command: str) -> str:
    """The benchmarks page of the documentation."""
    lines = [
        "# Benchmarks",
        "",
        "<!-- Generated by python -m benchmarks: edit benchmarks/, not this page. -->",
        "",
        "kerasnorm against what you would use instead, each figure a ratio to a "
        "baseline timed in the same process: train steps run inside `tf.function` "
        "(section 6: as each backend compiles `fit`), "
        "the variants are timed round-robin (one step of each in turn, so machine "
        "noise hits all alike), and each ratio is the median of the per-round "
        "ratios after warm-up steps. "
        "Memory is measured in fresh processes, several per case.",
        "",
        "Regenerate this page with:",
        "",
        "```bash",
        command,
        "```",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *(f"| {key} | {value} |" for key, value in machine.items()),
        "",
        "## Summary",
        "",
    ]
    summary = [target for section in sections for target in section.targets]
    lines += [markdown_table(targets_table(summary)), ""]
    for section in sections:
        lines += [f"## {section.title}", "", section.description, ""]
        for table in section.tables:
            lines += [markdown_table(table), ""]
        if section.targets:
            lines += [markdown_table(targets_table(section.targets)), ""]
    lines.append(TRIED.read_text())
    return "\n".join(lines).rstrip() + "\n"
