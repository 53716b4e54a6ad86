"""Calibration speed: the quick measurement plan, the overlay fit, and the public-row predictions.

Run: ``python benchmarks/bench_calibration.py [--format json]``. Wall-clock seconds on this
machine. The measurement figure depends on how busy the machine is (it runs real kernels); the
fit and the predictions are pure computation.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from _figures import print_figures

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--format", choices=("table", "json"), default="table")
    args = parser.parse_args()

    import hwmodels
    from calibration.fingerprint import cpu_caches, fingerprint
    from calibration.overlay import fit_overlay
    from calibration.public import validate_public
    from calibration.runner import plan, policy_for, run_cases

    out = {}
    t0 = time.perf_counter()
    frame = run_cases(plan("host", quick=True), policy_for(True), passes=3, progress=False)
    out["measure_quick_plan_s"] = time.perf_counter() - t0
    out["kernels"] = len(frame)
    base = hwmodels.load_device("host")
    fp = fingerprint()
    t0 = time.perf_counter()
    fit_overlay(frame, base, base_ref="host", fingerprint=fp, caches=cpu_caches())
    out["fit_overlay_s"] = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    rows = validate_public()
    out["predict_public_rows_s"] = time.perf_counter() - t0
    out["predict_public_rows_cpu_s"] = time.process_time() - c0   # wall time on a shared machine is more
    out["public_rows"] = len(rows)
    print_figures(out, args.format)
    return 0


if __name__ == "__main__":
    sys.exit(main())
