"""CLI flags generated from a dataclass: one flag per field, from the field's metadata.

A field's metadata may carry ``help``, ``type`` (int, float, str, bool; any other value is read as
a string), ``choices``, ``flag`` (the spelling when not ``--name-with-dashes``; for a bool, a flag
that flips the default) and ``cli`` (False: not offered). Flags default to "not given", so the
dataclass's own defaults (and its validation) decide what an omitted flag means::

    add_dataclass_arguments(parser, StepOptions)
    args = parser.parse_args(argv)
    options = dataclass_from_args(args, StepOptions)
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

_PARSERS = {int: int, float: float}


def cli_fields(cls) -> list[dataclasses.Field]:
    """The fields of ``cls`` the CLI offers."""
    return [f for f in dataclasses.fields(cls) if f.init and f.metadata.get("cli", True)]


def _flag(f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _help(f: dataclasses.Field) -> str:
    text = f.metadata.get("help", "")
    lo, hi = f.metadata.get("min"), f.metadata.get("max")
    if lo is not None and hi is not None:
        text += f"; in {'(' if f.metadata.get('min_open') else '['}{lo:g}, {hi:g}]"
    elif lo is not None:
        text += f"; {'>' if f.metadata.get('min_open') else '>='} {lo:g}"
    if f.default is not None and f.default is not dataclasses.MISSING and f.metadata.get("type") is not bool:
        text += f" (default {f.default})"
    return text.replace("%", "%%")


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls, *, group: str | None = None) -> None:
    """Add one flag per CLI field of dataclass ``cls`` to ``parser`` (in an argument group if named)."""
    target = parser.add_argument_group(group) if group else parser
    for f in cli_fields(cls):
        kind = f.metadata.get("type")
        if kind is bool:
            target.add_argument(_flag(f), dest=f.name, action="store_const", const=not f.default, default=None,
                                help=_help(f))
            continue
        choices = f.metadata.get("choices") or None
        target.add_argument(_flag(f), dest=f.name, type=_PARSERS.get(kind, str), choices=choices, default=None,
                            help=_help(f), metavar=None if choices else f.name.upper())


def given_fields(args: argparse.Namespace, cls) -> dict[str, Any]:
    """The CLI fields of ``cls`` that were given on the command line, with their values."""
    return {f.name: getattr(args, f.name) for f in cli_fields(cls) if getattr(args, f.name, None) is not None}


def dataclass_from_args(args: argparse.Namespace, cls, **extra):
    """An instance of ``cls`` from the flags given in ``args`` (plus ``extra`` fields); the
    omitted ones keep the dataclass's defaults, and its own validation runs."""
    return cls(**given_fields(args, cls), **extra)
