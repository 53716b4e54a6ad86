"""What a report is made of, as plain data: sections of blocks (fields, tables, figures, text).

Section functions build these from a result's JSON document; :mod:`reports.html.render` turns
them into one self-contained HTML file or Markdown. Nothing here draws or writes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class Fields:
    """``label: value`` lines (the values already formatted, with their units)."""

    rows: list[tuple[str, str]]


@dataclass
class Table:
    """A sortable table. ``rows`` hold the raw values (numbers sort as numbers); ``formats`` maps
    a column to a format spec (``".3g"``, ``".1%"``) used for display."""

    columns: list[str]
    rows: list[list]
    caption: str = ""
    formats: dict[str, str] = field(default_factory=dict)
    note: str = ""

    def cell(self, column: str, value) -> str:
        """The text shown for ``value`` in ``column``."""
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return ""
        if isinstance(value, bool):
            return "yes" if value else ""
        if isinstance(value, (int, float)):
            spec = self.formats.get(column, ".4g" if isinstance(value, float) else "d")
            return format(value, spec)
        return str(value)

    def sort_key(self, value) -> str:
        """What the page's script sorts by: the number itself, else the text."""
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return repr(float(value))
        return "" if value is None else str(value)


@dataclass
class Figure:
    """A PNG picture with a caption (inlined as base64 in HTML; a file beside Markdown)."""

    png: bytes
    caption: str
    name: str


@dataclass
class Text:
    """A paragraph; ``pre``: shown verbatim (YAML, a command line)."""

    text: str
    pre: bool = False


@dataclass
class Section:
    key: str
    title: str
    blocks: list = field(default_factory=list)


@dataclass
class Report:
    """A whole report: what was run (title, subtitle), its key figures, its sections."""

    kind: str
    title: str
    subtitle: str
    headline: list[tuple[str, str]]
    sections: list[Section]
