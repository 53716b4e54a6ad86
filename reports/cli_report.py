"""``ridgeline report RESULT``: a self-contained HTML page (or Markdown) of a saved result.

RESULT is the JSON document a command wrote with ``--format json --out FILE`` (``simulate``,
``roofline``, ``validate``; the kinds are in :data:`reports.html.REPORT_KINDS`), or the folder
``ridgeline sweep run`` wrote.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .commands import COMMANDS
from .output import print_json


@COMMANDS.register("report", help="HTML (or Markdown) report of a result saved with --format json --out")
def report_command(p) -> None:
    p.description = ("Turn a result's JSON document (or a sweep's folder) into one self-contained HTML file "
                     "(inline figures, CSS and script; no network) or Markdown.")
    p.add_argument("result", metavar="RESULT.json|SWEEP_DIR",
                   help="the JSON a command wrote with --format json --out FILE, or a sweep's folder")
    p.add_argument("--out", metavar="FILE", help="where to write (default: RESULT with .html, or .md with --markdown)")
    p.add_argument("--markdown", action="store_true",
                   help="Markdown instead of HTML (figures as PNG files in <stem>_figures/ beside it)")
    p.add_argument("--format", choices=("table", "json"), default="table",
                   help="json: print what was written as one JSON document")
    p.set_defaults(func=cmd_report)


def cmd_report(args) -> int:
    from .html import kind_of, write_report
    from .html.render import read_result

    if Path(args.result).is_dir():
        from .html.sweep import sweep_document

        doc = sweep_document(args.result)
        default = Path(args.result) / ("report.md" if args.markdown else "report.html")
    else:
        doc = read_result(args.result)
        default = Path(args.result).with_suffix(".md" if args.markdown else ".html")
    kind = kind_of(doc, file=args.result)
    out = Path(args.out) if args.out else default
    paths = write_report(doc, out, markdown=args.markdown)
    if args.format == "json":
        print_json({"kind": kind, "written": [str(p) for p in paths]})
    else:
        for path in paths:
            print(f"wrote {path}", file=sys.stderr)
    return 0
