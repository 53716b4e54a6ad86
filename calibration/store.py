"""Writing calibration results atomically, and reading them back.

Every file is written to a temporary name in the destination folder and moved into place
with :func:`os.replace` (atomic on POSIX and Windows), so an interrupted run or a full disk
leaves either the previous file or none, never half a file. A calibration writes its files
into a staging folder that is then moved into place as a whole (:mod:`calibration.atomic_set`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from hwmodels.errors import InputError
from hwmodels.jsonable import to_jsonable

MEASUREMENTS_STEM = "measurements"
FINGERPRINT_NAME = "fingerprint.json"
FIT_SUMMARY_NAME = "fit.json"


def ensure_writable_dir(path: str | Path) -> Path:
    """Create ``path`` if needed and check that files can be created in it (InputError if not)."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".ridgeline-probe-", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InputError(f"cannot write to output folder: {exc.strerror or exc}", file=str(out),
                         path="--out") from None
    return out


def _file_mode(path: Path) -> int:
    """The permissions ``path`` should end with: those of the file it replaces, else what a plain
    ``open(path, "w")`` would give (0o666 less the umask); mkstemp's 0o600 would hide the overlay
    from the other users it is written for."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then move it into place.

    On any exception (KeyboardInterrupt included) the temporary file is removed and ``path``
    is left as it was.
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.chmod(tmp, _file_mode(path))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
    return atomic_write(path, write)


def has_parquet() -> bool:
    return importlib.util.find_spec("pyarrow") is not None


def write_measurements(frame: pd.DataFrame, out_dir: Path, fmt: str = "auto") -> Path:
    """The measurement table as Parquet (when pyarrow is there and fmt allows) or CSV."""
    use_parquet = fmt == "parquet" or (fmt == "auto" and has_parquet())
    if use_parquet:
        return atomic_write(out_dir / f"{MEASUREMENTS_STEM}.parquet",
                            lambda tmp: frame.to_parquet(tmp, index=False))
    return atomic_write(out_dir / f"{MEASUREMENTS_STEM}.csv", lambda tmp: frame.to_csv(tmp, index=False))


def measurements_file(folder: str | Path) -> Path | None:
    """The measurement table a calibration wrote in ``folder`` (Parquet first, then CSV), or None."""
    for ext in ("parquet", "csv"):
        path = Path(folder) / f"{MEASUREMENTS_STEM}.{ext}"
        if path.is_file():
            return path
    return None


def read_measurements(path: str | Path) -> pd.DataFrame:
    """Measurements from a file, or from the folder a calibration wrote (Parquet or CSV)."""
    p = Path(path)
    if p.is_dir():
        found = measurements_file(p)
        if found is None:
            raise InputError("no measurements.parquet or measurements.csv here "
                             "(run 'ridgeline calibrate --out DIR' first)", file=str(p))
        p = found
    try:
        if p.suffix == ".parquet":
            return pd.read_parquet(p)
        return pd.read_csv(p)
    except FileNotFoundError:
        raise InputError("file not found", file=str(p)) from None
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read measurements: {exc}", file=str(p)) from None


def write_json(path: Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n")


class _FlowSeqDumper(yaml.SafeDumper):
    """Writes short numeric lists (curve points) inline so overlays stay easy to read."""


def _represent_list(dumper: yaml.SafeDumper, data: list):
    flow = len(data) <= 4 and all(isinstance(v, (int, float)) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_FlowSeqDumper.add_representer(list, _represent_list)


def overlay_text(overlay: dict, header: str = "") -> str:
    """The YAML text of an overlay dict, with an optional comment header."""
    body = yaml.dump(overlay, Dumper=_FlowSeqDumper, sort_keys=False, default_flow_style=False, width=100)
    comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return comment + body


def write_overlay(path: Path, overlay: dict, header: str = "") -> Path:
    """Write the overlay YAML atomically."""
    return atomic_write_text(path, overlay_text(overlay, header))
