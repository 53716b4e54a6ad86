"""CLI start-up: wall time of ``ridgeline --help`` (best of several runs in fresh interpreters) and
how many modules it imports. Every command's module is imported at start-up (they register the
commands), so this is the floor of every ``ridgeline`` call.

Run: ``python benchmarks/bench_cli_startup.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = 7


def main() -> int:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "reports.cli", "--help"]
    best = float("inf")
    for _ in range(RUNS):
        t0 = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, env=env, check=True, capture_output=True)
        best = min(best, time.perf_counter() - t0)
    trace = subprocess.run([sys.executable, "-X", "importtime", *argv[1:]], cwd=ROOT, env=env, check=True,
                           capture_output=True, text=True).stderr
    modules = [line.rsplit("|", 1)[1].strip() for line in trace.splitlines() if line.startswith("import time:")][1:]
    heavy = [m for m in ("pydantic", "pint", "pandas", "networkx", "matplotlib", "simpy") if m in modules]
    print(f"ridgeline --help: best of {RUNS} {best * 1e3:.0f} ms; {len(modules)} modules imported; "
          f"heavy ones: {', '.join(heavy) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
