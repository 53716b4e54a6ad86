"""Finding and reading hardware descriptions: catalog ids, files, ``extends:`` overlays.

A reference is a catalog id (``h100-sxm``, ``host``) or a path to a YAML file. A file may
say ``extends: <id or file>``: the base is loaded first (recursively) and the file's fields
are deep-merged over it (mappings merge key by key, anything else replaces). Problems are
reported in the file and at the line that defines the offending field.
"""

from __future__ import annotations

import contextlib
import copy
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import catalog as _catalog_pkg
from .device import Device, device_from_raw
from .errors import InputError, Problem, did_you_mean, unknown_name, warn_problems
from .host import host_raw
from .kinds import HARDWARE_KINDS
from .yamlio import Document, load

CATALOG_DIR = Path(_catalog_pkg.__file__).resolve().parent
HOST_ID = "host"
MAX_EXTENDS_DEPTH = 16


class MergedDocument(Document):
    """A document merged from an ``extends:`` chain: each field is located in the file
    (and line) that set it, the most derived file winning."""

    def __init__(self, data: Any, chain: list[Document]):
        super().__init__(data, chain[-1].file, {})
        self.chain = chain

    def _owner(self, path: tuple) -> Document:
        best, best_len = self.chain[-1], -1
        for doc in reversed(self.chain):
            prefix = tuple(path)
            while prefix and prefix not in doc.lines:
                prefix = prefix[:-1]
            if len(prefix) > best_len:
                best, best_len = doc, len(prefix)
        return best

    def line_of(self, path) -> int | None:
        return self._owner(tuple(path)).line_of(path)

    def problem(self, message: str, path=(), suggestion: str | None = None) -> Problem:
        return self._owner(tuple(path)).problem(message, path, suggestion)


def deep_merge(base: dict, override: dict) -> dict:
    """``override`` merged over ``base``: mappings key by key, other values replaced."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _catalog_files() -> dict[str, Path]:
    return {p.stem: p for p in sorted(CATALOG_DIR.glob("*.yaml"))}


def _exists(path: Path, file: bool = False) -> bool:
    """Whether ``path`` exists; an impossible name (NUL byte, too long) simply does not."""
    try:
        return path.is_file() if file else path.exists()
    except (OSError, ValueError):
        return False


def _is_path(ref: str | Path) -> bool:
    if isinstance(ref, Path):
        return True
    return "/" in ref or "\\" in ref or ref.endswith((".yaml", ".yml")) or _exists(Path(ref), file=True)


def resolve_ref(ref: str | Path, relative_to: Path | None = None, **where) -> tuple[str, Path | None]:
    """``(key, path)`` for a reference: a catalog id's file, a file path, or ``("host", None)``."""
    if isinstance(ref, str) and not ref.strip():
        raise InputError("empty hardware reference; expected a catalog id or a YAML file", **where)
    if not isinstance(ref, (str, Path)):
        raise InputError(f"expected a catalog id or a YAML file name, got {type(ref).__name__}", **where)
    if _is_path(ref):
        path = Path(ref)
        with contextlib.suppress(RuntimeError):   # "~nosuchuser/x" stays as written
            path = path.expanduser()
        if not path.is_absolute() and relative_to is not None and _exists(relative_to / path):
            path = relative_to / path
        if not _exists(path, file=True):
            raise InputError(f"hardware file '{ref}' not found (or not a file)", **where)
        return str(path.resolve()), path
    if ref == HOST_ID:
        return HOST_ID, None
    files = _catalog_files()
    if ref not in files:
        raise unknown_name("hardware id", ref, [*files, HOST_ID], **where)
    return ref, files[ref]


def _read(key: str, path: Path | None) -> Document:
    if path is None:
        raw = host_raw()
        return Document(raw, "<detected host>", {})
    return _read_file(str(path), str(path.resolve()), *_stamp(path))


def _stamp(path: str | Path) -> tuple[int, int, int]:
    """What tells one version of a file from another: modification time, size and inode."""
    stat = Path(path).stat()
    return stat.st_mtime_ns, stat.st_size, stat.st_ino


@lru_cache(maxsize=256)
def _read_file(path: str, _resolved: str, _mtime_ns: int, _size: int, _inode: int) -> Document:
    """The document at ``path`` (named as given); the cache key is the file itself (its resolved
    path, modification time, size and inode: a coarse clock can give two writes one mtime)."""
    return load(path)


