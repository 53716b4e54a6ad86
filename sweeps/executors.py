"""Where tasks run: executors in a registry (``serial``, ``process``, ``dask``).

An executor takes the list of :class:`~sweeps.task.Task` and yields each task's rows as it
completes (in any order). ``process`` (the default) is a local process pool; ``dask`` submits the
same function as ``distributed.Client`` futures, to a running scheduler (``tcp://host:8786``), to
a ``LocalCluster`` it starts for the run (``local:N``) or to a client the caller passes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed

from hwmodels.errors import InputError
from hwmodels.registry import Registry

from .jobs import JOBS
from .task import Task
from .version import ridgeline_version

EXECUTORS: Registry = Registry("sweep executor")
CONNECT_TIMEOUT_S = 3
DASK_MISSING = "Dask is an optional extra: pip install 'ridgeline[distributed]' (or 'dask[distributed]')"


def run_task(task: Task) -> list[dict]:
    """The rows of a task's points: inputs (axis values, knobs), key, status and figures."""
    inputs = {"hw": task.hw, "model": task.model, **task.knobs,
              **{k: v for k, v in task.job_knobs.items() if v is not None}}
    rows = JOBS.get(task.job).run(task)
    by_key = {p["key"]: p for p in task.points}
    return [{**inputs, **by_key[r["key"]]["values"], **r, "job": task.job,
             "ridgeline_version": ridgeline_version()} for r in rows]


def default_workers() -> int:
    """One worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


@EXECUTORS.register("serial", help="in this process, one task after another")
def run_serial(tasks: list[Task], *, workers: int = 1, address=None, client=None) -> Iterator[list[dict]]:
    for task in tasks:
        yield run_task(task)


@EXECUTORS.register("process", help="a local process pool (default: one worker per core)")
def run_process(tasks: list[Task], *, workers: int = 1, address=None, client=None) -> Iterator[list[dict]]:
    if workers <= 1 or len(tasks) <= 1:
        yield from run_serial(tasks)
        return
    pool = ProcessPoolExecutor(max_workers=min(workers, len(tasks)))
    try:
        futures = [pool.submit(run_task, t) for t in tasks]
        for future in as_completed(futures):
            yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def dask_client(address: str):
    """(client, cluster or None) for ``address``: ``tcp://host:port`` or ``local:N``."""
    try:  # an optional extra, imported only for a Dask run
        from distributed import Client, LocalCluster
    except ImportError:
        raise InputError(DASK_MISSING, path="dask") from None
    if address.startswith("local:"):
        count = address.split(":", 1)[1]
        if not count.isdigit() or int(count) < 1:
            raise InputError(f"expected local:N with N >= 1 workers, got '{address}'", path="dask")
        cluster = LocalCluster(n_workers=int(count), threads_per_worker=1, processes=True,
                               dashboard_address=None)
        return Client(cluster), cluster
    if "://" not in address:
        raise InputError(f"expected a scheduler address such as tcp://host:8786 or local:N, got '{address}'",
                         path="dask")
    try:
        return Client(address, timeout=f"{CONNECT_TIMEOUT_S}s"), None
    except (OSError, TimeoutError) as err:
        raise InputError(f"cannot reach the Dask scheduler at {address} within {CONNECT_TIMEOUT_S} s "
                         f"({type(err).__name__}: {err})", path="dask") from None


@EXECUTORS.register("dask", help="distributed.Client futures (a scheduler address, local:N, or a client)")
def run_dask(tasks: list[Task], *, workers: int = 1, address: str | None = None,
             client=None) -> Iterator[list[dict]]:
    try:  # an optional extra, imported only for a Dask run
        from distributed import as_completed as dask_completed
    except ImportError:
        raise InputError(DASK_MISSING, path="dask") from None
    cluster = None
    own = client is None
    if own:
        client, cluster = dask_client(address or f"local:{workers}")
    try:
        futures = client.map(run_task, tasks, pure=False)
        for future in dask_completed(futures):
            yield future.result()
    finally:
        if own:
            client.close()
            if cluster is not None:
                cluster.close()
