"""The long fuzz run (``make fuzz``): thousands of cases per input surface, counted by outcome.

    python tests/fuzz/run.py [--cases 10000] [--seed 0] [--timeout 30] [--jobs 2] [--surface NAME ...]

The cases are split evenly over the surfaces registered in :data:`fuzz.harness.SURFACES` and drawn
by hypothesis (generation only, no shrinking, no example database), reproducibly for a seed; each
runs in a forked child killed at the time limit (so a hang or a crash is counted, not fatal). It
prints one row per surface (cases, clean errors, tracebacks, time-outs, non-finite figures,
accepted), then each distinct failure signature with one case that shows it, and exits 1 when
there was any traceback, time-out or non-finite figure.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
for entry in (HERE.parent, HERE.parents[1]):   # `fuzz` as a package, and the project itself
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import seed as hypothesis_seed  # noqa: E402

from fuzz import surfaces as _registered  # noqa: E402, F401 - registers the surfaces
from fuzz.harness import FAILURES, OUTCOMES, SURFACES, attempt_isolated  # noqa: E402


def fuzz_surface(name: str, cases: int, seed: int, timeout_s: float) -> dict:
    """Run ``cases`` cases of surface ``name``: counts per outcome and {signature: example}."""
    import warnings

    warnings.simplefilter("ignore")    # InputWarnings of implausible values are expected here
    surface = SURFACES.get(name)
    _warm_up()
    counts: Counter = Counter()
    failures: dict[str, str] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{name}-") as tmp:
        workdir = Path(tmp)

        @hypothesis_seed(seed)
        @settings(max_examples=cases, database=None, deadline=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(case=surface.strategy)
        def one(case):
            outcome = attempt_isolated(surface, case, workdir, timeout_s)
            counts[outcome.kind] += 1
            if outcome.kind in FAILURES:
                key = f"{outcome.kind}: {outcome.detail}"
                failures.setdefault(key, repr(case)[:400])

        one()
    return {"name": name, "counts": dict(counts), "failures": failures,
            "seconds": time.perf_counter() - started}


def _warm_up() -> None:
    """Load what most cases use once, so that each forked case starts with it."""
    import hwmodels
    import workloads.onnx_import  # noqa: F401
    from reports.cli import build_parser
    from roofline import analyze
    from workloads import load_workload

    analyze(load_workload("llama-2-7b"), hwmodels.load_device("h100-sxm"))
    build_parser()


def _run(job: tuple) -> dict:
    try:
        return fuzz_surface(*job)
    except Exception as exc:   # the harness itself failed: say so rather than hang the pool
        return {"name": job[0], "counts": {}, "failures": {f"harness: {exc!r}": ""}, "seconds": 0.0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000, help="cases in all, split over the surfaces")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds one case may take")
    parser.add_argument("--jobs", type=int, default=1, help="surfaces fuzzed in parallel processes")
    parser.add_argument("--surface", action="append", choices=SURFACES.names(), help="only these surfaces")
    args = parser.parse_args(argv)
    names = [n for n in (args.surface or SURFACES.names()) if SURFACES.get(n).available()]
    for name in sorted(set(args.surface or SURFACES.names()) - set(names)):
        print(f"skipping surface {name}: needs {', '.join(SURFACES.get(name).requires)}")
    per = max(1, args.cases // len(names))
    jobs = [(name, per, args.seed, args.timeout) for name in names]
    if args.jobs > 1:
        with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
            results = pool.map(_run, jobs, chunksize=1)
    else:
        results = [_run(job) for job in jobs]
    print(f"fuzz run: seed {args.seed}, {per} cases per surface, time-out {args.timeout:g} s per case")
    header = f"{'surface':<10} {'cases':>6} " + " ".join(f"{k:>11}" for k in OUTCOMES) + f" {'seconds':>8}"
    print(header)
    print("-" * len(header))
    total: Counter = Counter()
    for r in results:
        counts = Counter(r["counts"])
        total.update(counts)
        print(f"{r['name']:<10} {sum(counts.values()):>6} " + " ".join(f"{counts[k]:>11}" for k in OUTCOMES)
              + f" {r['seconds']:>8.0f}")
    print(f"{'all':<10} {sum(total.values()):>6} " + " ".join(f"{total[k]:>11}" for k in OUTCOMES))
    bad = [(r["name"], sig, case) for r in results for sig, case in r["failures"].items()]
    for name, sig, case in bad:
        print(f"\n[{name}] {sig}\n    e.g. {case}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
