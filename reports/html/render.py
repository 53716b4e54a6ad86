"""A :class:`~reports.html.blocks.Report` as one self-contained HTML page (Jinja2 templates in
``templates/``: CSS, script and PNGs inlined, nothing fetched) or as Markdown (figures written as
PNG files beside it)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from hwmodels.errors import InputError

from .blocks import Fields, Figure, Report, Table, Text

TEMPLATES = Path(__file__).parent / "templates"
MARKDOWN_MAX_ROWS = 40


def version() -> str:
    """The installed Ridgeline's version (the source tree's when it is not installed)."""
    from importlib import metadata

    try:
        return metadata.version("ridgeline")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _environment():
    try:
        import jinja2
    except ImportError:
        raise InputError("HTML reports need Jinja2: pip install 'ridgeline[html]'", path="html") from None
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                              autoescape=jinja2.select_autoescape(["html", "j2"]), trim_blocks=False)


def render_html(report: Report) -> str:
    """The report as one HTML page that needs no network (PNG as base64 data, CSS and script inline)."""
    env = _environment()   # before markupsafe: it comes with Jinja2, whose absence is a clean error
    from markupsafe import Markup

    macros = env.get_template("blocks.html.j2").module

    def block(b) -> Markup:
        if isinstance(b, Fields):
            return Markup(macros.fields(b))
        if isinstance(b, Table):
            return Markup(macros.table(b))
        if isinstance(b, Figure):
            return Markup(macros.figure(b, base64.b64encode(b.png).decode("ascii")))
        if isinstance(b, Text):
            return Markup(macros.text(b))
        raise TypeError(f"unknown report block {type(b).__name__}")

    return env.get_template("report.html.j2").render(report=report, block=block, version=version())


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(columns: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(_md_escape(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(_md_escape(v) for v in row) + " |" for row in rows]
    return out


def render_markdown(report: Report, figures_dir: Path | None = None, link_base: str = "") -> str:
    """The report as Markdown. Figures are written as PNG files into ``figures_dir`` and linked
    (as ``link_base/name.png``); without a folder they are left out with a note."""
    lines = [f"# {report.title}", "", f"_{report.subtitle}_", ""]
    lines += _md_table(["", ""], [[f"**{k}**", v] for k, v in report.headline]) + [""]
    for section in report.sections:
        lines += [f"## {section.title}", ""]
        for b in section.blocks:
            if isinstance(b, Fields):
                lines += _md_table(["", ""], [[k, v] for k, v in b.rows])
            elif isinstance(b, Table):
                shown = b.rows[:MARKDOWN_MAX_ROWS]
                if b.caption:
                    lines += [f"**{b.caption}**", ""]
                lines += _md_table(b.columns, [[b.cell(c, v) for c, v in zip(b.columns, row)] for row in shown])
                if len(b.rows) > len(shown):
                    lines += ["", f"({len(b.rows) - len(shown)} more rows in the HTML report)"]
            elif isinstance(b, Figure):
                if figures_dir is None:
                    lines.append(f"_(figure '{b.name}' left out: write the report with --out to get its PNG)_")
                else:
                    figures_dir.mkdir(parents=True, exist_ok=True)
                    (figures_dir / f"{b.name}.png").write_bytes(b.png)
                    lines += [f"![{b.name}]({link_base}{b.name}.png)", "", f"_{b.caption}_"]
            elif isinstance(b, Text):
                lines += ["```", b.text, "```"] if b.pre else [b.text]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def read_result(path: str | Path) -> dict:
    """A result document from a JSON file; InputError when it is not one."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"no such file: {path}", file=str(path)) from None
    except json.JSONDecodeError as err:
        raise InputError(f"not JSON ({err.msg})", file=str(path), line=err.lineno) from None


def write_report(doc: dict, path: str | Path, *, markdown: bool = False) -> list[Path]:
    """Write the report of result document ``doc`` to ``path`` (HTML, or Markdown with its
    figures in ``<stem>_figures/``); returns the files written."""
    from .kinds import build_report

    path = Path(path)
    report = build_report(doc)
    if markdown:
        folder = path.with_name(f"{path.stem}_figures")
        path.write_text(render_markdown(report, folder, f"{folder.name}/"))
        return [path, *sorted(folder.glob("*.png"))]
    path.write_text(render_html(report))
    return [path]
