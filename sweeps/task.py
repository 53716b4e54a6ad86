"""A task: the unit of work an executor hands to a job (:mod:`sweeps.jobs`), built by
:func:`sweeps.points.tasks`. Plain data, so that it pickles to a worker process or a Dask worker."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Task:
    """Points that share hardware reference, non-rate overrides and workload: run together.

    ``knobs``: the workload knobs given (``StepOptions`` fields); ``job_knobs``: the job's own
    knobs, defaults filled in; ``overrides``: hardware path -> YAML value shared by every point;
    ``points``: ``{"key", "values", "overrides", "rates"}`` per point (its axis values, its own
    overrides and, of those, the rates in SI units); ``prices``: dollars per hour by hardware id."""

    job: str
    hw: str
    base_dir: str | None
    model: str
    knobs: dict
    job_knobs: dict
    overrides: dict
    points: list[dict] = field(default_factory=list)
    prices: dict = field(default_factory=dict)
