"""``ridgeline calibrate``: measure this machine, fit, and write the overlay atomically.

Order of work: check the device and the output folder first (a bad request fails before any
measurement), measure, fit, then write the measurements, the fingerprint, the fit summary and,
last, the overlay ``DIR/<device>.yaml``, each file atomically. An interruption at any point
leaves no partial overlay behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .fingerprint import busy_warning, cpu_caches, fingerprint, load_average, physical_cores
from .overlay import FitReport, fit_overlay
from .runner import TooFewMeasurements, plan, policy_for, require_enough, run_cases
from .store import (
    FINGERPRINT_NAME,
    ensure_writable_dir,
    write_json,
    write_measurements,
    write_overlay,
)
from .torch_kernels import parse_device

FIT_SUMMARY_NAME = "fit.json"

# GPU names (as torch reports them) -> catalog ids, most specific first.
GPU_CATALOG = [("H200", "h200-sxm"), ("H100 PCIe", "h100-pcie"), ("H100", "h100-sxm"),
               ("A100-SXM4-80GB", "a100-sxm-80gb"), ("A100 80GB", "a100-sxm-80gb"),
               ("A100", "a100-sxm-80gb"), ("MI300X", "mi300x"), ("L40S", "l40s")]


MIN_FITTED_GEMMS = 3


def auto_threads() -> tuple[int | None, str | None]:
    """BLAS threads for a calibration that did not ask for a count: all cores on an idle machine,
    one when other programs keep the cores busy (1-minute load above half the cores). Threads
    of a multithreaded GEMM wait for each other, so one descheduled thread stalls the call for a
    scheduler time slice and timings become multiples of it; one thread has no such wait."""
    cores = physical_cores()
    load = load_average()
    if cores > 1 and load and load[0] > 0.5 * cores:
        return 1, (f"the machine is busy (1-minute load {load[0]:g} on {cores} cores): measured with one BLAS "
                   "thread (pass --threads N to choose); validate uses the same count")
    return None, None


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


def calibrate(device: str = "host", out_dir: str | Path = "calibration-out", *, quick: bool = False,
              threads: int | None = None, passes: int | None = None, max_spread: float | None = None,
              base: str | None = None, progress: bool = True, measurement_format: str = "auto") -> CalibrationResult:
    """Measure ``device``, fit an overlay and write everything to ``out_dir`` (see module doc)."""
    import hwmodels

    kind, _ = parse_device(device)
    cases = plan(device, quick)           # raises InputError for cuda without a GPU
    out = ensure_writable_dir(out_dir)
    notes = []
    if threads is None and kind == "host":
        threads, why = auto_threads()
        if why:
            notes.append(why)
    fp = fingerprint(device, threads)
    base_ref = base_for(device, fp, base)
    base_device = hwmodels.load_device(base_ref)

    frame = run_cases(cases, policy_for(quick, max_spread), passes=passes or (2 if quick else 3),
                      threads=threads, progress=progress)
    require_enough(frame, "gemm")
    fp["load_after"] = load_average()
    busy = busy_warning(fp)
    overlay, report = fit_overlay(frame, base_device, base_ref=base_ref, fingerprint=fp,
                                  caches=cpu_caches() if device == "host" else None)
    if busy:
        report.warnings.insert(0, busy)
    report.warnings[:0] = notes
    fitted = max((n for k, n in report.fitted.items() if k.endswith(":fp32")), default=0)
    if fitted < MIN_FITTED_GEMMS and kind == "host":
        raise TooFewMeasurements(
            f"only {fitted} fp32 GEMM measurement(s) were usable after leaving out those slowed by other "
            f"programs (need {MIN_FITTED_GEMMS}); the machine is too busy to calibrate now")

    m_path = write_measurements(frame, out, measurement_format)
    f_path = write_json(out / FINGERPRINT_NAME, fp)
    held_out = frame.loc[frame.split == "holdout", "case_id"].tolist()
    s_path = write_json(out / FIT_SUMMARY_NAME, {**report.to_dict(), "held_out": held_out})
    header = (f"Calibration overlay for '{device}' written by `ridgeline calibrate`.\n"
              f"Pass it to any command: --hw {out / (overlay_name(device) + '.yaml')}\n"
              f"Measurements: {m_path.name}; fingerprint: {f_path.name}.")
    o_path = write_overlay(out / f"{overlay_name(device)}.yaml", overlay, header)
    return CalibrationResult(device, out, o_path, m_path, f_path, frame, fp, overlay, report,
                             [m_path, f_path, s_path, o_path])
