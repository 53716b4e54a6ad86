"""The hardware of a sweep's points: loading a reference once per process, the fields an axis
may set, the digest a point's key holds, and overrides applied to a device or a system.

A reference is a catalog id or a YAML file (relative to the spec's folder). An axis
``hw.<path>`` sets one field of the YAML form (``Device.with_overrides``); on a system it sets it
on every device of the system.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

from hwmodels.loader import resolve_ref
from hwmodels.schema import EngineSpec, LinkSpec, MemoryLevelSpec, PowerSpec
from hwmodels.system import load_hardware, system_from_raw
from hwmodels.yamlio import Document

# schema fields that hold mappings (set their entries instead) or free text
_NOT_SCALAR = {"peak", "systolic", "dsp", "efficiency_curve", "energy_per_flop", "notes"}


@functools.lru_cache(maxsize=64)
def _load_hw_cached(ref: str, base_dir: str | None):
    if base_dir is not None and not Path(ref).is_absolute() and (Path(base_dir) / ref).is_file():
        ref = str(Path(base_dir) / ref)
    resolve_ref(ref, path="hw")
    return load_hardware(ref)


def load_hw(ref: str, base_dir: str | Path | None = None):
    """The device or system ``ref`` names (catalog id, or a YAML file relative to ``base_dir``)."""
    return _load_hw_cached(ref, str(base_dir) if base_dir else None)


def device_of(hw):
    """``hw`` itself (a device), or the first accelerator of a system."""
    return hw.first_accelerator() if hasattr(hw, "accelerators") else hw


def _flatten(data, prefix="") -> dict:
    out = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(_flatten(value, path + "."))
        elif not isinstance(value, (dict, list)):
            out[path] = value
    return out


def hardware_fields(hw) -> dict:
    """Dotted path -> current YAML value of every field of ``hw`` (a system: its first accelerator)
    that an axis can set, plus the optional schema fields of its engines, memory levels and links."""
    device = device_of(hw)
    fields = _flatten({k: v for k, v in device.raw.items() if k not in ("id", "name", "source", "notes",
                                                                          "extends")})
    fields = {k: v for k, v in fields.items() if not k.endswith(".notes")}
    raw = device.raw
    for section, spec in (("engines", EngineSpec), ("memory", MemoryLevelSpec), ("links", LinkSpec)):
        for name in raw.get(section, {}):
            for f in spec.model_fields:
                if f not in _NOT_SCALAR:
                    fields.setdefault(f"{section}.{name}.{f}", None)
    for f in PowerSpec.model_fields:
        if f not in _NOT_SCALAR:
            fields.setdefault(f"power.{f}", None)
    return fields


@functools.lru_cache(maxsize=64)
def hw_digest(ref: str, base_dir: str | None) -> str:
    """A hash of the resolved description ``ref`` names (after ``extends:``; a system with its
    devices): editing a hardware file changes the keys of its points."""
    hw = _load_hw_cached(ref, base_dir)
    if hasattr(hw, "accelerators"):
        described = {"system": hw.raw, "devices": {n: d.raw for n, d in hw.devices.items()}}
    else:
        described = hw.raw
    return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()


def with_overrides(hw, overrides: dict, base_dir: Path | None = None):
    """``hw`` with dotted-path ``overrides`` (YAML values); on a system, on every device of it."""
    if not overrides:
        return hw
    if not hasattr(hw, "accelerators"):
        return hw.with_overrides(overrides)
    raw = json.loads(json.dumps(hw.raw, default=str))
    for entry in raw["devices"]:
        entry["overrides"] = {**(entry.get("overrides") or {}), **overrides}
    return system_from_raw(raw, Document(raw, "<overrides>", {}), base_dir)
