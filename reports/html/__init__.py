"""Reports of any result: one self-contained HTML file (inline PNG, CSS and script, no network),
or Markdown with its figures beside it.

``build_report(doc)`` turns a result's JSON document into a :class:`~reports.html.blocks.Report`
(kinds and sections come from the registries in :mod:`reports.html.kinds`);
``render_html`` / ``render_markdown`` write it out; ``write_report`` does both steps.
"""

from . import operator as _operator  # noqa: F401 - the op kind and its section
from . import sections as _sections  # noqa: F401 - registers the built-in kinds and sections
from . import serving as _serving  # noqa: F401 - the serving kind and its sections
from . import sweep as _sweep  # noqa: F401 - the sweep kind and its sections
from .blocks import Fields, Figure, Report, Section, Table, Text
from .kinds import REPORT_KINDS, REPORT_SECTIONS, ReportKind, build_report, kind_of
from .render import render_html, render_markdown, write_report

__all__ = ["REPORT_KINDS", "REPORT_SECTIONS", "Fields", "Figure", "Report", "ReportKind", "Section", "Table",
           "Text", "build_report", "kind_of", "render_html", "render_markdown", "write_report"]
