"""Printing a benchmark's figures: JSON (``--format json``), or one indented line per figure."""

from __future__ import annotations

import json


def print_figures(figures: dict, fmt: str = "table", indent: str = "") -> None:
    """Print ``figures`` (nested dicts of numbers and strings) as JSON or as an indented table."""
    if fmt == "json":
        print(json.dumps(figures, indent=2))
        return
    for key, value in figures.items():
        if isinstance(value, dict):
            print(f"{indent}{key}")
            print_figures(value, fmt, indent + "  ")
        else:
            shown = f"{value:.4g}" if isinstance(value, float) else value
            print(f"{indent}{key:26s} {shown}")
