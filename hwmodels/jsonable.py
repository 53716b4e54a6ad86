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


def dumps_json(obj: Any) -> str:
    """``obj`` as one indented JSON document (no NaN or infinity: those become null first)."""
    return json.dumps(to_jsonable(obj), indent=2, allow_nan=False)
