"""Writing results: JSON on stdout for machines, aligned tables for people.

``--format json`` prints exactly one JSON document on stdout and nothing else;
warnings and progress go to stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hwmodels.errors import InputError
from hwmodels.jsonable import dumps_json, to_jsonable  # noqa: F401 - to_jsonable is offered here too


def check_finite(obj: Any) -> Any:
    """``obj`` itself, after checking that no figure in it is NaN or infinite (InputError naming the
    field otherwise): the boundary every result crosses on its way out. Inputs are range-checked
    where they are read; this catches a figure that still overflows."""
    to_jsonable(obj, finite=True)
    return obj


def print_json(obj: Any, stream=None, *, finite: bool = True) -> None:
    """Print ``obj`` as one JSON document. With ``finite`` (the default) a NaN or infinite figure
    is an InputError naming its field, never a ``null`` in the output."""
    stream = stream or sys.stdout
    stream.write(dumps_json(obj, finite=finite) + "\n")


def file_name(text: str) -> str:
    """argparse type of an output file option: a non-empty name (``--trace ''`` would write nothing)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a file name, got an empty string")
    return text


PLOT_SUFFIXES = (".png", ".svg", ".pdf")


def check_plot_name(path: str, flag: str = "plot") -> None:
    """A plot file name must end in a format matplotlib writes (checked before any work)."""
    if Path(path).suffix.lower() not in PLOT_SUFFIXES:
        raise InputError(f"--{flag} must end in {', '.join(PLOT_SUFFIXES)}, got '{path}'", path=flag)


def plot_figure(fig, path: str) -> None:
    """Write ``fig`` to ``path``; a file that cannot be written is an InputError."""
    try:
        fig.savefig(path)
    except OSError as err:
        raise InputError(f"cannot write the plot: {err.strerror or err}", file=path) from None


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


def warn(message: str) -> None:
    """A warning for people, on stderr (never on stdout, which may carry JSON)."""
    print(f"warning: {message}", file=sys.stderr)
