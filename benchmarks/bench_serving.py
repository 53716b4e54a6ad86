"""Serving simulation speed: the bundled Azure conversation trace, Llama-3.1-8B on one H100 SXM.

Run: ``python benchmarks/bench_serving.py [--requests N ...] [--format json]``. Each run is a fresh
process-level ``serve`` call (cold caches of the step-time model; the cost model's own memo is
warm after the first run in the process, so runs go largest first). Figures: wall-clock seconds,
steps simulated, simulated seconds per wall second, and the process's peak RSS. CPU seconds
(``time.process_time``) are printed too: on a shared machine they, not the wall clock, say what
the run costs.

More requests than the trace holds (19,366) repeat it: copy ``i`` starts where copy ``i - 1``'s
arrivals end (its last arrival plus one mean gap), so the load stays the trace's.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def azure_requests(n: int) -> list[tuple[float, int, int]]:
    """``n`` (arrival_s, prompt, output) rows of the Azure conversation trace, repeated as needed."""
    from simulator.serving.requests import load_trace

    rows = load_trace("azure-conv")
    span = rows[-1][0] * (1 + 1 / len(rows))
    out = []
    copy = 0
    while len(out) < n:
        out += [(t + copy * span, p, o) for t, p, o in rows[: n - len(out)]]
        copy += 1
    return out


def bench(n: int) -> dict:
    from simulator.serving import serve

    rows = azure_requests(n)
    t0, c0 = time.perf_counter(), time.process_time()
    res = serve("llama-3.1-8b", "h100-sxm", requests=rows)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    m = res.metrics
    return {"requests": n, "wall_s": wall, "cpu_s": cpu, "steps": len(res.steps), "simulated_s": m["duration_s"],
            "simulated_s_per_wall_s": m["duration_s"] / wall, "completed": m["completed"],
            "ttft_p99_s": m["ttft_s"]["p99"], "tpot_mean_s": m["tpot_s"]["mean"],
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, nargs="+", default=[10_000])
    ap.add_argument("--format", choices=("table", "json"), default="table")
    args = ap.parse_args(argv)
    rows = [bench(n) for n in sorted(args.requests, reverse=True)]
    if args.format == "json":
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(f"{r['requests']:>7} requests: {r['wall_s']:.2f} s wall ({r['cpu_s']:.2f} s CPU), {r['steps']} steps, "
                  f"{r['simulated_s']:.0f} s simulated ({r['simulated_s_per_wall_s']:.0f}x real time), "
                  f"peak RSS {r['peak_rss_mb']:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
