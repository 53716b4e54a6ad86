"""Simulator speed: engine events per second, a Llama-3.1-70B TP8 decode step, a 100k-operator graph.

Run: ``python benchmarks/bench_simulator.py [--format json] [--quick]``. Figures are wall-clock on
this machine (best of ``--repeat`` runs); memory is the peak Python allocation measured with
tracemalloc during the run, and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
import tracemalloc
from pathlib import Path

from _figures import print_figures

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _best(fn, repeat: int):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def bench_engine(tasks: int = 50_000, devices: int = 8, repeat: int = 3, coupled: bool = True) -> dict:
    """Engine alone: tasks over ``devices`` x (compute, hbm, l2) resources, four streams per
    device, each task depending on the previous one of its stream (so about 32 tasks are live
    at once). ``coupled``: every fourth task also crosses one shared link, which ties all live
    tasks into one sharing component recomputed at every event (the worst case); otherwise
    each device's tasks share only among themselves."""
    from simulator.engine import FluidEngine

    def run():
        rng = random.Random(0)
        caps = {}
        for d in range(devices):
            caps.update({f"d{d}|compute": 1.0, f"d{d}|hbm": 1.0, f"d{d}|l2": 1.0})
        caps["link"] = 1.0
        eng = FluidEngine(caps)
        last: dict[tuple, int] = {}
        for i in range(tasks):
            d, s = rng.randrange(devices), rng.randrange(4)
            work = {f"d{d}|compute": rng.uniform(1, 5) * 1e-6, f"d{d}|hbm": rng.uniform(1, 5) * 1e-6,
                    f"d{d}|l2": rng.uniform(0, 2) * 1e-6}
            if coupled and i % 4 == 0:
                work["link"] = rng.uniform(1, 5) * 1e-6
            key = (d, s)
            deps = [last[key]] if key in last else []
            last[key] = eng.add(work, 1e-6, deps, [key])
        return eng.run()

    wall, res = _best(run, repeat)
    return {"tasks": tasks, "events": res.events, "wall_s": wall, "events_per_s": res.events / wall,
            "simulated_s": res.makespan_s}


def bench_llama70b_decode(repeat: int = 3) -> dict:
    """Llama-3.1-70B decode step, TP8 over HGX H100 (8 ranks simulated), batch 64, context 4096."""
    import hwmodels
    import workloads
    from simulator import simulate

    graph = workloads.build_llm("llama-3.1-70b", "decode", batch=64, context=4096, tp=8)
    system = hwmodels.load_system("hgx-h100")
    simulate(graph, system)  # warm the cost model's per-device caches once
    wall, res = _best(lambda: simulate(graph, system), repeat)
    return {"ops_per_rank": len(graph), "tasks": len(res._infos), "events": res.events, "wall_s": wall,
            "events_per_s": res.events / wall, "latency_s": res.latency_s,
            "throughput_tok_s": res.throughput_tok_s, "bottleneck": res.bottleneck["resource"]}


def big_graph(n_ops: int = 100_000):
    """A synthetic graph of ``n_ops`` operators: 4 branches of GEMMs and elementwise ops that
    join every 8 operators (a wide DAG, so several streams' worth of work stays live)."""
    import workloads
    from workloads.operators import Elementwise, MatMul

    g = workloads.Graph("big", meta={"tokens": 1})
    join: list[str] = []
    i = 0
    while i < n_ops:
        heads = []
        for b in range(4):
            if i >= n_ops:
                break
            if b % 2 == 0:
                op = MatMul(name=f"mm{i}", m=256 + 64 * b, n=1024, k=1024)
            else:
                op = Elementwise(name=f"ew{i}", numel=1 << 20, flops_per_element=1.0)
            g.add(op, join)
            heads.append(op.name)
            i += 1
        join = heads
    return g


def bench_100k(n_ops: int = 100_000) -> dict:
    """A 100k-operator graph on one H100: wall time (plain run), peak Python allocation during a
    second, traced run (tracemalloc), and the process's peak RSS."""
    import hwmodels
    from simulator import simulate

    device = hwmodels.load_device("h100-sxm")
    graph = big_graph(n_ops)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    res = simulate(graph, device)
    wall = time.perf_counter() - t0
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    del res
    tracemalloc.start()
    res = simulate(graph, device)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"ops": len(graph), "events": res.events, "wall_s": wall, "ops_per_s": len(graph) / wall,
            "peak_traced_mib": peak / 2**20, "bytes_per_op": peak / len(graph),
            "peak_rss_mib_before": rss0 / 1024, "peak_rss_mib_after": rss1 / 1024,
            "latency_s": res.latency_s}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    out = {
        "engine_per_device_sharing": bench_engine(10_000 if args.quick else 50_000, repeat=args.repeat,
                                                  coupled=False),
        "engine_all_coupled": bench_engine(10_000 if args.quick else 50_000, repeat=args.repeat),
        "llama70b_tp8_decode": bench_llama70b_decode(repeat=args.repeat),
        "graph_100k": bench_100k(10_000 if args.quick else 100_000),
    }
    print_figures(out, args.format)
    return 0


if __name__ == "__main__":
    sys.exit(main())
