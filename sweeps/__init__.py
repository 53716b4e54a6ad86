"""Design-space sweeps: the spec, points and their keys, executors, the resumable store, Pareto fronts.

* :class:`Sweep` (``Sweep.from_yaml(path)`` or ``Sweep(base=..., axes=...)``): ``.run()`` returns a
  pandas DataFrame, one row per point; ``.pareto(objectives)``; ``.plot(x, y, color=...)``.
* :mod:`sweeps.spec`: the YAML spec, validated with file:line:field errors.
* :mod:`sweeps.jobs`: what a point runs (registry ``JOBS``: analyze, simulate, serve).
* :mod:`sweeps.executors`: where tasks run (registry ``EXECUTORS``: serial, process, dask).
* :mod:`sweeps.store`: ``DIR/results.parquet``, appended atomically, resumable.

The layer sits between the simulator and reports: it composes hardware, workloads, the cost model
and the simulator, and computes no cost and draws nothing of its own.
"""

from .api import Sweep
from .executors import EXECUTORS
from .jobs import JOBS
from .pareto import pareto_front, pareto_mask
from .spec import SweepSpec, load_spec
from .store import read_results

__all__ = ["EXECUTORS", "JOBS", "Sweep", "SweepSpec", "load_spec", "pareto_front", "pareto_mask",
           "read_results"]
