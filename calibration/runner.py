"""Running a plan of kernel cases under the timing discipline, into a measurement table.

Each case is timed with :func:`calibration.timing.measure` in several passes over the whole
plan (minimum of trusted medians) while BLAS threads are pinned. A refused case stays in the table with
``status = "refused"`` and the reason, and is left out of fitting; the run fails only when
too many cases are refused to fit anything (see :func:`require_enough`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import replace

import pandas as pd

from .kernels import KernelCase, build_numpy, numpy_plan
from .progress import Progress
from .timing import (
    FULL_POLICY,
    QUICK_POLICY,
    MeasurementRefused,
    Timing,
    TimingPolicy,
    measure,
    pinned_threads,
)
from .torch_kernels import build_torch, parse_device, require_cuda, torch_available, torch_plan

COLUMNS = ["case_id", "kernel", "backend", "device", "dtype", "split", "shape", "flops", "bytes_moved",
           "median_s", "spread", "inner", "attempts", "passes_ok", "pass_spread", "status", "note",
           "flop_s", "bytes_s"]


class TooFewMeasurements(RuntimeError):
    """Too many kernels were refused (or none ran) to fit a curve from what is left."""


def plan(device: str = "host", quick: bool = False, use_torch: bool | None = None) -> list[KernelCase]:
    """Every case a calibration of ``device`` measures (numpy on the host, torch where installed)."""
    kind, index = parse_device(device)
    if kind == "cuda":
        require_cuda(index or 0)
        return torch_plan(device, quick)
    cases = numpy_plan(quick)
    if torch_available() if use_torch is None else use_torch:
        cases += torch_plan("host", quick)
    return cases


def _row(case: KernelCase) -> dict:
    return {"case_id": case.case_id, "kernel": case.kernel, "backend": case.backend, "device": case.device,
            "dtype": case.dtype, "split": case.split, "shape": json.dumps(case.shape),
            "flops": case.flops, "bytes_moved": case.bytes_moved}


SUSPECT_PASS_SPREAD = 0.25   # passes disagreeing by more than this: measure the case again
EXTRA_SWEEPS = 2             # at most this many extra sweeps over suspect cases


def run_cases(cases: Iterable[KernelCase], policy: TimingPolicy = FULL_POLICY, *, passes: int = 2,
              threads: int | None = None, progress: bool = True,
              before_sweep: Callable[[], None] | None = None) -> pd.DataFrame:
    """Measure every case; one row per case (see :data:`COLUMNS`).

    The whole plan is swept ``passes`` times and each case keeps its smallest trusted median
    (minimum of medians). Sweeping the plan rather than repeating a case back to back spreads
    a case's passes over time, so a burst of load from another process spoils at most one.
    Cases whose passes disagree by more than :data:`SUSPECT_PASS_SPREAD` (or that were refused
    every time) are swept again, up to :data:`EXTRA_SWEEPS` times, to find a quiet moment.
    ``pass_spread`` (largest over smallest pass median, minus 1) shows how much the load varied.
    ``before_sweep`` runs before every sweep (a :class:`calibration.cores.CoreGate` waits there
    until the threads get their cores, or refuses).
    """
    cases = list(cases)
    best: dict[int, Timing] = {}
    medians: dict[int, list[float]] = {}
    refusals: dict[int, MeasurementRefused] = {}

    def sweep(indices, label, bar):
        if before_sweep is not None:
            before_sweep()
        for i in indices:
            case = cases[i]
            bar.step(f"{label} {case.case_id}")
            if case.backend == "torch":
                fn, timer = build_torch(case)
            else:
                fn, timer = build_numpy(case), None
            try:
                t = measure(fn, policy, name=case.case_id, timer=timer)
            except MeasurementRefused as exc:
                refusals[i] = exc
            else:
                medians.setdefault(i, []).append(t.median_s)
                if i not in best or t.median_s < best[i].median_s:
                    best[i] = t
            del fn

    def suspects():
        return [i for i in range(len(cases))
                if i not in best or max(medians[i]) / min(medians[i]) - 1.0 > SUSPECT_PASS_SPREAD]

    everything = range(len(cases))
    with pinned_threads(threads), Progress(len(cases) * passes, "measuring", enabled=progress) as bar:
        for p in range(passes):
            sweep(everything, f"pass {p + 1}/{passes}", bar)
    for extra in range(EXTRA_SWEEPS):
        again = suspects()
        if not again:
            break
        with pinned_threads(threads), Progress(len(again), f"re-measuring {len(again)} unsteady kernels",
                                               enabled=progress) as bar:
            sweep(again, f"extra pass {extra + 1}", bar)
    rows = []
    for i, case in enumerate(cases):
        row = _row(case)
        if i in best:
            t = best[i]
            meds = medians[i]
            row.update(median_s=t.median_s, spread=t.spread, inner=t.inner, attempts=t.attempts,
                       passes_ok=len(meds), pass_spread=max(meds) / min(meds) - 1.0,
                       status="ok", note="", flop_s=case.flops / t.median_s,
                       bytes_s=case.bytes_moved / t.median_s)
        else:
            exc = refusals[i]
            row.update(median_s=float("nan"), spread=exc.spread, inner=0, attempts=exc.attempts,
                       passes_ok=0, pass_spread=float("nan"), status="refused", note=str(exc),
                       flop_s=float("nan"), bytes_s=float("nan"))
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def case_from_row(row) -> KernelCase:
    """The :class:`KernelCase` a measurement row was taken from."""
    shape = json.loads(row["shape"])
    return KernelCase(row["kernel"], row["dtype"], tuple((k, int(v)) for k, v in shape.items()),
                      row["split"], backend=row["backend"], device=row["device"],
                      flops=float(row["flops"]), bytes_moved=float(row["bytes_moved"]))


def require_enough(frame: pd.DataFrame, kernel: str = "gemm", minimum: int = 3) -> None:
    """Raise :class:`TooFewMeasurements` when fewer than ``minimum`` fit cases of ``kernel`` are trusted."""
    ok = frame[(frame.kernel == kernel) & (frame.split == "fit") & (frame.status == "ok")]
    if len(ok) < minimum:
        refused = frame[frame.status == "refused"]
        raise TooFewMeasurements(
            f"only {len(ok)} trusted '{kernel}' fit measurements (need {minimum}); {len(refused)} of "
            f"{len(frame)} kernels were refused as too noisy. First reason: "
            + (refused.note.iloc[0] if len(refused) else "none"))


def policy_for(quick: bool, max_spread: float | None = None) -> TimingPolicy:
    """The timing policy of a quick or full run, with an optional spread limit."""
    base = QUICK_POLICY if quick else FULL_POLICY
    if max_spread is None:
        return base

    return replace(base, max_spread=max_spread)
