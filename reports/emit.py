"""Delivering a result: its JSON document to stdout or a file (``--out``) and its HTML report
(``--html``), for every command that makes one."""

from __future__ import annotations

import sys

from .output import check_finite, file_name, print_json, to_jsonable


def add_result_arguments(parser, *, out: bool = True) -> None:
    """``--out FILE`` (the result's JSON document, as ``--format json`` prints it) and
    ``--html FILE`` (a self-contained report of it); ``ridgeline report FILE`` reports a saved one."""
    if out:
        parser.add_argument("--out", metavar="FILE.json", type=file_name,
                            help="write the result's JSON document to FILE (instead of stdout with --format "
                                 "json); `ridgeline report FILE` turns it into a report")
    parser.add_argument("--html", metavar="FILE.html", type=file_name, help="write a self-contained HTML report of the result")


def emit_result(doc: dict, args, text: str | None = None, *, out: str | None = None) -> None:
    """Deliver a result document: JSON to ``out`` (default ``args.out``), the HTML report to
    ``args.html``, and on stdout the JSON (``--format json`` without a file) or ``text``. A NaN or
    infinite figure in ``doc`` is an InputError naming its field, whichever way it goes out."""
    if doc is not None:
        check_finite(doc)
    out = out if out is not None else getattr(args, "out", None)
    if out:
        with open(out, "w") as stream:
            print_json(doc, stream)
        print(f"wrote {out}", file=sys.stderr)
    if getattr(args, "html", None):
        from .html import write_report

        for path in write_report(to_jsonable(doc), args.html):
            print(f"wrote {path}", file=sys.stderr)
    if args.format == "json":
        if not out:
            print_json(doc)
    elif text is not None:
        print(text)
