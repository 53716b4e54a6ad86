"""``ridgeline validate``: how far the model is from reality, in three parts.

1. **Held-out kernels** on this machine: kernels whose shapes were kept out of the fit (the
   ``split`` column of a calibration's measurements), predicted through ``roofline.cost`` on the
   device under test; per-kernel error, MAPE and worst case per kernel family. When the hardware
   file has no measurements beside it, the held-out kernels are measured now.
2. **End to end** on this machine: the numpy transformer block and MLP of
   :mod:`calibration.npmodel` (and the same model through torch, :mod:`calibration.torchmodel`,
   when torch is installed), timed for real, against the same model as a workloads graph played
   by the simulator on the device under test.
3. **Public measurements**: every row of the bundled ``public_measurements.csv`` predicted from
   the catalog (:mod:`calibration.public`), with the row's source; and the serving runs
   (:mod:`calibration.serving_validation`): a real vLLM run replayed request by request, and
   offline throughput rows.

Errors are signed relative errors ``predicted / measured - 1``; MAPE is the mean of their
absolute values.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

import hwmodels
from hwmodels.errors import InputError
from roofline.costs import cost
from simulator import simulate

from . import fingerprint
from .fit import rel_error
from .npmodel import MODELS, QUICK_MODELS, NumpyModel, workload_graph
from .opmap import predict_case
from .progress import Progress
from .public import public_groups, public_summary, validate_public
from .runner import case_from_row, plan, policy_for, run_cases
from .store import FINGERPRINT_NAME, measurements_file, read_measurements
from .timing import MeasurementRefused, TimingPolicy, measure_best, pinned_threads
from .torch_kernels import torch_available
from .torchmodel import TorchModel, torch_graph, torch_threads  # imports torch only when used

GEMM_FP32_MAPE_TARGET = 0.10
END_TO_END_TARGET = 0.15
# A whole model runs for milliseconds: samples of at least 20 ms, more repeats than a kernel.
E2E_POLICY = TimingPolicy(warmup=2, repeats=9, min_sample_s=0.02, max_spread=0.2, retries=2)
E2E_QUICK_POLICY = TimingPolicy(warmup=1, repeats=5, min_sample_s=0.01, max_spread=0.25, retries=1)
# One step of it, for the per-operator breakdown (explanatory, so a looser limit).
STEP_POLICY = TimingPolicy(warmup=1, repeats=5, min_sample_s=1e-3, max_spread=0.3, retries=1)


def summarize(rows: list[dict], by: str) -> dict[str, dict]:
    """Per group of ``by``: count, MAPE, worst absolute error and which row had it."""
    out: dict[str, dict] = {}
    for key in dict.fromkeys(r[by] for r in rows):
        errs = [(abs(r["error"]), r) for r in rows if r[by] == key and r["error"] is not None]
        if not errs:
            out[key] = {"n": 0, "mape": None, "worst": None, "worst_case": None}
            continue
        worst = max(errs, key=lambda e: e[0])
        out[key] = {"n": len(errs), "mape": float(np.mean([e for e, _ in errs])), "worst": worst[0],
                    "worst_case": worst[1]["name"]}
    return out


def holdout_frame(hw_path: Path | None, *, quick: bool, progress: bool,
                  threads: int | None = None) -> tuple[pd.DataFrame, str]:
    """Held-out measurements: those beside the hardware file, else measured now."""
    if hw_path is not None:
        folder = hw_path.parent
        found = measurements_file(folder)
        if found is not None:
            frame = read_measurements(found)
            frame = frame[(frame.split == "holdout") & (frame.status == "ok")]
            return frame, f"measured by ridgeline calibrate ({folder})"
    cases = [c for c in plan("host", quick) if c.split == "holdout"]
    frame = run_cases(cases, policy_for(quick), passes=2 if quick else 3, threads=threads, progress=progress)
    return frame[frame.status == "ok"], "measured now by ridgeline validate"


def validate_kernels(frame: pd.DataFrame, device, caches: dict[str, int] | None = None) -> list[dict]:
    """Part 1: one row per held-out kernel (measured vs predicted seconds); ``caches``: the
    per-instance cache sizes of the machine that ran them (which level a working set lives in)."""
    rows = []
    for _, r in frame.iterrows():
        case = case_from_row(r)
        predicted = predict_case(case, device, caches)
        family = f"{case.kernel} {case.dtype}"
        rows.append({"section": "kernels", "name": case.case_id, "family": family,
                     "measured": float(r.median_s), "predicted": predicted, "unit": "s",
                     "error": rel_error(predicted, float(r.median_s)),
                     "source": "this machine"})
    return rows


def _backends(threads: int | None) -> list[tuple[str, Callable, Callable, Callable]]:
    """(backend, model class, graph builder, thread pinning) for part 2: numpy always, torch
    when it imports (same model, its fused kernels as single operators)."""
    out = [("numpy", NumpyModel, workload_graph, pinned_threads)]

    if torch_available():
        @contextlib.contextmanager
        def both(n):
            with pinned_threads(n), torch_threads(n) as pinned:
                yield pinned

        out.append(("torch", TorchModel, torch_graph, both))
    return out


def validate_end_to_end(device, *, quick: bool, progress: bool, threads: int | None = None,
                        caches: dict[str, int] | None = None, models=None) -> list[dict]:
    """Part 2: the numpy models (and the torch ones, when torch imports) timed for real against
    the simulator on ``device``; ``models``: the shapes (default: those of ``quick``)."""
    rows = []
    models = models or (QUICK_MODELS if quick else MODELS)
    backends = _backends(threads)
    with Progress(len(models) * len(backends), "end-to-end", enabled=progress) as bar:
        for backend, model_cls, graph_of, pin in backends:
            with pin(threads):
                for cfg in models:
                    name = cfg.label if backend == "numpy" else f"{cfg.label} ({backend})"
                    bar.step(name)
                    model = model_cls(cfg)
                    graph = graph_of(cfg, device, caches)
                    predicted = float(simulate(graph, device).latency_s)
                    row = {"section": "end_to_end", "name": name, "family": cfg.kind, "backend": backend,
                           "predicted": predicted, "unit": "s", "source": f"this machine ({backend}, timed)"}
                    try:
                        timing = measure_best(model.forward, E2E_QUICK_POLICY if quick else E2E_POLICY,
                                              passes=2 if quick else 3, name=name)
                    except MeasurementRefused as exc:
                        rows.append({**row, "measured": None, "error": None, "source": f"not measured: {exc}"})
                        continue
                    rows.append({**row, "measured": timing.median_s,
                                 "error": rel_error(predicted, timing.median_s),
                                 "breakdown": operator_breakdown(model, graph, device, passes=1 if quick else 2)})
    return rows


def _fingerprint_beside(path: Path | None) -> dict:
    """The fingerprint a calibration wrote beside the overlay at ``path`` ({} if none)."""
    if path is None or not (path.parent / FINGERPRINT_NAME).is_file():
        return {}
    try:
        return json.loads((path.parent / FINGERPRINT_NAME).read_text())
    except (OSError, ValueError):
        return {}


def _fingerprint_notes(fp: dict) -> list[str]:
    """A note when the overlay was measured on a machine other than this one."""
    if fp.get("cpu_model") and fp["cpu_model"] != fingerprint.cpu_model():
        return [f"the overlay was measured on '{fp['cpu_model']}', this machine is '{fingerprint.cpu_model()}'"]
    return []


def _threads_for(asked: int | None, device, fp: dict, report) -> int:
    """BLAS threads for the local runs: ``asked``, else the count the overlay was calibrated with
    (at most this machine's CPUs), else what numpy uses. A count other than the calibration's is
    warned: the overlay's rates hold for its own count, so the error would measure the difference."""
    from .cores import resolve_threads
    from .fingerprint import physical_cores

    calibrated = device.threads or fp.get("threads_pinned")
    if asked:
        threads = resolve_threads(asked)
    else:
        threads = min(int(calibrated), physical_cores()) if calibrated else resolve_threads(None)
    if calibrated and threads != int(calibrated):
        report.warnings.append(f"timing with {threads} BLAS thread(s), but '{report.hw}' was calibrated with "
                               f"{int(calibrated)}: its rates hold for {int(calibrated)}, so part of the error "
                               "is the thread count alone")
    return threads


def operator_breakdown(model, graph, device, passes: int = 2) -> list[dict]:
    """Each numpy (or torch) step of ``model`` timed alone against the analytic cost of its operators (one
    per numpy call; where the end-to-end error comes from). ``bound``: that of the step's
    slowest operator; ``ops``: how many operators (numpy calls) the step is."""
    out = []
    for name, step in model.steps:
        demands = [cost(graph.op(op_name), device) for op_name in graph.meta["steps"][name]]
        predicted = sum(d.time_s for d in demands)
        slowest = max(demands, key=lambda d: d.time_s)
        try:
            measured = measure_best(step, STEP_POLICY, passes=passes, name=name).median_s
        except MeasurementRefused:
            measured = None
        out.append({"op": name, "kind": slowest.kind, "ops": len(demands), "measured": measured,
                    "predicted": predicted,
                    "error": None if measured is None else rel_error(predicted, measured), "bound": slowest.bound})
    return out


def machine_caches(device, fp: dict) -> dict[str, int] | None:
    """Per-instance cache sizes of the machine the local parts run on: those the calibration
    recorded in its fingerprint, else this machine's when ``device`` is the detected host (or an
    overlay of it); None otherwise (the device's own capacities are used)."""
    if fp.get("cpu_caches_bytes"):
        return {k: int(v) for k, v in fp["cpu_caches_bytes"].items()}
    if device.id.split("-")[0] == "host":
        return fingerprint.cpu_caches() or None
    return None


@dataclass
class ValidationReport:
    """All three parts and the targets."""

    hw: str
    device_id: str
    kernels: list[dict] = field(default_factory=list)
    end_to_end: list[dict] = field(default_factory=list)
    public: list[dict] = field(default_factory=list)
    serving: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)   # e.g. a busy machine during the local runs

    def targets(self) -> dict:
        out = {}
        gemm = summarize([r for r in self.kernels if r["family"] == "gemm fp32"], "family").get("gemm fp32")
        if gemm and gemm["mape"] is not None:
            out["holdout_gemm_fp32_mape"] = {"value": gemm["mape"], "target": GEMM_FP32_MAPE_TARGET,
                                             "met": gemm["mape"] <= GEMM_FP32_MAPE_TARGET}
        e2e = [abs(r["error"]) for r in self.end_to_end if r["error"] is not None]
        if e2e:
            out["end_to_end_worst_error"] = {"value": max(e2e), "target": END_TO_END_TARGET,
                                             "met": max(e2e) <= END_TO_END_TARGET}
        if self.public:
            predicted = sum(r["predicted"] is not None for r in self.public)
            out["public_rows_predicted"] = {"value": predicted, "of": len(self.public)}
            summary = public_summary(self.public)
            if summary["mape"] is not None:
                out["public_held_out_mape"] = {"value": summary["mape"], "median": summary["median_abs_error"],
                                               "n": summary["n"], "over": summary["over"]}
        if self.serving:
            from .serving_validation import serving_targets

            out.update(serving_targets(self.serving))
        return out

    def to_dict(self) -> dict:
        return {"hw": self.hw, "device": self.device_id,
                "kernels": {"rows": self.kernels, "summary": summarize(self.kernels, "family")},
                "end_to_end": {"rows": self.end_to_end},
                "public": {"rows": self.public, "summary": public_summary(self.public) if self.public else None,
                           "by_metric": summarize([r for r in self.public if r.get("role") != "fit"],
                                                  "family"),
                           "groups": public_groups(self.public) if self.public else None},
                "serving": {"rows": self.serving},
                "targets": self.targets(), "notes": self.notes, "warnings": self.warnings}

    def rows(self) -> list[dict]:
        return [*self.kernels, *self.end_to_end, *self.public, *self.serving]


