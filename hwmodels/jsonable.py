"""Results as JSON: the one conversion every layer that writes JSON uses (the CLI's
``--format json``, calibration's measurement and validation files).

It sits in the bottom layer so that calibration writes its files without importing ``reports``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError


def to_jsonable(obj: Any, *, finite: bool = False, path: str = "") -> Any:
    """``obj`` with numpy scalars/arrays, dataclasses, paths and non-finite floats made JSON-safe.

    Non-finite floats become ``None``; with ``finite`` they are an InputError naming their field
    (``path``, dotted) instead: a result must never carry a NaN or infinite figure."""
    def at(key) -> str:
        return f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else str(key)

    if isinstance(obj, dict):
        return {str(k): to_jsonable(v, finite=finite, path=at(k)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [to_jsonable(v, finite=finite, path=at(i)) for i, v in enumerate(obj)]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj), finite=finite, path=path)
    if hasattr(obj, "model_dump"):   # python mode: pydantic's JSON mode would turn inf into null unseen
        return to_jsonable(obj.model_dump(mode="python"), finite=finite, path=path)
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist(), finite=finite, path=path)
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item(), finite=finite, path=path)
    if isinstance(obj, float) and not math.isfinite(obj):
        if finite:
            raise InputError(f"the result's figure is {obj}, not a finite number: an input is outside the "
                             "range the model computes with (see any warnings above)", path=path or None)
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def dumps_json(obj: Any, *, finite: bool = False) -> str:
    """``obj`` as one indented JSON document. NaN and infinity become null, or with ``finite`` are
    an InputError naming their field."""
    return json.dumps(to_jsonable(obj, finite=finite), indent=2, allow_nan=False)
