"""The resumable result store: ``DIR/results.parquet``, appended in small atomic batches.

``results.parquet`` is a Parquet dataset (a folder of part files, as Spark and Dask write them;
``pandas.read_parquet`` reads it whole). The rows of each finished task (a few dozen points, see
:func:`sweeps.points.chunk_size`) become one part, written to a hidden
temporary name and renamed into place (``os.replace`` is atomic), so a sweep killed at any
moment (SIGKILL included) leaves only whole parts: it loses at most the tasks in flight and never
stores a row twice, because a resumed sweep skips every key already stored.
``DIR/spec.json`` holds the spec's canonical form: resuming with a different spec is refused,
with the difference named.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

from hwmodels.errors import InputError

RESULTS = "results.parquet"
SPEC = "spec.json"


def _pyarrow():
    try:  # an optional extra: imported when results are written or read
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise InputError("writing sweep results needs pyarrow: pip install 'ridgeline[parquet]'") from None
    return pyarrow


def schema(columns: dict[str, str]):
    """A pyarrow schema from column -> "float" | "int" | "str" | "bool"."""
    pa = _pyarrow()
    types = {"float": pa.float64(), "int": pa.int64(), "str": pa.string(), "bool": pa.bool_()}
    return pa.schema([(name, types[kind]) for name, kind in columns.items()])


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: stored {json.dumps(a, default=str)}, spec {json.dumps(b, default=str)}")
    return out


class ResultStore:
    """The results of one sweep in ``folder`` (see module docstring)."""

    def __init__(self, folder: str | Path, columns: dict[str, str]):
        self.folder = Path(folder)
        self.parts = self.folder / RESULTS
        self.columns = columns
        self._pending: list[dict] = []

    def open(self, canonical: dict, *, resume: bool, extra: dict | None = None) -> set[str]:
        """Prepare the folder for ``canonical`` (the spec's canonical form; ``extra``: what is kept
        beside it but may change, e.g. objectives); the keys already stored."""
        spec_file = self.folder / SPEC
        canonical = json.loads(json.dumps(canonical, default=str))
        if spec_file.exists() or self.parts.exists():
            if not resume:
                raise InputError(f"{self.folder} already holds a sweep; pass --resume to continue it, or "
                                 "choose another --out", path="out")
            try:
                stored = json.loads(spec_file.read_text(encoding="utf-8"))["spec"]
            except (OSError, ValueError, KeyError, TypeError):
                stored = {}
            diff = _differences(stored, canonical)
            if diff:
                raise InputError(f"{self.folder} holds a sweep of a different spec; not resuming it: "
                                 + "; ".join(diff[:5]) + (" ..." if len(diff) > 5 else ""), path="out")
            for partial in self.parts.glob(".part-*.tmp"):   # a part a kill interrupted mid-write
                partial.unlink()
            keys = self.keys()
        else:
            self.parts.mkdir(parents=True, exist_ok=True)
            keys = set()
        document = {"spec": canonical, **json.loads(json.dumps(extra or {}, default=str))}
        _atomic_write(spec_file, json.dumps(document, indent=2, sort_keys=True).encode())
        return keys

    def keys(self) -> set[str]:
        """Keys of every stored row."""
        frame = self.read(columns=["key"])
        return set(frame["key"]) if len(frame) else set()

    def add(self, rows: list[dict]) -> None:
        """Store the rows of one finished task as one part (a task holds at most a few dozen
        points, or one vectorized batch), so a kill loses only the tasks still running."""
        self._pending += rows
        self.flush()

    def flush(self) -> None:
        """Write the queued rows as one part (atomically)."""
        if not self._pending:
            return
        pa = _pyarrow()
        table = pa.Table.from_pylist([{c: _cell(r.get(c), kind) for c, kind in self.columns.items()}
                                      for r in self._pending], schema=schema(self.columns))
        name = f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"
        tmp = self.parts / f".{name}.tmp"
        pa.parquet.write_table(table, tmp)
        os.replace(tmp, self.parts / name)
        self._pending = []

    def read(self, columns: list[str] | None = None):
        """Every stored row as a DataFrame (parts in the order they were written)."""
        return read_results(self.folder, columns)


def _cell(value, kind: str):
    """``value`` as column type ``kind`` holds it (a str column takes any value's text)."""
    if value is None:
        return None
    if kind == "str" and not isinstance(value, str):
        return str(value)
    if kind == "float":
        return float(value)
    return value


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def read_results(folder: str | Path, columns: list[str] | None = None):
    """The rows stored in ``folder`` (a sweep's ``--out``) as a pandas DataFrame."""
    import pandas as pd  # about half a second: only reading results needs it

    pa = _pyarrow()
    parts_dir = Path(folder) / RESULTS
    if not parts_dir.is_dir():
        raise InputError(f"no sweep results here (expected {parts_dir})", file=str(folder))
    parts = sorted(p for p in parts_dir.glob("part-*.parquet"))
    tables = [pa.parquet.read_table(p, columns=columns) for p in parts]
    if not tables:
        return pd.DataFrame(columns=columns or [])
    return pa.concat_tables(tables, promote_options="default").to_pandas()


def read_spec(folder: str | Path) -> dict:
    """The canonical spec stored with a sweep's results."""
    path = Path(folder) / SPEC
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"no sweep here (expected {path})", file=str(folder)) from None
    except (OSError, ValueError) as err:
        raise InputError(f"cannot read {path}: {err}", file=str(folder)) from None
