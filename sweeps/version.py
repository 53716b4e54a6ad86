"""The Ridgeline version that goes into every point's key and result row."""

from __future__ import annotations

import functools
from importlib import metadata
from pathlib import Path

import tomllib


@functools.lru_cache(maxsize=1)
def ridgeline_version() -> str:
    """The version of this source tree (its pyproject.toml), else of the installed distribution."""
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    try:
        return tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        try:
            return metadata.version("ridgeline")
        except metadata.PackageNotFoundError:
            return "unknown"
