"""The BLAS threads a measurement runs with, and whether it gets the cores it asks for.

The thread count is part of what a calibration measures: a GEMM with two threads runs about
twice as fast as with one, so an overlay holds for the count it was measured with and no other.
:func:`resolve_threads` turns ``--threads`` (or its default, the count numpy's BLAS uses
anyway) into a count that this process can really run, or refuses it.

Other programs that keep the cores busy slow a multithreaded kernel down by more than their
share: its threads wait for each other, so one descheduled thread stalls the whole call. Rather
than measuring a different configuration, :class:`CoreGate` checks before every sweep that the
threads get their cores (:func:`core_share`: CPU time obtained over wall time, per thread, while
a GEMM runs on all of them) and waits for a quiet moment, or refuses.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from hwmodels.errors import InputError

from .fingerprint import load_average, physical_cores

QUIET_SHARE = 0.8          # threads that get at least this share of their cores measure cleanly
PROBE_S = 0.15             # how long one probe keeps the threads busy
PROBE_N = 384              # GEMM size of the probe: large enough that every BLAS thread takes part
WAIT_S = {"quick": 60.0, "full": 300.0}   # the longest a calibration waits for a quiet moment
POLL_S = 5.0               # pause between probes while waiting
IF_BUSY = ("wait", "refuse", "measure")


class CoresBusy(RuntimeError):
    """Other programs kept the cores busy for longer than a calibration waits."""


def blas_threads() -> int | None:
    """Threads numpy's BLAS runs with by default (threadpoolctl; honours OMP/OPENBLAS_NUM_THREADS)."""
    from threadpoolctl import threadpool_info

    counts = [p.get("num_threads") for p in threadpool_info() if p.get("user_api") == "blas"]
    counts = [int(c) for c in counts if c]
    return max(counts) if counts else None


def blas_limit(threads: int) -> int | None:
    """The thread count BLAS reports once limited to ``threads`` (a library may cap it lower)."""
    from threadpoolctl import threadpool_info, threadpool_limits

    with threadpool_limits(limits=threads, user_api="blas"):
        counts = [int(p["num_threads"]) for p in threadpool_info()
                  if p.get("user_api") == "blas" and p.get("num_threads")]
    return min(counts) if counts else None


def resolve_threads(threads: int | None) -> int:
    """``threads`` checked against what this process can run; None: what numpy's BLAS uses.

    At most one thread per CPU this process may use (its affinity): more threads than cores
    time the scheduler, not the machine. A BLAS library that caps the count below the request
    (OpenBLAS is built for at most 64 or 256) is refused too, naming its limit.
    """
    cpus = physical_cores()
    if threads is None:
        return max(1, min(blas_threads() or cpus, cpus))
    if threads < 1:
        raise InputError(f"must be at least 1, got {threads}", path="--threads")
    if threads > cpus:
        raise InputError(f"{threads} threads asked for, but this process may use {cpus} CPU(s); a "
                         "calibration times one thread per core at most", path="--threads",
                         suggestion=str(cpus))
    granted = blas_limit(threads)
    if granted is not None and granted < threads:
        raise InputError(f"numpy's BLAS library runs at most {granted} thread(s), {threads} asked for",
                         path="--threads", suggestion=str(granted))
    return threads


def core_share(threads: int, seconds: float = PROBE_S) -> float:
    """CPU time the process obtained over ``threads`` x wall time, while a GEMM kept ``threads``
    BLAS threads busy for about ``seconds`` (1.0: every thread had a core to itself)."""
    from threadpoolctl import threadpool_limits

    a = np.ones((PROBE_N, PROBE_N), dtype=np.float32)
    out = np.empty_like(a)
    with threadpool_limits(limits=threads, user_api="blas"):
        np.matmul(a, a, out=out)                 # wake the pool before the clock starts
        wall0, cpu0 = time.perf_counter(), time.process_time()
        while time.perf_counter() - wall0 < seconds:
            np.matmul(a, a, out=out)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return min(1.0, cpu / (wall * threads)) if wall > 0 else 1.0


@dataclass
class CoreGate:
    """Called before every sweep of a calibration: the threads get their cores, or it waits.

    ``if_busy``: ``wait`` (default) probes again every :data:`POLL_S` seconds, at most
    ``max_wait_s`` in all over the run, then refuses; ``refuse`` refuses at once; ``measure``
    measures anyway and says so (same thread count, slower rates). ``shares``: every probe's
    result, for the fingerprint. ``probe`` and ``sleep`` are injectable for tests.
    """

    threads: int
    if_busy: str = "wait"
    max_wait_s: float = WAIT_S["full"]
    probe: Callable[[int], float] | None = None     # default: core_share
    sleep: Callable[[float], None] = time.sleep
    shares: list[float] = field(default_factory=list)
    waited_s: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self):
        if self.if_busy not in IF_BUSY:
            raise InputError(f"unknown choice '{self.if_busy}' (choose from {', '.join(IF_BUSY)})",
                             path="--if-busy")

    def __call__(self) -> None:
        while True:
            share = (self.probe or core_share)(self.threads)
            self.shares.append(round(share, 3))
            if share >= QUIET_SHARE:
                return
            if self.if_busy == "measure":      # one warning, with the worst share seen
                self.warnings[:] = [
                    f"measured while other programs kept the cores busy ({self.threads} BLAS thread(s) got "
                    f"{min(self.shares):.0%} of their cores at worst); rates may be low: calibrate again on "
                    "a quiet machine"]
                return
            if self.if_busy == "refuse" or self.waited_s + POLL_S > self.max_wait_s:
                raise CoresBusy(self._refusal(share))
            self.sleep(POLL_S)
            self.waited_s += POLL_S

    def _refusal(self, share: float) -> str:
        load = load_average()
        waited = f" after waiting {self.waited_s:g} s" if self.waited_s else ""
        return (f"other programs keep the cores busy: {self.threads} BLAS thread(s) got {share:.0%} of their "
                f"cores{waited} (1-minute load {load[0] if load else 'unknown'} on {physical_cores()} CPU(s)); "
                f"a calibration measures the {self.threads}-thread machine asked for or nothing. Calibrate on a "
                "quiet machine, ask for fewer threads (--threads), or --if-busy measure to accept low rates")
