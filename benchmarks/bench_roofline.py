"""Speed and accuracy of the cost model (``roofline``).

Run: ``python benchmarks/bench_roofline.py [--repeat N] [--shapes N] [--format json]``. Prints

* vectorized GEMM cost evaluations per second (``cost_matmul_batch`` over N random shapes);
* scalar cost per call for a few operator kinds: the cost function itself, and ``cost(op, device)``
  when an identical operator was costed before on that device (remembered per signature);
* wall time of analyzing a whole Llama-3.1-70B decode step (``analyze`` + ``bound_summary``):
  cold (a device object the cost model has not seen) and warm, median and best of N repeats;
* the public operator rows (GEMM, GELU, STREAM, latency, NVLink copy, all-reduce) of
  ``public_measurements.csv``: measured, predicted by ``roofline.cost`` on the catalog device,
  and the relative error (through ``calibration.public``, the project's one mapping of rows to
  operators). Only the attention rows with role ``fit`` were fitted to (the exposed softmax of
  each attention kernel family, ``python -m calibration.kernel_fit``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

import hwmodels
from roofline import COSTS, analyze, cost, cost_matmul_batch
from roofline.costs import cost_streaming
from workloads import build_llm
from workloads.operators import Attention, Elementwise, MatMul


def bench_batch(device, shapes: int, repeat: int) -> dict:
    rng = np.random.default_rng(0)
    m, n, k = (rng.integers(1, 16384, shapes).astype(float) for _ in range(3))
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        d = cost_matmul_batch(m, n, k, device)
        d.time_s, d.bound  # noqa: B018 - force the evaluation of time and bound
        times.append(time.perf_counter() - t0)
    return {"shapes": shapes, "best_s": min(times), "median_s": statistics.median(times),
            "evals_per_s": shapes / statistics.median(times)}


SCALAR_OPS = {
    "matmul 4096^3 bf16": MatMul(name="g", m=4096, n=4096, k=4096),
    "matmul decode 1x8192x8192": MatMul(name="g", m=1, n=8192, k=8192),
    "matmul int4 decode 8x4096x14336": MatMul(name="g", m=8, n=14336, k=4096, weight_dtype="int4", group_size=128),
    "attention decode b32 ctx4096 GQA": Attention(name="a", batch=32, heads=64, kv_heads=8, q_len=1, kv_len=4097,
                                                  head_dim=128),
    "elementwise 2^24": Elementwise(name="e", numel=2**24),
}


def _per_call(fn, repeat: int, calls: int = 100) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - t0) / calls)
    return best


def bench_scalar(device, repeat: int) -> dict:
    """Per call: the cost function itself (uncached) and ``cost()`` (remembered per signature)."""
    out = {}
    for name, op in SCALAR_OPS.items():
        fn = COSTS.get(op.kind, cost_streaming)
        uncached = _per_call(lambda fn=fn, op=op: fn(op, device), repeat)
        cached = _per_call(lambda op=op: cost(op, device), repeat)
        out[name] = {"uncached_us": uncached * 1e6, "cached_us": cached * 1e6}
    return out


ANALYSES = {
    "llama-3.1-70b decode tp8 (batch 1, context 1024)":
        lambda: build_llm("llama-3.1-70b", "decode", batch=1, prompt_len=1024, tp=8),
    "llama-3.1-70b decode tp1 (batch 64, context 4096)":
        lambda: build_llm("llama-3.1-70b", "decode", batch=64, context=4096),
}


def bench_analyze(device, repeat: int) -> dict:
    out = {}
    for name, build in ANALYSES.items():
        graph = build()
        cold, warm = [], []
        for _ in range(repeat):
            fresh = device.with_overrides({})        # a device object the cost model has not seen
            t0 = time.perf_counter()
            analyze(graph, fresh).bound_summary()
            cold.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            a = analyze(graph, fresh)
            a.bound_summary()
            warm.append(time.perf_counter() - t0)
        out[name] = {"ops": len(graph), "cold_median_ms": statistics.median(cold) * 1e3,
                     "cold_best_ms": min(cold) * 1e3, "warm_median_ms": statistics.median(warm) * 1e3,
                     "warm_best_ms": min(warm) * 1e3, "dominant": a.bound_summary()["dominant"]}
    return out


def public_operator_rows() -> list[dict]:
    from calibration.public import validate_public

    return [r for r in validate_public() if r.get("how") == "roofline.cost"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--shapes", type=int, default=1_000_000)
    parser.add_argument("--hw", default="h100-sxm")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    args = parser.parse_args()
    device = hwmodels.load_device(args.hw)
    results = {"device": device.id, "batch": bench_batch(device, args.shapes, max(3, args.repeat // 3)),
               "scalar": bench_scalar(device, args.repeat), "analyze": bench_analyze(device, args.repeat),
               "public": public_operator_rows()}
    if args.format == "json":
        print(json.dumps(results, indent=2))
        return
    b = results["batch"]
    print(f"cost_matmul_batch on {device.id}: {b['shapes']} shapes in {b['median_s'] * 1e3:.0f} ms median "
          f"-> {b['evals_per_s']:.3g} GEMM evaluations/s")
    for name, r in results["scalar"].items():
        print(f"cost({name}): {r['uncached_us']:.0f} us uncached, {r['cached_us']:.1f} us remembered")
    for name, r in results["analyze"].items():
        print(f"analyze {name}: {r['ops']} ops, cold {r['cold_median_ms']:.2f} ms median "
              f"({r['cold_best_ms']:.2f} best), warm {r['warm_median_ms']:.2f} ms median "
              f"({r['warm_best_ms']:.2f} best); dominant {r['dominant']}")
    print("\npublic operator rows (measured vs roofline.cost on the catalog device):")
    print(f"{'id':24} {'hardware':14} {'measured':>10} {'predicted':>10} {'unit':8} {'error':>7}")
    for r in results["public"]:
        pred = "-" if r["predicted"] is None else f"{r['predicted']:.4g}"
        err = "-" if r["error"] is None else f"{r['error']:+.1%}"
        print(f"{r['name']:24} {r['hardware']:14} {r['measured']:>10.4g} {pred:>10} {r['unit']:8} {err:>7}")
    errors = [abs(r["error"]) for r in results["public"] if r["error"] is not None]
    if errors:
        print(f"median |error| {statistics.median(errors):.1%}, max {max(errors):.1%} over {len(errors)} rows")


if __name__ == "__main__":
    main()
