"""Points of a sweep, their keys, and the tasks that run them.

A point is one value per axis on top of ``base``. Its **key** is a hash of its fully resolved
inputs: the resolved hardware description (the YAML form after ``extends:``, hashed once per
hardware reference, plus the point's overrides in SI units), the workload knobs with
``StepOptions.effective`` defaults filled in, the job and its knobs, and the Ridgeline
version. Two spellings of one point ("4 TB/s" and "4000 GB/s", a knob left at its default or
given) get one key; editing a hardware file gives new keys.

Points that share a workload (the same model and knobs) and a hardware reference are run
together as one :class:`Task`, so the graph is built once for all of them, and an ``analyze``
task evaluates its rate variants in one vectorized call (:mod:`roofline.variants`).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwmodels.errors import InputError

from .spec import SweepSpec, resolved_knobs, workload_knobs
from .version import ridgeline_version

KNOB_SKIP = ("job", "hw", "model")
VECTOR_CHUNK = 2048    # rate variants per vectorized task (a kill loses at most this many)


@functools.lru_cache(maxsize=64)
def _load_hw_cached(ref: str, base_dir: str | None):
    from hwmodels import load_hardware
    from hwmodels.loader import resolve_ref

    if base_dir is not None and not Path(ref).is_absolute() and (Path(base_dir) / ref).is_file():
        ref = str(Path(base_dir) / ref)
    resolve_ref(ref, path="hw")
    return load_hardware(ref)


def load_hw(ref: str, base_dir: Path | None = None):
    """The device or system ``ref`` names (catalog id, or a YAML file relative to ``base_dir``)."""
    return _load_hw_cached(ref, str(base_dir) if base_dir else None)


def _flatten(data, prefix="") -> dict:
    out = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(_flatten(value, path + "."))
        elif not isinstance(value, (dict, list)):
            out[path] = value
    return out


def device_of(hw):
    return hw.first_accelerator() if hasattr(hw, "accelerators") else hw


# schema fields that hold mappings (set their entries instead) or free text
_NOT_SCALAR = {"peak", "systolic", "dsp", "efficiency_curve", "energy_per_flop", "notes"}


def hardware_fields(hw) -> dict:
    """Dotted path -> current YAML value of every field of ``hw`` (a system: its first accelerator)
    that an axis can set, plus the optional schema fields of its engines, memory levels and links."""
    from hwmodels.schema import EngineSpec, LinkSpec, MemoryLevelSpec, PowerSpec

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
def _hw_digest(ref: str, base_dir: str | None) -> str:
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
    from hwmodels.system import system_from_raw
    from hwmodels.yamlio import Document

    raw = json.loads(json.dumps(hw.raw, default=str))
    for entry in raw["devices"]:
        entry["overrides"] = {**(entry.get("overrides") or {}), **overrides}
    return system_from_raw(raw, Document(raw, "<overrides>", {}), base_dir)


@dataclass
class Point:
    """One point: its axis values (as stored in the results) and its key."""

    values: dict
    key: str = ""


@dataclass
class Task:
    """Points that share hardware reference, non-rate overrides and workload: run together."""

    job: str
    hw: str
    base_dir: str | None
    model: str
    knobs: dict
    job_knobs: dict
    overrides: dict                  # path -> YAML value shared by every point of the task
    points: list[dict] = field(default_factory=list)   # {"key", "values", "overrides"}
    prices: dict = field(default_factory=dict)


def _draw(spec: SweepSpec) -> list[tuple]:
    """Index tuples (one index per axis) of the points the mode draws."""
    sizes = [len(a.values) for a in spec.axes]
    if spec.mode == "grid":
        return list(itertools.product(*(range(n) for n in sizes)))
    rng = np.random.default_rng(spec.seed)
    n = int(spec.samples)
    if spec.mode == "random":
        return [tuple(int(rng.integers(size)) for size in sizes) for _ in range(n)]
    # latin hypercube: each axis cut into n strata, each stratum drawn once, strata paired at random
    columns = [np.floor((rng.permutation(n) + rng.random(n)) / n * size).astype(int) for size in sizes]
    return [tuple(int(col[i]) for col in columns) for i in range(n)]


def resolved_inputs(spec: SweepSpec, values: dict) -> tuple[str, str, dict, dict, dict]:
    """(hw ref, model, workload knobs given, job knobs, hw overrides in YAML form) of a point."""
    from .jobs import JOBS

    merged = {**spec.base, **{k: v for k, v in values.items() if not k.startswith("hw.")}}
    knobs = {k: v for k, v in merged.items() if k not in KNOB_SKIP and k in workload_knobs()}
    job = JOBS.get(spec.job)
    job_knobs = {**job.knobs, **{k: v for k, v in merged.items() if k in job.knobs}}
    overrides = {a.hw_path: a.yaml_value(values[a.name]) for a in spec.axes if a.hw_path}
    return str(merged["hw"]), str(merged["model"]), knobs, job_knobs, overrides


def point_key(spec: SweepSpec, values: dict) -> str:
    """The key of a point: a hash of its fully resolved inputs (module docstring)."""
    hw, model, knobs, job_knobs, overrides = resolved_inputs(spec, values)
    base_dir = str(spec.base_dir) if spec.base_dir else None
    model_path = (spec.base_dir / model) if spec.base_dir else Path(model)
    model_id = (hashlib.sha256(model_path.read_bytes()).hexdigest()
                if model_path.suffix and model_path.is_file() else model)
    described = {"hw": _hw_digest(hw, base_dir), "overrides": overrides, "model": model_id,
                 "knobs": resolved_knobs(knobs), "job": spec.job, "job_knobs": job_knobs, "version": ridgeline_version()}
    text = json.dumps(described, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def plan(spec: SweepSpec) -> list[Point]:
    """Every point of the sweep with its key, in drawing order; a point drawn twice once."""
    out, seen = [], set()
    for index in _draw(spec):
        values = {a.name: a.values[i] for a, i in zip(spec.axes, index)}
        try:
            key = point_key(spec, values)
        except InputError as err:
            raise (err.with_file(spec.file) if spec.file else err) from None
        if key not in seen:
            seen.add(key)
            out.append(Point(values, key))
    return out


def tasks(spec: SweepSpec, points: list[Point], chunk: int) -> list[Task]:
    """The points grouped into tasks of at most ``chunk`` points that share a workload graph and
    hardware (an ``analyze`` task keeps all the rate variants of one hardware together)."""
    from roofline.variants import rate_path

    from .jobs import JOBS

    vectorized = JOBS.get(spec.job).vectorized
    base_dir = str(spec.base_dir) if spec.base_dir else None
    groups: dict[str, Task] = {}
    rates: dict[tuple, bool] = {}

    def is_rate(hw: str, path: str) -> bool:
        if (hw, path) not in rates:
            rates[hw, path] = rate_path(device_of(load_hw(hw, spec.base_dir)), path)
        return rates[hw, path]

    for point in points:
        hw, model, knobs, job_knobs, overrides = resolved_inputs(spec, point.values)
        # analyze: rate variants of one device in one vectorized call; the other overrides (and,
        # for jobs that run point by point, none) are shared by the task
        varied = {p: v for p, v in overrides.items() if not vectorized or is_rate(hw, p)}
        shared = {p: v for p, v in overrides.items() if p not in varied}
        gid = json.dumps([hw, model, knobs, job_knobs, shared], sort_keys=True, default=repr)
        task = groups.get(gid)
        if task is None:
            task = groups[gid] = Task(spec.job, hw, base_dir, model, knobs, job_knobs, shared,
                                      prices=dict(spec.price_per_hour))
        task.points.append({"key": point.key, "values": point.values, "overrides": varied,
                            "rates": {p: point.values[f"hw.{p}"] for p in varied}})
    out = []
    for task in groups.values():
        size = VECTOR_CHUNK if vectorized else chunk
        for i in range(0, len(task.points), max(1, size)):
            out.append(Task(**{**task.__dict__, "points": task.points[i:i + size]}))
    return out


def chunk_size(n_points: int, workers: int) -> int:
    """Points per task: about four tasks per worker, at most 32 points (what a kill may lose)."""
    return max(1, min(32, math.ceil(n_points / max(1, 4 * workers))))
