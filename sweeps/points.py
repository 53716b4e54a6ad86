"""Points of a sweep, their keys, and the tasks that run them.

A point is one value per axis on top of ``base``. Its **key** is a hash of its fully resolved
inputs: the resolved hardware description (the YAML form after ``extends:``, hashed once per
hardware reference, plus the point's overrides in SI units), the workload knobs with
``StepOptions.effective`` defaults filled in, the job and its knobs, and the Ridgeline
version. Two spellings of one point ("4 TB/s" and "4000 GB/s", a knob left at its default or
given) get one key; editing a hardware file (or a model or trace file beside the spec) gives new keys.

Points that share a workload (the same model and knobs) and a hardware reference are run
together as one :class:`Task`, so the graph is built once for all of them, and an ``analyze``
task evaluates its rate variants in one vectorized call (:mod:`roofline.variants`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwmodels.errors import InputError
from roofline.variants import rate_path

from .hardware import device_of, hw_digest, load_hw
from .jobs import JOBS
from .spec import SweepSpec, job_workload_knobs, resolved_knobs
from .task import Task
from .version import ridgeline_version

KNOB_SKIP = ("job", "hw", "model")
VECTOR_CHUNK = 2048    # rate variants per vectorized task (a kill loses at most this many)


@dataclass
class Point:
    """One point: its axis values (as stored in the results) and its key."""

    values: dict
    key: str = ""


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
    merged = {**spec.base, **{k: v for k, v in values.items() if not k.startswith("hw.")}}
    job = JOBS.get(spec.job)
    knobs = {k: v for k, v in merged.items() if k not in KNOB_SKIP and k in job_workload_knobs(job)}
    job_knobs = {**job.knobs, **{k: v for k, v in merged.items() if k in job.knobs}}
    overrides = {a.hw_path: a.yaml_value(values[a.name]) for a in spec.axes if a.hw_path}
    return str(merged["hw"]), str(merged["model"]), knobs, job_knobs, overrides


def _content_id(ref, base_dir: Path | None):
    """A hash of the file ``ref`` names (beside the spec) so that editing it changes the key;
    anything else as it is."""
    if not isinstance(ref, str):
        return ref
    path = (base_dir / ref) if base_dir else Path(ref)
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.suffix and path.is_file() else ref


def point_key(spec: SweepSpec, values: dict) -> str:
    """The key of a point: a hash of its fully resolved inputs (module docstring)."""
    hw, model, knobs, job_knobs, overrides = resolved_inputs(spec, values)
    base_dir = str(spec.base_dir) if spec.base_dir else None
    files = {k: _content_id(v, spec.base_dir) for k, v in job_knobs.items()}
    described = {"hw": hw_digest(hw, base_dir), "overrides": overrides, "model": _content_id(model, spec.base_dir),
                 "knobs": resolved_knobs(knobs), "job": spec.job, "job_knobs": {**job_knobs, **files},
                 "version": ridgeline_version()}
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
            if not spec.file:
                raise
            raise InputError(problems=[dataclasses.replace(p, file=p.file or str(spec.file))
                                       for p in err.problems]) from None
        if key not in seen:
            seen.add(key)
            out.append(Point(values, key))
    return out


def tasks(spec: SweepSpec, points: list[Point], chunk: int) -> list[Task]:
    """The points grouped into tasks of at most ``chunk`` points that share a workload graph and
    hardware (an ``analyze`` task keeps all the rate variants of one hardware together)."""
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
