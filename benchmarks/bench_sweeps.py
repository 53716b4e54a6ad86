"""Speed of design sweeps (prints figures; run with PYTHONPATH at the repository root).

1. ``analyze`` over 10,000 hardware variants (HBM bandwidth x tensor-core bf16 peak) of an H100 for
   one Llama-3.1-8B decode step: rate variants are costed vectorized (roofline.variants).
2. a 1,000-point ``simulate`` sweep (HBM bandwidth x batch) on the local process pool.
3. a 200-point ``simulate`` sweep on a Dask LocalCluster with 1 and with 2 workers.

``python benchmarks/bench_sweeps.py [--quick]``: --quick runs a tenth of each.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sweeps import Sweep  # noqa: E402
from sweeps.executors import default_workers  # noqa: E402

BASE = {"hw": "h100-sxm", "model": "llama-3.1-8b", "phase": "decode", "context": 1024}


def _load() -> str:
    try:
        one, five, _ = os.getloadavg()
        return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"
    except OSError:
        return "load average unknown"


def _timed(label: str, sweep: Sweep, **run) -> float:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        frame = sweep.run(out=out, **run)
        elapsed = time.perf_counter() - start
    ok = int((frame.status == "ok").sum())
    print(f"{label}: {len(frame)} points ({ok} ok) in {elapsed:.2f} s = {len(frame) / elapsed:.0f} points/s")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-dask", action="store_true")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    print(f"machine: {default_workers()} usable cores, {_load()}")

    steps = 100 // int(scale ** 0.5)
    analyze = Sweep({**BASE, "job": "analyze", "batch": 8},
                    {"hw.memory.hbm.bandwidth": {"from": "1 TB/s", "to": "10 TB/s", "steps": steps},
                     "hw.engines.tensor.peak.bf16": {"from": "200 TFLOP/s", "to": "3000 TFLOP/s", "steps": steps}})
    _timed(f"analyze, {steps * steps} H100 variants x Llama-3.1-8B decode (2 workers)", analyze, workers=2)

    simulate = Sweep({**BASE, "job": "simulate"},
                     {"hw.memory.hbm.bandwidth": {"from": "2 TB/s", "to": "8 TB/s", "steps": 50 // scale},
                      "batch": [1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384]})
    _timed("simulate sweep, local process pool (2 workers)", simulate, workers=2)

    if args.no_dask:
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        print("dask: not installed (pip install 'ridgeline[distributed]'); skipped")
        return
    dask_sweep = Sweep({**BASE, "job": "simulate"},
                       {"hw.memory.hbm.bandwidth": {"from": "2 TB/s", "to": "8 TB/s", "steps": 20 // scale},
                        "batch": [1, 2, 4, 8, 16, 32, 64, 128, 192, 256]})
    times = {}
    for n in (1, 2):
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            # workers import before timing (the jobs import the simulator lazily, on first use)
            client.run(lambda: [__import__(m) for m in ("sweeps.jobs", "simulator")] and None)
            times[n] = _timed(f"simulate sweep, Dask LocalCluster {n} worker(s)", dask_sweep, client=client, workers=n)
    print(f"dask speed-up 2 workers / 1 worker: {times[1] / times[2]:.2f}x ({_load()})")


if __name__ == "__main__":
    main()