def load_raw(ref: str | Path, *, relative_to: Path | None = None, _chain: tuple = (),
             **where) -> tuple[dict, MergedDocument]:
    """The YAML-form mapping of ``ref`` with its ``extends:`` chain merged, and its locator."""
    key, path = resolve_ref(ref, relative_to, **where)
    if key in _chain:
        cycle = " -> ".join([*(_short(k) for k in _chain), _short(key)])
        raise InputError(f"cyclic extends: {cycle}", **where)
    if len(_chain) >= MAX_EXTENDS_DEPTH:
        raise InputError(f"extends chain deeper than {MAX_EXTENDS_DEPTH}", **where)
    doc = _read(key, path)
    if not isinstance(doc.data, dict):
        raise doc.error(f"expected a mapping of fields at the top level, got {type(doc.data).__name__}")
    data = doc.data
    parent = data.get("extends")
    if parent is None:
        return copy.deepcopy(data), MergedDocument(copy.deepcopy(data), [doc])
    if not isinstance(parent, str):
        raise doc.error("extends: expected a catalog id or a YAML file name", ("extends",))
    base_raw, base_doc = load_raw(parent, relative_to=path.parent if path else None,
                                  _chain=(*_chain, key), file=doc.file, line=doc.line_of(("extends",)),
                                  path="extends")
    if base_raw.get("kind") == "system":
        raise doc.error("extends: a device cannot extend a system", ("extends",))
    own = {k: v for k, v in data.items() if k != "extends"}
    merged = deep_merge(base_raw, own)
    if "id" not in own and path is not None:
        merged["id"] = path.stem
        if "name" not in own and "name" in base_raw:
            merged["name"] = f"{base_raw['name']} ({path.stem})"
    merged.pop("extends", None)
    return merged, MergedDocument(merged, [*base_doc.chain, doc])


def _short(key: str) -> str:
    return Path(key).name if "/" in key or "\\" in key else key


# key -> (modification stamps of every file in its extends chain, the device)
_DEVICES: dict[str, tuple[tuple, Device]] = {}


def _stamps(files: list[str]) -> tuple:
    out = []
    for f in files:
        try:
            out.append((f, *_stamp(f)))
        except OSError:
            out.append((f, None))
    return tuple(out)


def _load_device_cached(key: str, path: Path | None = None) -> Device:
    """The device of ``key``, re-read when any file of its ``extends:`` chain has changed.
    ``path`` is the file as the user named it, so that problems name it the same way."""
    hit = _DEVICES.get(key)
    if hit is not None and _stamps([stamp[0] for stamp in hit[0]]) == hit[0]:
        return hit[1]
    raw, doc = load_raw(path if path is not None else key)
    _check_energy_basis(raw, doc)
    device = device_from_raw(raw, doc, origin=key)
    files = [str(Path(d.file).resolve()) for d in doc.chain if not d.file.startswith("<")]
    if len(_DEVICES) >= 256:
        _DEVICES.pop(next(iter(_DEVICES)))
    _DEVICES[key] = (_stamps(files), device)
    return device


def _check_energy_basis(raw: dict, doc) -> None:
    """``power.energy_basis`` names a catalog device (whose TDP rule the energy per FLOP follows)."""
    power = raw.get("power")
    basis = power.get("energy_basis") if isinstance(power, dict) else None
    if basis is not None and str(basis) not in _catalog_files():
        raise doc.error(unknown_name("catalog device", str(basis), _catalog_files()).problems[0].message,
                        ("power", "energy_basis"), suggestion=did_you_mean(str(basis), _catalog_files()))


def load_device(ref: str | Path, overrides: dict | None = None) -> Device:
    """The device named by a catalog id or a YAML file, with optional dotted-path overrides."""
    key, path = resolve_ref(ref)
    return _device(ref, key, path, peek_kind(key, path), overrides)


def _device(ref: str | Path, key: str, path: Path | None, kind: Any, overrides: dict | None) -> Device:
    """:func:`load_device` once ``ref`` is resolved to ``(key, path)`` and its ``kind`` peeked."""
    if key == HOST_ID:
        raw, doc = load_raw(HOST_ID)
        device = device_from_raw(raw, doc, origin="detected")
    elif kind == "system":
        raise InputError(f"'{ref}' describes a system, not a device; use load_system", file=str(path))
    else:
        device = _load_device_cached(key, path)
    device = device.with_overrides(overrides) if overrides else device
    warn_problems(device.warnings)
    return device


def peek_kind(key: str, path: Path | None) -> Any:
    """The ``kind`` a resolved hardware reference declares (an overlay: that of what it extends),
    read without building it; None when the file names none."""
    if path is None:
        return "cpu"
    doc = _read(key, path)
    if isinstance(doc.data, dict):
        if doc.data.get("kind") is None and "extends" in doc.data:
            try:    # an overlay has the kind of what it extends
                return load_raw(path)[0].get("kind", "device")
            except InputError:
                return "device"   # loading it will report the problem where it is
        return doc.data.get("kind")
    return None


def catalog_ids(kind: str | None = None) -> list[str]:
    """The bundled catalog's ids (``host`` included), optionally only those of ``kind``."""
    if kind is not None and kind not in HARDWARE_KINDS:
        raise unknown_name("hardware kind", kind, HARDWARE_KINDS)
    ids = []
    for stem, path in _catalog_files().items():
        if kind is None or peek_kind(stem, path) == kind:
            ids.append(stem)
    if kind in (None, "cpu"):
        ids.append(HOST_ID)
    return sorted(ids)


__all__ = ["load_device", "catalog_ids", "load_raw", "deep_merge", "resolve_ref", "peek_kind"]
