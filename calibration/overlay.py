"""From measurements to a hardware overlay: empirical ceilings and efficiency curves.

The fit inverts the cost model rather than re-deriving it, so that what is written is exactly
what ``roofline.cost`` needs to reproduce the measurements. Each step is one function, run in
this order by :func:`fit_overlay` on an :class:`OverlayParts` (the overlay so far, and the
reference device the next step costs kernels on):

1. **Fixed cost** (:func:`fit_launch_overhead`). ``launch_overhead`` is the measured time of a
   one-element numpy add.
2. **Memory ceilings** (:func:`fit_memory_ceilings`). STREAM bandwidth plateaus per level
   (:func:`calibration.fit.stream_ceilings`), with the fixed cost of each call taken out,
   become each level's ``bandwidth`` (an achieved rate, so ``efficiency: 1.0`` for cache
   levels). Every level the STREAM runs reach is fitted; a main memory they reach but never
   measured is refused.
3. **Main-memory curve** (:func:`fit_main_memory_curve`). Each fitted single-pass STREAM kernel
   is costed on the device with every efficiency at 1; ``t_memory(e=1) / (t_measured - fixed)``
   versus log10 bytes makes the level's ``efficiency_curve`` (:func:`calibration.fit.median_curve`,
   one vote per kernel family). Multi-pass numpy operators (softmax, LayerNorm, GELU) do not
   enter it: the same curve prices every GEMM's operand traffic.
4. **Compute** (:func:`fit_gemm_engines`). Each fitted GEMM is costed with the memory as fitted
   and its engine at efficiency 1 (shape effects such as wave quantization and tile padding stay
   in the model): the efficiency it needs is ``t_compute(e=1) / (t_measured - fixed)``. Where
   the best GEMM runs faster than the detected peak allows (a boost clock the OS does not
   report), the peak is raised to the empirical ceiling, as ERT does. The curve is then refined
   until the model reproduces the fitted GEMMs (:func:`_refine`: a GEMM's tile choice depends on
   the efficiency).
5. **Transcendental functions** (:func:`fit_special_engines`). GELU and softmax set the curve of
   the engine their exp/tanh run on when no GEMM ran there (a special-function unit; the
   detected host has one, ``sfu``): their passes without a transcendental are predicted and
   taken out of the measured time. On a device whose transcendentals share the GEMM engine they
   are validated, not fitted.
6. **Host<->device copies** (:func:`fit_copies`, GPU) set the empirical bandwidth of the link
   they cross.

:func:`assemble_overlay` then writes the YAML form, with the BLAS thread count measured with.
Curves are fitted with :func:`calibration.fit.fit_curve` (binned medians, made non-decreasing,
clamped). Nothing is fitted to the public measurements, and no formula changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hwmodels.units import format_quantity

from .fit import (
    curve_value,
    fit_curve,
    interference_outliers,
    level_bands,
    level_capacities,
    median_curve,
    resident_level,
    stream_ceilings,
)
from .opmap import kernel_ops
from .runner import TooFewMeasurements, case_from_row

STREAM_ARRAYS = {"stream_copy": 2, "stream_scale": 2, "stream_add": 3, "stream_triad": 3}
# Kernels whose main-memory efficiency makes the main-memory curve, by family (one vote each).
# Only single-pass streams: the same curve prices every GEMM's operand traffic, so kernels whose
# slowness is not memory traffic (numpy's ten-pass GELU, its transcendental functions) must not
# pull it down; they are validated, not fitted (see ``ridgeline validate``).
MEMORY_FAMILIES = {"stream_copy": "stream", "stream_scale": "stream", "stream_add": "stream"}
# Kernels dominated by transcendental functions (tanh, exp): they set the curve of the engine
# the cost model sends special-function FLOPs to, when that is an engine no GEMM ran on (a
# special-function unit); on a device without one they are validated, not fitted.
OTHER_COMPUTE_KERNELS = ("gelu", "softmax")
FLAT = [[0.0, 1.0]]


@dataclass
class FitReport:
    """What the fit found, for the calibration summary and the tests."""

    launch_overhead_s: float | None = None
    ceilings_bytes_s: dict[str, float] = field(default_factory=dict)
    peaks_flops: dict[str, dict[str, float]] = field(default_factory=dict)   # dtype -> detected/empirical
    curves: dict[str, list] = field(default_factory=dict)                    # "engine:dtype" | "memory:level"
    samples: list[dict] = field(default_factory=list)                        # per fitted kernel
    fitted: dict[str, int] = field(default_factory=dict)                     # "engine:dtype" -> kernels used
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"launch_overhead_s": self.launch_overhead_s, "ceilings_bytes_s": self.ceilings_bytes_s,
                "peaks_flops": self.peaks_flops, "curves": self.curves, "fitted_kernels": self.fitted,
                "warnings": self.warnings}


def _trusted_fit(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[(frame.status == "ok") & (frame.split == "fit")]


def _stream_ceilings(rows: pd.DataFrame, device, caches, fixed_s: float) -> dict[str, float]:
    """Bandwidth per level from the trusted STREAM plateaus in ``rows``, with the fixed cost of a
    call taken out (the cost model adds it back as ``launch_overhead``)."""
    rows = rows[rows.kernel.isin(list(STREAM_ARRAYS)) & (rows.backend == "numpy")]
    cases = [case_from_row(r) for _, r in rows.iterrows()]
    passes = [len(kernel_ops(c)) for c in cases]  # numpy's triad pays the call cost twice
    # where the call cost is over half the time, what is left is too small to measure a bandwidth
    keep = [t > 2.0 * p * fixed_s for t, p in zip(rows.median_s, passes)]
    rows = rows[keep]
    cases = [c for c, k in zip(cases, keep) if k]
    passes = [p for p, k in zip(passes, keep) if k]
    if rows.empty:
        return {}
    sizes = [STREAM_ARRAYS[c.kernel] * c.shape["n"] * 8 for c in cases]
    bandwidths = [c.bytes_moved / (t - p * fixed_s) for c, t, p in zip(cases, rows.median_s, passes)]
    return stream_ceilings(sizes, bandwidths, list(rows.kernel), level_bands(level_capacities(device, caches)))


def _compute_key(demands) -> str | None:
    keys = [k for k in demands.work if k.startswith("compute:")]
    return keys[0] if keys else None


@dataclass
class OverlayParts:
    """The overlay as the fit builds it, step by step.

    ``engines``, ``memory``, ``links``: the YAML-form sections written to the overlay.
    ``reference``: dotted-path overrides that turn the base device into the reference the next
    step costs kernels on (what is fitted so far, and every efficiency not yet fitted at 1).
    """

    base: object
    caches: dict[str, int] | None
    report: FitReport = field(default_factory=FitReport)
    engines: dict = field(default_factory=dict)
    memory: dict = field(default_factory=dict)
    links: dict = field(default_factory=dict)
    reference: dict = field(default_factory=dict)

    def reference_device(self, **extra):
        """The base device with the reference overrides (and ``extra`` dotted paths) applied."""
        return self.base.with_overrides({**self.reference, **extra})


def fit_overlay(frame: pd.DataFrame, base, *, base_ref: str, fingerprint: dict,
                caches: dict[str, int] | None = None) -> tuple[dict, FitReport]:
    """The overlay (YAML-form dict, ``extends: base_ref``) fitted to ``frame``, and a report.

    The steps run in the order of the module doc; each costs kernels on the device as fitted
    by the steps before it.
    """
    parts = OverlayParts(base, caches)
    rows = _trusted_fit(frame)
    # the GEMMs of the device's own stack: numpy/BLAS on the host, torch on a GPU
    backend = "torch" if (frame.device != "host").any() else "numpy"
    fit_launch_overhead(rows, parts)
    fit_memory_ceilings(rows, parts, reached=frame)
    flatten_engines(parts)
    fit_main_memory_curve(rows[rows.kernel.isin(MEMORY_FAMILIES) & (rows.backend == "numpy")], parts)
    memory_as_fitted = parts.reference_device()
    fit_gemm_engines(rows[(rows.kernel == "gemm") & (rows.backend == backend)], parts)
    fit_special_engines(rows[rows.kernel.isin(OTHER_COMPUTE_KERNELS) & (rows.backend == backend)], parts)
    fit_copies(rows[rows.kernel.isin(COPY_KERNELS)], parts, memory_as_fitted)
    return assemble_overlay(parts, base_ref, fingerprint), parts.report


def fit_launch_overhead(rows: pd.DataFrame, parts: OverlayParts) -> None:
    """Step 1: the fixed cost of a call is the fastest one-element add."""
    launch = rows[rows.kernel == "launch"]
    if launch.empty:
        return
    parts.report.launch_overhead_s = float(launch.median_s.min())
    parts.reference["launch_overhead"] = format_quantity(parts.report.launch_overhead_s, "time")


def levels_reached(rows: pd.DataFrame, device, caches: dict[str, int] | None) -> list[str]:
    """The memory levels the numpy STREAM runs in ``rows`` live in, nearest first."""
    capacities = level_capacities(device, caches)
    rows = rows[rows.kernel.isin(list(STREAM_ARRAYS)) & (rows.backend == "numpy")]
    found = {resident_level(STREAM_ARRAYS[c.kernel] * c.shape["n"] * 8, capacities)
             for c in (case_from_row(r) for _, r in rows.iterrows())}
    return [name for name, _ in capacities if name in found]


def fit_memory_ceilings(rows: pd.DataFrame, parts: OverlayParts, reached: pd.DataFrame) -> None:
    """Step 2: each level's bandwidth is its STREAM plateau, net of the call cost. Cache
    levels get ``efficiency: 1.0`` (the plateau is an achieved rate); main memory's efficiency
    is the curve of step 3. A main memory that the plan reached but no trusted STREAM run
    measured is refused (:class:`calibration.runner.TooFewMeasurements`): predicting the largest
    kernels with the detected default would be silently wrong. ``reached``: every STREAM run of
    the plan, trusted or not (the levels the kernels reach)."""
    report, main = parts.report, parts.base.main_memory
    report.ceilings_bytes_s = _stream_ceilings(rows, parts.base, parts.caches, report.launch_overhead_s or 0.0)
    for level in levels_reached(reached, parts.base, parts.caches):
        if level in report.ceilings_bytes_s:
            continue
        if level == main:
            raise TooFewMeasurements(
                f"no trusted STREAM run measured {main} (every run large enough to reach it was refused as "
                "too noisy or slowed by other programs); without it the largest kernels would be predicted "
                "with the default bandwidth. Calibrate again on a quieter machine")
        report.warnings.append(f"{level}: no STREAM run measured its bandwidth (the call cost dominates "
                               "every size that fits there); it keeps the base device's figure")
    for level, bw in report.ceilings_bytes_s.items():
        parts.reference[f"memory.{level}.bandwidth"] = f"{bw:.6g} B/s"
        parts.memory[level] = {"bandwidth": f"{bw:.6g} B/s"}
        if level != main:
            parts.reference[f"memory.{level}.efficiency"] = 1.0
            parts.memory[level]["efficiency"] = 1.0


def flatten_engines(parts: OverlayParts) -> None:
    """The reference for the fits that follow: every engine at efficiency 1."""
    for name, engine in parts.base.engines.items():
        for dtype in engine.peak_flops:
            parts.reference[f"engines.{name}.efficiency_curve.{dtype}"] = {"x": "log10_flops", "points": FLAT}


def fit_main_memory_curve(rows: pd.DataFrame, parts: OverlayParts) -> None:
    """Step 3: main memory's efficiency curve, from the single-pass streams it bounds.

    Each is costed with main memory at efficiency 1; the efficiency it needs is the memory
    time over the measured time less the fixed cost; one vote per kernel family."""
    from roofline.costs import cost

    main = parts.base.main_memory
    key = f"memory:{main}"
    flat_memory = parts.reference_device(**{f"memory.{main}.efficiency_curve": {"x": "log10_bytes", "points": FLAT}})
    families: dict[str, tuple[list, list]] = {}
    for _, row in rows.iterrows():
        case = case_from_row(row)
        (op,) = kernel_ops(case, flat_memory, parts.caches)   # sizes that live in a cache leave DRAM alone
        d = cost(op, flat_memory)
        times = d.times()
        if key not in d.work or max(times, key=times.get) != key:
            continue
        available = row.median_s - d.fixed_s
        need = times[key] / available if available > 0 else 1.0
        xs, effs = families.setdefault(MEMORY_FAMILIES[case.kernel], ([], []))
        xs.append(math.log10(d.work[key]))
        effs.append(need)
        parts.report.samples.append({"case_id": case.case_id, "key": key, "x": xs[-1],
                                     "efficiency_at_detected_peak": need})
    if not families:
        return
    points = median_curve(families)
    parts.report.curves[key] = points
    parts.memory.setdefault(main, {})["efficiency_curve"] = {"x": "log10_bytes", "points": points}
    parts.reference[f"memory.{main}.efficiency_curve"] = {"x": "log10_bytes", "points": points}


def _gemm_efficiencies(rows: pd.DataFrame, flat, report: FitReport, dtype: str) -> tuple[list, list, list]:
    """Per GEMM on ``flat`` (memory as fitted, engines at efficiency 1): log10 FLOPs, the engine
    efficiency its measured time needs, and (operator, measured seconds) for :func:`_refine`.
    A GEMM whose model time outside compute already exceeds its measurement is left out."""
    from roofline.costs import cost

    xs, effs, measured = [], [], []
    for _, row in rows.iterrows():
        case = case_from_row(row)
        (op,) = kernel_ops(case)
        d = cost(op, flat)
        ckey = _compute_key(d)
        available = row.median_s - d.fixed_s
        if ckey is None or available <= 0:
            continue
        times = d.times()
        slowest_other = max((t for k, t in times.items() if k != ckey), default=0.0)
        if slowest_other > row.median_s:
            report.warnings.append(f"{case.case_id}: the model's {max(times, key=times.get)} "
                                   f"time exceeds the measured time; its compute efficiency is not fitted")
            continue
        xs.append(math.log10(d.work[ckey]))
        effs.append(times[ckey] / available)
        measured.append((op, float(row.median_s)))
        report.samples.append({"case_id": case.case_id, "key": f"{ckey}:{dtype}",
                               "x": xs[-1], "efficiency_at_detected_peak": effs[-1]})
    return xs, effs, measured


def fit_gemm_engines(rows: pd.DataFrame, parts: OverlayParts) -> None:
    """Step 4: per dtype, the matrix engine's curve from the GEMMs (and its peak, raised to the
    empirical ceiling where the best GEMM beats the detected one), refined until the model
    reproduces them. Adds what it fits to the reference for the steps that follow."""
    from roofline.hardware import device_info

    flat = parts.reference_device()
    info = device_info(parts.base)
    report = parts.report
    fitted: dict = {}
    for dtype in sorted(set(rows.dtype)):
        choice = info.engine_for("matrix", dtype)
        xs, effs, measured = _drop_interference(f"{dtype} GEMM", report,
                                                *_gemm_efficiencies(rows[rows.dtype == dtype], flat, report,
                                                                    choice.dtype))
        report.fitted[f"{choice.name}:{choice.dtype}"] = len(effs)
        if not effs:
            report.warnings.append(f"no usable {dtype} GEMM measurement; the engine keeps its default")
            continue
        factor = max(1.0, float(np.max(effs)))
        empirical = choice.peak_flops * factor
        report.peaks_flops[choice.dtype] = {"detected": choice.peak_flops, "empirical": empirical}
        peak = {f"engines.{choice.name}.peak.{choice.dtype}": f"{empirical:.6g} FLOP/s"} if factor > 1.0 else {}
        curve_path = f"engines.{choice.name}.efficiency_curve.{choice.dtype}"
        points = _refine(flat, peak, curve_path, xs, [e / factor for e in effs], measured)
        report.curves[f"{choice.name}:{choice.dtype}"] = points
        eng = parts.engines.setdefault(choice.name, {})
        if peak:
            eng.setdefault("peak", {})[choice.dtype] = f"{empirical:.6g} FLOP/s"
        eng.setdefault("efficiency_curve", {})[choice.dtype] = {"x": "log10_flops", "points": points}
        fitted.update(peak)
        fitted[curve_path] = {"x": "log10_flops", "points": points}
    parts.reference.update(fitted)


def assemble_overlay(parts: OverlayParts, base_ref: str, fingerprint: dict) -> dict:
    """The YAML-form overlay: identity, provenance, the thread count, and the fitted sections."""
    base, report = parts.base, parts.report
    overlay = {
        "id": f"{base.id}-calibrated" if not base.id.endswith("-calibrated") else base.id,
        "name": f"{base.name}, calibrated {fingerprint.get('taken_utc', '')}".strip(", "),
        "extends": base_ref,
        "source": _source(fingerprint),
        "notes": _notes(report),
    }
    if base.kind == "cpu" and fingerprint.get("threads_pinned"):
        overlay["threads"] = int(fingerprint["threads_pinned"])
    if report.launch_overhead_s is not None:
        overlay["launch_overhead"] = format_quantity(report.launch_overhead_s, "time")
    for section, content in (("engines", parts.engines), ("memory", parts.memory), ("links", parts.links)):
        if content:
            overlay[section] = content
    return overlay


def fit_special_engines(rows: pd.DataFrame, parts: OverlayParts) -> None:
    """Step 5: the curve of the engine transcendental functions run on, from the kernels that
    evaluate them (numpy's GELU and softmax), when no GEMM ran on that engine (a special-function
    unit).

    A kernel is several numpy passes (:mod:`calibration.passes`); on the device as fitted so far
    (the special engine at efficiency 1) the passes without a transcendental are predicted and
    their time taken from the measured time; what is left is the time of the passes that
    evaluate one, and their engine's efficiency is its time at efficiency 1 over that.
    """
    from roofline.costs import cost
    from roofline.hardware import device_info

    fitted, caches, report = parts.reference_device(), parts.caches, parts.report
    info = device_info(fitted)
    fitted_engines = {k.split(":")[0] for k in report.curves}
    samples: dict[tuple[str, str], tuple[list, list]] = {}
    for _, row in rows.iterrows():
        case = case_from_row(row)
        choice = info.engine_for("special", case.dtype)
        key = f"compute:{choice.name}"
        if choice.name in fitted_engines:
            continue
        demands = [cost(op, fitted) for op in kernel_ops(case, fitted, caches)]
        special = [d for d in demands if key in d.work]
        others_s = sum(d.time_s for d in demands if key not in d.work)
        available = row.median_s - others_s - sum(d.fixed_s for d in special)
        if not special or available <= 0:
            report.warnings.append(f"{case.case_id}: its passes without a transcendental take the whole "
                                   f"measured time in the model; {choice.name} is not fitted on it")
            continue
        xs, effs = samples.setdefault((choice.name, choice.dtype), ([], []))
        xs.append(math.log10(sum(d.work[key] for d in special)))
        effs.append(sum(d.times()[key] for d in special) / available)
        report.samples.append({"case_id": case.case_id, "key": f"{key}:{choice.dtype}", "x": xs[-1],
                               "efficiency_at_detected_peak": effs[-1]})
    for (engine, dtype), (xs, effs) in samples.items():
        points = fit_curve(xs, effs)
        report.curves[f"{engine}:{dtype}"] = points
        report.fitted[f"{engine}:{dtype}"] = len(effs)
        parts.engines.setdefault(engine, {}).setdefault("efficiency_curve", {})[dtype] = {
            "x": "log10_flops", "points": points}


COPY_KERNELS = ("copy_h2d", "copy_d2h")


def fit_copies(rows: pd.DataFrame, parts: OverlayParts, flat) -> None:
    """Step 6: host<->device copies set the empirical bandwidth of the link (and host memory)
    they cross.

    The fastest large copy is costed on ``flat`` (memory as fitted, engines at efficiency 1);
    the link gets the bandwidth that makes its time equal the measured time (the model's framing
    efficiency stays in the formula), and any other resource the model finds slower than the
    measurement is raised to match it.
    """
    from roofline.costs import cost

    base, report = parts.base, parts.report
    if rows.empty:
        return
    rows = rows.assign(rate=rows.bytes_moved / rows.median_s).sort_values("rate", ascending=False)
    row = rows.iloc[0]
    (op,) = kernel_ops(case_from_row(row))
    d = cost(op, flat)
    available = row.median_s - d.fixed_s
    if available <= 0:
        return
    for key, seconds in d.times().items():
        kind, name = key.split(":", 1)
        if kind == "link":
            bw = base.links[name].bandwidth_bytes_s * seconds / available
            parts.links.setdefault(name, {})["bandwidth"] = f"{bw:.6g} B/s"
            report.ceilings_bytes_s[f"link:{name}"] = bw
        elif kind == "memory" and seconds > available and not base.memory[name].on_chip:
            bw = d.peak_rates[key] * seconds / available
            parts.memory.setdefault(name, {})["bandwidth"] = f"{bw:.6g} B/s"
            report.ceilings_bytes_s[name] = bw


def _drop_interference(what: str, report: FitReport, xs: list, effs: list, *aligned: list) -> tuple[list, ...]:
    """``xs, effs`` (and lists aligned with them) without the samples that
    :func:`calibration.fit.interference_outliers` flags."""
    bad = interference_outliers(xs, effs)
    if bad.any():
        report.warnings.append(f"{int(bad.sum())} {what} measurement(s) ran at under a third of the "
                               "efficiency of a smaller one (another program took the cores?); left out of the fit")
    return tuple([v for v, b in zip(seq, bad) if not b] for seq in (xs, effs, *aligned))


REFINE_ROUNDS = 4


def _refine(reference, extra: dict, curve_path: str, xs: list, effs: list, measured: list) -> list:
    """Curve points that make ``roofline.cost`` reproduce the measured kernels.

    The first estimate assumes the kernel's shape effects do not depend on the efficiency; but a
    GEMM picks its tile by the model's time, which does. So each round costs the kernels with the
    curve so far and asks, for each, for the curve value times predicted over measured time (its
    time is inversely proportional to the curve there), until the curve stops changing. A kernel
    the curve cannot fit (a dip the monotone curve pools away) asks for the same value each round,
    so nothing drifts.
    """
    from roofline.costs import cost

    points = fit_curve(xs, effs)
    for _ in range(REFINE_ROUNDS):
        device = reference.with_overrides({**extra, curve_path: {"x": "log10_flops", "points": points}})
        targets = []
        for x, (op, seconds) in zip(xs, measured):
            d = cost(op, device)
            # the curve value that would make this kernel's time right, its tile choice as now
            targets.append(curve_value(points, x) * (d.time_s - d.fixed_s) / (seconds - d.fixed_s))
        new = fit_curve(xs, targets)
        if new == points:
            break
        points = new
    return points


def _source(fp: dict) -> str:
    blas = ", ".join(f"{b.get('internal_api')} {b.get('version')}"
                     for b in fp.get("blas", []) if b.get("user_api") == "blas") or "unknown BLAS"
    if fp.get("threads_pinned"):
        blas += f" pinned to {fp['threads_pinned']} thread(s)"
    torch = fp.get("torch") or {}
    return (f"ridgeline calibrate on this machine ({fp.get('cpu_model')}, {fp.get('cores_usable')} cores"
            f"{', GPU ' + fp['gpu_name'] if fp.get('gpu_name') else ''}) at {fp.get('taken_utc')}: "
            f"numpy {fp.get('numpy')}, {blas}"
            f"{', torch ' + torch['version'] if torch.get('version') else ''}; "
            "measurements and fingerprint beside this file")


def _notes(report: FitReport) -> str:
    parts = ["Fitted by ridgeline calibrate; only rates and efficiencies, never formulas.",
             "Memory bandwidths are STREAM plateaus of one numpy ufunc (one core), per level; "
             "efficiency curves are relative to them."]
    for dtype, p in report.peaks_flops.items():
        if p["empirical"] > p["detected"]:
            parts.append(f"{dtype} peak raised from the detected {p['detected'] / 1e9:.4g} to the measured "
                         f"{p['empirical'] / 1e9:.4g} GFLOP/s (the best GEMM beat the detected clock's peak).")
    return " ".join(parts)
