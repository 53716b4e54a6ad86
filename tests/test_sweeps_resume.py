"""A sweep killed with SIGKILL mid-run resumes to exactly its planned points, none stored twice."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sweeps import Sweep, read_results

ROOT = Path(__file__).resolve().parent.parent
SPEC = f"""\
base: {{job: simulate, hw: h100-sxm, model: {ROOT / "examples/workloads/toy_decoder.yaml"}}}
axes:
  hw.memory.hbm.bandwidth: {{from: 2 TB/s, to: 5 TB/s, steps: 40}}
  hw.memory.l2.bandwidth: [8 TB/s, 12 TB/s, 16 TB/s]
"""


def _sweep(spec: Path, out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "reports.cli", "sweep", "run", str(spec), "--out", str(out),
                             "--format", "json", *extra], env=env, cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_sigkill_mid_run_then_resume(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    out = tmp_path / "out"
    proc = _sweep(spec, out, "--workers", "2")
    parts = out / "results.parquet"
    deadline = time.monotonic() + 120
    while not (parts.is_dir() and any(parts.glob("part-*.parquet"))):
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)          # the sweep and its pool workers, mid-write or not
    proc.wait()
    planned = {p.key for p in Sweep.from_yaml(spec).points()}
    assert len(planned) == 120
    stored = read_results(out)["key"]
    assert 0 < len(stored) < len(planned), "the kill must land mid-run for this test to mean anything"
    assert stored.is_unique

    resumed = _sweep(spec, out, "--workers", "1", "--resume")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read().decode()
    frame = read_results(out)
    assert frame["key"].is_unique
    assert set(frame["key"]) == planned
    assert (frame["status"] == "ok").all()
