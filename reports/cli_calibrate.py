"""``ridgeline calibrate`` and ``ridgeline validate``: measure this machine, fit an overlay, and
report how far predictions are from measurements.

Progress goes to stderr; stdout carries the result (a table, or one JSON document with
``--format json``). A machine too noisy to measure is reported in one line with exit code 3.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from pathlib import Path

from hwmodels.errors import InputError
from reports.emit import add_result_arguments, emit_result
from reports.output import print_json, warn
from reports.text import calibration_text, validation_text

from .commands import COMMANDS

# calibration (pandas, the timers) is imported inside the commands: CLI start-up.

EXIT_TOO_NOISY = 3


@COMMANDS.register("calibrate", help="measure this machine and write a fitted hardware overlay")
def calibrate_command(p) -> None:
    p.description = ("Run micro-benchmarks (numpy on the CPU; torch on CPU/CUDA when installed), fit "
                     "efficiency curves and memory ceilings, and write DIR/<device>.yaml (extends the "
                     "device; pass it to any --hw), the measurements and the fingerprint.")
    p.add_argument("--device", default="host", help="host (default), cuda or cuda:N")
    p.add_argument("--quick", action="store_true", help="a short run (under a minute on 2 cores)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created if needed)")
    p.add_argument("--threads", type=int, default=None,
                   help="BLAS threads to measure with, at most one per usable CPU (default: the count numpy's "
                        "BLAS uses); recorded in the overlay, and validate times with the same count")
    p.add_argument("--if-busy", choices=("wait", "refuse", "measure"), default="wait",
                   help="when other programs keep the cores busy: wait for a quiet moment (at most 60 s quick, "
                        "300 s full) then refuse with exit 3 (default), refuse at once, or measure anyway (warned)")
    p.add_argument("--passes", type=int, default=None, help="sweeps over the plan (minimum of medians; default 2 quick, 3 full)")
    p.add_argument("--max-spread", type=float, default=None,
                   help="largest IQR/median accepted before a kernel is refused (default 0.25 quick, 0.15 full)")
    p.add_argument("--base", default=None, help="catalog id the overlay extends (default: host, or the GPU's id)")
    p.add_argument("--measurements", choices=("auto", "csv", "parquet"), default="auto",
                   help="measurement file format (auto: Parquet when pyarrow is installed)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=cmd_calibrate)


@COMMANDS.register("validate", help="prediction error: held-out kernels, a real model end to end, "
                                    "public measurements")
def validate_command(p) -> None:
    p.description = ("1) held-out kernels on this machine, 2) a numpy transformer block and MLP timed "
                     "for real against the simulator, 3) the bundled public measurements predicted from "
                     "the catalog. By default all three; --public runs only part 3, --local only 1 and 2.")
    p.add_argument("--hw", default=None, metavar="FILE",
                   help="hardware to predict this machine with (default: host; a calibration overlay)")
    p.add_argument("--public", action="store_true", help="only the public measurements (no local runs)")
    p.add_argument("--local", action="store_true", help="only the parts measured on this machine (1 and 2)")
    p.add_argument("--quick", action="store_true", help="smaller end-to-end models and kernel set")
    p.add_argument("--threads", type=int, default=None,
                   help="BLAS threads for the local runs (default: those of the calibration, else all cores)")
    p.add_argument("--out", default=None, metavar="DIR", help="also write validation.json, .csv, .md and a plot")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--format", choices=("table", "json"), default="table")
    add_result_arguments(p, out=False)
    p.set_defaults(func=cmd_validate)


def _positive(value, name):
    if value is not None and value <= 0:
        raise InputError(f"must be positive, got {value}", path=name)


def _named(value, name):
    if value is not None and not value.strip():
        raise InputError("is empty; give a value or leave the option out", path=name)


def cmd_calibrate(args) -> int:
    from calibration.calibrate import calibrate
    from calibration.cores import CoresBusy
    from calibration.runner import TooFewMeasurements
    from calibration.timing import MeasurementRefused

    _positive(args.threads, "--threads")
    _positive(args.passes, "--passes")
    _positive(args.max_spread, "--max-spread")
    _named(args.base, "--base")
    try:
        result = calibrate(args.device, args.out, quick=args.quick, threads=args.threads, passes=args.passes,
                           max_spread=args.max_spread, base=args.base, progress=not args.no_progress,
                           measurement_format=args.measurements, if_busy=args.if_busy)
    except (TooFewMeasurements, MeasurementRefused, CoresBusy) as exc:
        print(f"error: {exc}; nothing was written ({args.out} keeps its previous calibration, if any)",
              file=sys.stderr)
        return EXIT_TOO_NOISY
    except KeyboardInterrupt as exc:
        print(str(exc) or f"interrupted before the new calibration was complete; nothing was written "
              f"({args.out} keeps its previous calibration, if any)", file=sys.stderr)
        return 130
    with _interrupt_says_written(result.out_dir):
        return _print_calibration(result, args.format)


@contextlib.contextmanager
def _interrupt_says_written(out):
    """Ctrl-C once the set is in place ends at once with a message saying so (exit 130)."""
    def stop(signum, frame):
        os.write(2, f"\ninterrupted; the calibration in {out} was already complete\n".encode())
        os._exit(130)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _print_calibration(result, fmt: str) -> int:
    summary, fit = result.summary(), result.fit
    if fmt == "json":
        for w in fit.warnings:
            warn(w)
        print_json(summary)
        return 0
    print(calibration_text(result))
    for w in fit.warnings:
        warn(w)
    return 0


def cmd_validate(args) -> int:
    from calibration.validate import validate

    if args.public and args.local:
        raise InputError("--public and --local exclude each other (give neither for all three parts)",
                         path="--public")
    _positive(args.threads, "--threads")
    _named(args.hw, "--hw")
    _named(args.out, "--out")
    local = not args.public
    public = not args.local
    if args.out:
        from calibration.store import ensure_writable_dir

        ensure_writable_dir(args.out)
    from calibration.timing import MeasurementRefused

    try:
        report = validate(args.hw, public=public, local=local, quick=args.quick, threads=args.threads,
                          progress=not args.no_progress)
    except MeasurementRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_TOO_NOISY
    text = validation_text(report)
    doc = result_document(report, args)
    if args.out:
        from reports.validation_files import write_validation

        for path in write_validation(report, Path(args.out), text, doc):
            print(f"wrote {path}", file=sys.stderr)
    for message in report.warnings:
        warn(message)
    emit_result(doc, args, text, out="")
    return 0


def result_document(report, args) -> dict:
    """The JSON document of a validation: the report and the reproducibility manifest."""
    from reports.manifest import manifest

    return {"kind": "validate", **report.to_dict(), "manifest": manifest(args, hardware=[args.hw or "host"])}
