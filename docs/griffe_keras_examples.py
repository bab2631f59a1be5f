"""A griffe extension: Keras-style `Example:` sections render as code.

kerasnorm's docstrings write examples as Keras does: an `Example:` line, a
blank line, then doctest lines that are not indented:

    Example:

    >>> layer = kerasnorm.PixelNorm()

The Google docstring parser knows only an indented `Examples:` section, so
it would read those lines as a paragraph, and Markdown would turn each
`>>>` into three nested quotes. This extension rewrites such sections
before the docstrings are parsed: the title becomes `Examples:` and the
section's lines are indented under it, so the parser splits them into text
and `pycon` code blocks. The section ends at the next section title (a
non-indented `Title:` line followed by an indented one) or at the end of
the docstring. Registered in mkdocs.yml, under the python handler's
`extensions` option.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE_TITLE = re.compile(r"^Examples?:\s*$")
_SECTION_TITLE = re.compile(r"^[A-Z][A-Za-z ]*:\s*$")
_INDENT = "    "


def keras_examples_to_google(text: str) -> str:
    """`text` with every Keras-style example section turned into a Google one."""
    lines = text.split("\n")
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not _EXAMPLE_TITLE.match(line):
            out.append(line)
            continue
        out.append("Examples:")
        while index < len(lines) and not _starts_section(lines, index):
            body = lines[index]
            out.append(_INDENT + body if body.strip() else "")
            index += 1
    return "\n".join(out)


def _starts_section(lines: list[str], index: int) -> bool:
    """Whether `lines[index]` is a section title, its content indented below it."""
    if not _SECTION_TITLE.match(lines[index]):
        return False
    following = next((line for line in lines[index + 1 :] if line.strip()), "")
    return following.startswith((" ", "\t"))


class KerasExamples(griffe.Extension):
    """Rewrites Keras-style example sections of every docstring (see the module)."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.is_alias or obj.docstring is None:
            return
        obj.docstring.value = keras_examples_to_google(obj.docstring.value)
