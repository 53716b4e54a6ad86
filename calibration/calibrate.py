"""``ridgeline calibrate``: measure this machine, fit, and write the output set atomically.

Order of work: check the device, the thread count and the output folder first (a bad request
fails before any measurement), clean what killed runs left, measure (each sweep only once the
threads get their cores, :class:`calibration.cores.CoreGate`), fit, then write the measurements,
the fingerprint, the fit summary and the overlay ``DIR/<device>.yaml`` into a staging folder
and swap it into place as a whole (:mod:`calibration.atomic_set`). A reader sees the previous
set or the new one, never a mix; an interruption before the swap leaves the previous set.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .atomic_set import check_out_dir, clean_stale, commit, hold, interrupts_deferred, staging_dir
from .cores import WAIT_S, CoreGate, resolve_threads
from .fingerprint import busy_warning, cpu_caches, fingerprint, load_average
from .overlay import FitReport, fit_overlay
from .runner import TooFewMeasurements, plan, policy_for, require_enough, run_cases
from .store import (
    FINGERPRINT_NAME,
    FIT_SUMMARY_NAME,
    write_json,
    write_measurements,
    write_overlay,
)
from .torch_kernels import parse_device

# GPU names (as torch reports them) -> catalog ids, most specific first.
GPU_CATALOG = [("H200", "h200-sxm"), ("H100 PCIe", "h100-pcie"), ("H100", "h100-sxm"),
               ("A100-SXM4-80GB", "a100-sxm-80gb"), ("A100 80GB", "a100-sxm-80gb"),
               ("A100", "a100-sxm-80gb"), ("MI300X", "mi300x"), ("L40S", "l40s")]


MIN_FITTED_GEMMS = 3


def overlay_name(device: str) -> str:
    """File stem of the overlay for ``device``: ``host`` or ``cuda0``, ``cuda1``..."""
    kind, index = parse_device(device)
    return "host" if kind == "host" else f"cuda{index or 0}"


def base_for(device: str, fp: dict, base: str | None = None) -> str:
    """The device id the overlay extends: ``host``, the catalog id of the GPU, or ``base``."""
    if base:
        return base
    kind, _ = parse_device(device)
    if kind == "host":
        return "host"
    name = fp.get("gpu_name") or ""
    for fragment, catalog_id in GPU_CATALOG:
        if fragment.lower() in name.lower():
            return catalog_id
    from hwmodels.errors import InputError

    raise InputError(f"no catalog device matches GPU '{name}'; pass --base <catalog id> to say which "
                     "device the overlay extends", path="--base")


@dataclass
class CalibrationResult:
    """What a calibration wrote and found."""

    device: str
    out_dir: Path
    overlay_path: Path
    measurements_path: Path
    fingerprint_path: Path
    measurements: pd.DataFrame
    fingerprint: dict
    overlay: dict
    fit: FitReport
    files: list[Path] = field(default_factory=list)

    def summary(self) -> dict:
        ok = self.measurements.status == "ok"
        return {"device": self.device, "overlay": str(self.overlay_path),
                "measurements": str(self.measurements_path), "fingerprint": str(self.fingerprint_path),
                "kernels": int(len(self.measurements)), "trusted": int(ok.sum()),
                "refused": int((~ok).sum()), "held_out": int((self.measurements.split == "holdout").sum()),
                "fit": self.fit.to_dict()}


class InterruptedAfterWriting(KeyboardInterrupt):
    """Ctrl-C that came once the new set was complete: it was put in place before stopping."""


def calibrate(device: str = "host", out_dir: str | Path = "calibration-out", *, quick: bool = False,
              threads: int | None = None, passes: int | None = None, max_spread: float | None = None,
              base: str | None = None, progress: bool = True, measurement_format: str = "auto",
              if_busy: str = "wait") -> CalibrationResult:
    """Measure ``device``, fit an overlay and write the set to ``out_dir`` (see module doc).

    ``threads``: BLAS threads to measure with (default: those numpy uses); ``if_busy``: what to
    do when other programs keep the cores busy (:class:`calibration.cores.CoreGate`).
    """
    import hwmodels

    kind, _ = parse_device(device)
    cases = plan(device, quick)           # raises InputError for cuda without a GPU
    out = check_out_dir(out_dir)
    threads = resolve_threads(threads)
    fp = fingerprint(device, threads)
    base_ref = base_for(device, fp, base)
    base_device = hwmodels.load_device(base_ref)
    clean_stale(out)

    gate = CoreGate(threads, if_busy, WAIT_S["quick" if quick else "full"]) if kind == "host" else None
    frame = run_cases(cases, policy_for(quick, max_spread), passes=passes or (2 if quick else 3),
                      threads=threads, progress=progress, before_sweep=gate)
    require_enough(frame, "gemm")
    fp["load_after"] = load_average()
    if gate is not None:
        fp["core_share"] = {"if_busy": if_busy, "probes": gate.shares, "waited_s": gate.waited_s}
    overlay, report = fit_overlay(frame, base_device, base_ref=base_ref, fingerprint=fp,
                                  caches=cpu_caches() if device == "host" else None)
    busy = busy_warning(fp)
    report.warnings[:0] = [w for w in [*(gate.warnings if gate else []), busy] if w]
    fitted = max((n for k, n in report.fitted.items() if k.endswith(":fp32")), default=0)
    if fitted < MIN_FITTED_GEMMS and kind == "host":
        raise TooFewMeasurements(
            f"only {fitted} fp32 GEMM measurement(s) were usable after leaving out those slowed by other "
            f"programs (need {MIN_FITTED_GEMMS}); the machine is too busy to calibrate now")
    files = write_set(out, device, frame, fp, report, overlay, measurement_format)
    m_path, f_path, _, o_path = files
    return CalibrationResult(device, out, o_path, m_path, f_path, frame, fp, overlay, report, files)


def write_set(out: Path, device: str, frame: pd.DataFrame, fp: dict, report: FitReport, overlay: dict,
              measurement_format: str = "auto") -> list[Path]:
    """Measurements, fingerprint, fit summary and overlay written into a staging folder, then
    swapped into place as ``out``; the paths they have there."""
    name = f"{overlay_name(device)}.yaml"
    header = (f"Calibration overlay for '{device}' written by `ridgeline calibrate` (run {fp.get('run_id')}).\n"
              f"Pass it to any command: --hw {out / name}\n"
              f"The measurements, fingerprint ({FINGERPRINT_NAME}) and fit summary ({FIT_SUMMARY_NAME}) "
              "beside this file are of the same run.")
    held_out = frame.loc[frame.split == "holdout", "case_id"].tolist()
    staging = staging_dir(out)
    try:
        written = [write_measurements(frame, staging, measurement_format)]
        hold("staging")
        written.append(write_json(staging / FINGERPRINT_NAME, fp))
        written.append(write_json(staging / FIT_SUMMARY_NAME, {"run_id": fp.get("run_id"), **report.to_dict(),
                                                                "held_out": held_out}))
        written.append(write_overlay(staging / name, overlay, header))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    try:
        with interrupts_deferred():
            commit(staging, out)
    except KeyboardInterrupt:
        raise InterruptedAfterWriting(f"interrupted after the new calibration was put in place: {out} "
                                      "holds the complete set") from None
    return [out / p.name for p in written]
