"""Timing discipline for micro-benchmarks.

A measurement is trusted only when it is repeatable: each kernel is warmed up, then run
in samples long enough for the clock to resolve (a sample repeats the kernel ``inner``
times), and the median sample is the answer. The spread is the interquartile range over
the median; above ``max_spread`` the measurement is retried with twice the samples (a
bounded number of times) and then refused with a message that says why. Interference on a
shared machine only ever adds time, so :func:`measure_best` times a kernel in several passes
(interleaved with other kernels by the caller, or back to back) and keeps the smallest
trusted median.

The clock is injectable: tests drive the harness with a fake clock and a noisy function.
On a GPU, ``sync`` (e.g. ``torch.cuda.synchronize``) runs before each clock read, or a
:class:`Timer` built on CUDA events replaces the host clock.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np


class MeasurementRefused(RuntimeError):
    """A kernel whose timing spread stayed too wide to trust after every retry."""

    def __init__(self, name: str, spread: float, limit: float, attempts: int):
        self.name = name
        self.spread = spread
        self.limit = limit
        self.attempts = attempts
        super().__init__(
            f"{name}: timing spread {spread:.1%} (IQR/median) is above the {limit:.0%} limit after "
            f"{attempts} attempt(s); the machine is too noisy to trust this measurement "
            "(close other programs, pin the CPU frequency, or raise --max-spread)")


@dataclass(frozen=True)
class TimingPolicy:
    """How hard to try for a trustworthy time.

    ``warmup`` untimed calls; ``repeats`` timed samples per attempt (doubled at each retry);
    each sample lasts at least ``min_sample_s`` (the kernel repeats ``inner`` times in it,
    at most ``max_inner``); ``max_spread`` is the largest IQR/median accepted; ``retries``
    extra attempts before refusing.
    """

    warmup: int = 2
    repeats: int = 7
    min_sample_s: float = 2e-3
    max_inner: int = 10_000
    max_spread: float = 0.15
    retries: int = 2

    def __post_init__(self):
        if self.repeats < 3:
            raise ValueError("repeats must be at least 3 to compute a spread")
        if not (self.max_spread > 0 and self.min_sample_s >= 0 and self.retries >= 0 and self.warmup >= 0):
            raise ValueError("invalid timing policy")


QUICK_POLICY = TimingPolicy(warmup=1, repeats=5, min_sample_s=1e-3, max_spread=0.25, retries=1)
FULL_POLICY = TimingPolicy()


@dataclass(frozen=True)
class Timing:
    """A trusted time for one kernel call: the median sample, its spread, and how it was taken."""

    median_s: float
    spread: float                      # IQR / median of the accepted attempt
    samples_s: tuple[float, ...] = field(repr=False)
    inner: int = 1                     # kernel calls per sample
    attempts: int = 1


class Timer:
    """Measures one sample: ``start()`` then ``stop() -> seconds``. Host clock by default."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter, sync: Callable[[], None] | None = None):
        self.clock = clock
        self.sync = sync
        self._t0 = 0.0

    def start(self) -> None:
        if self.sync:
            self.sync()
        self._t0 = self.clock()

    def stop(self) -> float:
        if self.sync:
            self.sync()
        return self.clock() - self._t0


def spread_of(samples) -> float:
    """Interquartile range over median (0 for identical samples)."""
    arr = np.asarray(samples, dtype=float)
    med = float(np.median(arr))
    if med <= 0:
        return math.inf
    q1, q3 = np.percentile(arr, [25, 75])
    return float(q3 - q1) / med


def measure(fn: Callable[[], object], policy: TimingPolicy = FULL_POLICY, *, name: str = "kernel",
            timer: Timer | None = None) -> Timing:
    """Time one call of ``fn`` under ``policy``; raise :class:`MeasurementRefused` if untrustworthy."""
    timer = timer or Timer()
    for _ in range(policy.warmup):
        fn()
    timer.start()
    fn()
    once = max(timer.stop(), 1e-9)
    inner = int(min(policy.max_inner, max(1, math.ceil(policy.min_sample_s / once))))

    best_spread = math.inf
    for attempt in range(policy.retries + 1):
        samples = []
        for _ in range(policy.repeats * 2 ** attempt):
            timer.start()
            for _ in range(inner):
                fn()
            samples.append(timer.stop() / inner)
        spread = spread_of(samples)
        if spread <= policy.max_spread:
            return Timing(float(np.median(samples)), spread, tuple(samples), inner, attempt + 1)
        best_spread = min(best_spread, spread)
    raise MeasurementRefused(name, best_spread, policy.max_spread, policy.retries + 1)


def measure_best(fn: Callable[[], object], policy: TimingPolicy = FULL_POLICY, *, passes: int = 2,
                 name: str = "kernel", timer: Timer | None = None) -> Timing:
    """The smallest trusted median over ``passes`` measurements (minimum of medians).

    Refused only when every pass is refused; the refusal of the last pass is raised.
    """
    best: Timing | None = None
    refusal: MeasurementRefused | None = None
    for _ in range(max(1, passes)):
        try:
            t = measure(fn, policy, name=name, timer=timer)
        except MeasurementRefused as exc:
            refusal = exc
            continue
        if best is None or t.median_s < best.median_s:
            best = t
    if best is None:
        assert refusal is not None
        raise refusal
    return best


@contextlib.contextmanager
def pinned_threads(threads: int | None) -> Iterator[int]:
    """Pin BLAS/OpenMP thread pools to ``threads`` (all cores when None) for the block."""
    from threadpoolctl import threadpool_limits

    n = int(threads or os.cpu_count() or 1)
    with threadpool_limits(limits=n):
        yield n
