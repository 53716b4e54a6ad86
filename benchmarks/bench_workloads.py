"""Speed of the workload builders: Llama-3.1-70B decode graph with TP8, and a few more.

Run: ``python benchmarks/bench_workloads.py [--repeat N] [--format json]``. Prints the median and
best wall time of building each graph (and of summarizing it) over N repeats.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from workloads import build_llm, load_workload

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "workloads" / "toy_decoder.yaml"

CASES = {
    "llama-3.1-70b decode tp8 (batch 64, context 4096)":
        lambda: build_llm("llama-3.1-70b", "decode", batch=64, context=4096, tp=8),
    "llama-3.1-70b prefill tp8 pp2 (batch 8, prompt 2048)":
        lambda: build_llm("llama-3.1-70b", "prefill", batch=8, prompt_len=2048, tp=8, pp=2),
    "mixtral-8x7b decode tp8 ep8 (batch 64)":
        lambda: build_llm("mixtral-8x7b", "decode", batch=64, context=2048, tp=8, ep=8),
    "gpt3-175b decode tp8 pp2":
        lambda: build_llm("gpt3-175b", "decode", batch=32, context=1024, tp=8, pp=2),
    "workload YAML (examples/workloads/toy_decoder.yaml)":
        lambda: load_workload(EXAMPLE),
}


def measure(fn, repeat: int) -> dict:
    build, summary = [], []
    graph = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        graph = fn()
        t1 = time.perf_counter()
        graph.summary()
        summary.append(time.perf_counter() - t1)
        build.append(t1 - t0)
    return {"ops": len(graph), "build_median_s": statistics.median(build), "build_best_s": min(build),
            "summary_median_s": statistics.median(summary)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--format", choices=("table", "json"), default="table")
    args = parser.parse_args()
    build_llm("llama-2-7b", "decode")  # warm the config cache and imports
    results = {name: measure(fn, args.repeat) for name, fn in CASES.items()}
    if args.format == "json":
        print(json.dumps(results, indent=2))
        return
    for name, r in results.items():
        print(f"{name}: {r['ops']} ops, build {r['build_median_s'] * 1e3:.1f} ms median "
              f"({r['build_best_s'] * 1e3:.1f} ms best), summary {r['summary_median_s'] * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
