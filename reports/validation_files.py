"""Writing a validation report to a folder: validation.json (the result document), .csv (one
row per prediction), .md (the text tables) and .png (predicted against measured, log-log)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from . import figures
from .output import to_jsonable

# (part of the report, panel title) in the order the report lists them
PARTS = (("kernels", "1) held-out kernels (s)"), ("end_to_end", "2) end to end (s)"),
         ("public", "3) public measurements (row units)"))


def validation_png(report) -> bytes:
    """The predicted-against-measured figure of a :class:`calibration.validate.ValidationReport`."""
    from .html.sections import validation_source

    parts = [(title, getattr(report, key)) for key, title in PARTS]
    title = f"ridgeline validate: {validation_source(report.to_dict())} against measurements"
    return figures.png_bytes(figures.validation_figure(parts, title=title))


def write_validation(report, out_dir: Path, text: str, doc: dict | None = None) -> list[Path]:
    """validation.json (``doc``, by default the report's dict), validation.csv, validation.md and
    validation.png in ``out_dir``, each written atomically."""
    from calibration.store import atomic_write, atomic_write_text

    out_dir.mkdir(parents=True, exist_ok=True)
    body = json.dumps(to_jsonable(doc or report.to_dict()), indent=2, allow_nan=False) + "\n"
    paths = [atomic_write_text(out_dir / "validation.json", body)]
    frame = pd.DataFrame(report.rows())
    paths.append(atomic_write(out_dir / "validation.csv", lambda tmp: frame.to_csv(tmp, index=False)))
    paths.append(atomic_write_text(out_dir / "validation.md", "```\n" + text + "\n```\n"))
    png = validation_png(report)
    paths.append(atomic_write(out_dir / "validation.png", lambda tmp: tmp.write_bytes(png)))
    return paths
