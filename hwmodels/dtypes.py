"""Numeric data types and their storage size.

int4 occupies half a byte; group-quantized formats add scale/zero-point bytes,
which the operators that use them account for explicitly.
"""

from __future__ import annotations

from .errors import unknown_name

DTYPE_BYTES: dict[str, float] = {
    "fp64": 8.0,
    "fp32": 4.0,
    "tf32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "int4": 0.5,
}

DTYPES: tuple[str, ...] = tuple(DTYPE_BYTES)

_ALIASES = {
    "float64": "fp64", "double": "fp64", "float32": "fp32", "float": "fp32",
    "bfloat16": "bf16", "float16": "fp16", "half": "fp16",
    "float8": "fp8", "fp8_e4m3": "fp8", "fp8_e5m2": "fp8", "e4m3": "fp8",
}


def normalize_dtype(name: str, *, path: str | None = None) -> str:
    """The canonical dtype name for ``name`` (accepting torch/numpy spellings)."""
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DTYPE_BYTES:
        raise unknown_name("dtype", name, DTYPES, path=path)
    return key


def dtype_bytes(name: str) -> float:
    """Bytes per element of ``name``."""
    return DTYPE_BYTES[normalize_dtype(name)]
