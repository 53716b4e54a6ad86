"""Writing results: JSON on stdout for machines, aligned tables for people.

``--format json`` prints exactly one JSON document on stdout and nothing else;
warnings and progress go to stderr.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def to_jsonable(obj: Any) -> Any:
    """``obj`` with numpy scalars/arrays, dataclasses, paths and non-finite floats made JSON-safe."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [to_jsonable(v) for v in obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if hasattr(obj, "model_dump"):
        return to_jsonable(obj.model_dump(mode="json"))
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def print_json(obj: Any, stream=None) -> None:
    """Print ``obj`` as one JSON document."""
    stream = stream or sys.stdout
    json.dump(to_jsonable(obj), stream, indent=2, allow_nan=False)
    stream.write("\n")


def format_table(rows: Sequence[dict], columns: Sequence[str] | None = None, floatfmt: str = ".4g") -> str:
    """A plain-text table of ``rows`` (dicts), one line per row."""
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0].keys())

    def cell(v: Any) -> str:
        if isinstance(v, (float, np.floating)):
            return format(float(v), floatfmt)
        return "" if v is None else str(v)

    body = [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(b[i]) for b in body)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(b, widths)) for b in body]
    return "\n".join(lines)


def format_fields(pairs: Sequence[tuple[str, Any]]) -> str:
    """``name  value`` lines, the values aligned: a result's headline figures above its tables."""
    width = max(len(k) for k, _ in pairs)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in pairs)


def add_result_arguments(parser, *, out: bool = True) -> None:
    """``--out FILE`` (the result's JSON document, as ``--format json`` prints it) and
    ``--html FILE`` (a self-contained report of it); ``ridgeline report FILE`` reports a saved one."""
    if out:
        parser.add_argument("--out", metavar="FILE.json",
                            help="write the result's JSON document to FILE (instead of stdout with --format "
                                 "json); `ridgeline report FILE` turns it into a report")
    parser.add_argument("--html", metavar="FILE.html", help="write a self-contained HTML report of the result")


def emit_result(doc: dict, args, text: str | None = None, *, out: str | None = None) -> None:
    """Deliver a result document: JSON to ``out`` (default ``args.out``), the HTML report to
    ``args.html``, and on stdout the JSON (``--format json`` without a file) or ``text``."""
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


def warn(message: str) -> None:
    """A warning for people, on stderr (never on stdout, which may carry JSON)."""
    print(f"warning: {message}", file=sys.stderr)
