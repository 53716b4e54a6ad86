"""The Python face of sweeps: :class:`Sweep` (what the ``ridgeline sweep`` commands call).

>>> sweep = Sweep(base={"job": "analyze", "hw": "h100-sxm", "model": "llama-3.1-8b",
...                     "phase": "decode", "context": 1024},
...               axes={"hw.memory.hbm.bandwidth": ["2 TB/s", "8 TB/s"], "batch": [1, 256]})
>>> frame = sweep.run(workers=1)                     # a pandas DataFrame, one row per point
>>> sweep.pareto({"latency_s": "min", "throughput_tok_s": "max"})
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hwmodels.errors import InputError
from hwmodels.yamlio import Document

from . import points as pts
from .executors import EXECUTORS, dask_client, default_workers
from .jobs import JOBS, job_columns
from .pareto import pareto_front, summary
from .spec import SweepSpec, load_spec, parse_constraint, parse_spec
from .store import ResultStore

FIXED_COLUMNS = {"key": "str", "status": "str"}
TRAILING_COLUMNS = {"message": "str", "job": "str", "ridgeline_version": "str"}


def _kind(values) -> str:
    values = [v for v in values if v is not None]
    if values and all(isinstance(v, bool) for v in values):
        return "bool"
    if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "int"
    if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return "float"
    return "str"


class Sweep:
    """A design sweep: a :class:`~sweeps.spec.SweepSpec` and, once run, its results."""

    def __init__(self, base: dict | None = None, axes: dict | None = None, *, mode="grid", seed: int = 0,
                 objectives: dict | None = None, constraints: list | None = None, price_per_hour=None,
                 yes: bool = False, spec: SweepSpec | None = None):
        if spec is None:
            data = {"base": base, "axes": axes or {}, "mode": mode, "seed": seed,
                    "objectives": objectives or {}, "constraints": constraints or []}
            if price_per_hour is not None:
                data["price_per_hour"] = price_per_hour
            spec = parse_spec(data, Document(data, "<sweep>", {}), yes=yes)
        self.spec = spec
        self.results = None
        self.out: Path | None = None

    @classmethod
    def from_yaml(cls, path: str | Path, *, yes: bool = False) -> Sweep:
        """The sweep a spec file describes."""
        return cls(spec=load_spec(path, yes=yes))

    # -- the plan --------------------------------------------------------------------------------
    def points(self) -> list[pts.Point]:
        """Every planned point with its key."""
        return pts.plan(self.spec)

    def columns(self) -> dict[str, str]:
        """Column -> type of the results table."""
        spec = self.spec
        job = JOBS.get(spec.job)
        inputs = {"hw": "str", "model": "str"}
        for name, value in spec.base.items():
            if name not in ("job", "hw", "model") and value is not None:
                inputs[name] = _kind([value])
        for axis in spec.axes:
            inputs[axis.name] = _kind(axis.values)
        outputs = {c: job.outputs.get(c, "float") for c in job_columns(job, bool(spec.price_per_hour))}
        return {**FIXED_COLUMNS, **inputs, **outputs, **TRAILING_COLUMNS}

    # -- running ---------------------------------------------------------------------------------
    def run(self, workers: int | None = None, client=None, *, out: str | Path | None = None,
            resume: bool = False, dask: str | None = None, executor: str | None = None,
            progress: Callable[[int, int], None] | None = None):
        """Run every planned point (those already in ``out`` when resuming are skipped) and return
        the results as a DataFrame. ``workers``: local processes (default: one per core);
        ``client``: a ``distributed.Client`` to submit to; ``dask``: a scheduler address or
        ``local:N``; ``out``: a folder for the resumable store; ``progress(done, total)``."""
        workers = workers or default_workers()
        name = executor or ("dask" if client is not None or dask else "process")
        run_tasks = EXECUTORS.get(name, path="executor")
        cluster = None
        if name == "dask" and client is None:
            # connect first: an unreachable scheduler must not leave a started store behind
            client, cluster = dask_client(dask or f"local:{workers}")
        try:
            return self._run(run_tasks, workers, client, out, resume, progress)
        finally:
            if cluster is not None or (client is not None and dask):
                client.close()
            if cluster is not None:
                cluster.close()

    def _run(self, run_tasks, workers, client, out, resume, progress):
        import pandas as pd  # about half a second: only a run needs it, not loading a spec

        planned = self.points()
        columns = self.columns()
        store = None
        done_keys: set[str] = set()
        if out is not None:
            store = ResultStore(out, columns)
            extra = {"objectives": self.spec.objectives, "constraints": [c.text for c in self.spec.constraints],
                     "columns": columns, "planned": len(planned)}
            done_keys = store.open(self.spec.canonical(), resume=resume, extra=extra)
            self.out = Path(out)
        todo = [p for p in planned if p.key not in done_keys]
        tasks = pts.tasks(self.spec, todo, pts.chunk_size(len(todo), workers))
        rows: list[dict] = []
        done = len(planned) - len(todo)
        if progress:
            progress(done, len(planned))
        try:
            for batch in run_tasks(tasks, workers=workers, client=client):
                if store is not None:
                    store.add(batch)
                else:
                    rows += batch
                done += len(batch)
                if progress:
                    progress(done, len(planned))
        finally:
            if store is not None:
                store.flush()
        if store is not None:
            frame = store.read()
        else:
            frame = pd.DataFrame([{c: r.get(c) for c in columns} for r in rows], columns=list(columns))
        self.results = frame
        return frame

    # -- analysis --------------------------------------------------------------------------------
    def _frame(self, frame):
        if frame is not None:
            return frame
        if self.results is None:
            raise InputError("the sweep has no results yet; call run() first")
        return self.results

    def pareto(self, objectives: dict | None = None, constraints: list | None = None, frame=None):
        """The non-dominated feasible points for ``objectives`` (default: the spec's)."""
        frame = self._frame(frame)
        objectives = objectives or self.spec.objectives
        cons = (self.spec.constraints if constraints is None
                else [parse_constraint(c, frame.columns) for c in constraints])
        return pareto_front(frame, objectives, cons)

    def summary(self, frame=None) -> dict:
        """Points per status and the best feasible point per objective."""
        return summary(self._frame(frame), self.spec.objectives, self.spec.constraints)

    def plot(self, x: str, y: str, color: str | None = None, *, objectives: dict | None = None, ax=None):
        """A scatter of the results (``x`` vs ``y``, coloured by ``color``) with the Pareto front of
        ``objectives`` (default: x and y under the spec's senses) drawn: a matplotlib Figure."""
        from reports.sweep_plot import plot_sweep  # a thin call: drawing lives in reports/ (above sweeps/)

        frame = self._frame(None)
        objectives = objectives or {k: self.spec.objectives.get(k, "min") for k in (x, y)}
        front = pareto_front(frame, objectives, self.spec.constraints)
        return plot_sweep(frame, x, y, color=color, front=front, ax=ax)