def validate(hw: str | None = None, *, public: bool = False, local: bool = True, quick: bool = False,
             threads: int | None = None, progress: bool = True) -> ValidationReport:
    """Run the validation parts asked for (``public`` only: part 3 alone, no local measurement).

    Local runs pin ``threads`` BLAS threads; by default the count the overlay was calibrated
    with (its ``threads``, else its fingerprint's), since its rates hold for that count, else the
    count numpy uses (:func:`_threads_for`).
    """
    ref = hw or "host"
    device = hwmodels.load_device(ref)
    report = ValidationReport(str(ref), device.id)
    path = Path(hw) if hw and Path(hw).is_file() else None
    if local and device.kind != "cpu" and (path is None or measurements_file(path.parent) is None):
        raise InputError(f"'{ref}' is a {device.kind} with no calibration measurements beside it; the "
                         "local parts need a calibration overlay (ridgeline calibrate --device cuda "
                         "--out DIR) or a host device; --public runs the public measurements alone",
                         path="--hw")
    if local:
        load_before = fingerprint.load_average()
        fp = _fingerprint_beside(path)
        threads = _threads_for(threads, device, fp, report)
        frame, origin = holdout_frame(path, quick=quick, progress=progress, threads=threads)
        report.notes.append(f"held-out kernels {origin}")
        report.notes += _fingerprint_notes(fp)
        caches = machine_caches(device, fp)
        report.kernels = validate_kernels(frame, device, caches)
        if device.kind == "cpu":
            report.end_to_end = validate_end_to_end(device, quick=quick, progress=progress, threads=threads,
                                                    caches=caches)
            report.notes.append(f"end to end with {threads} BLAS thread(s)")
        else:
            report.notes.append("end to end: the numpy model runs on the CPU; skipped for a GPU overlay")
        busy = fingerprint.busy_warning({"cores_usable": fingerprint.physical_cores(),
                                         "load_before": load_before, "load_after": fingerprint.load_average()},
                                        again="validate")
        if busy:
            report.warnings.append(busy)
    if public:
        from .serving_validation import validate_serving

        report.public = validate_public()
        report.serving = validate_serving(quick=quick)
    return report
