"""A calibration's output folder holds one whole set: the previous run's or the new one's, never
a mix, whatever point a run is killed at; what killed runs leave is cleaned by the next run."""

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from synthetic_calibration import BASE_YAML, synthetic_frame

from calibration import atomic_set
from calibration.atomic_set import check_out_dir, clean_stale, commit, staging_dir
from hwmodels.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
SET = ["fingerprint.json", "fit.json", "host.yaml", "measurements.csv"]


def write_old_set(folder: Path) -> None:
    """A previous calibration whose every file says OLD, and a report the user put beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in SET:
        (folder / name).write_text('{"run_id": "OLD"}\n' if name.endswith(".json") else "# OLD\n")
    (folder / "val").mkdir()
    (folder / "val" / "validation.md").write_text("the user's report\n")


def which_run(folder: Path) -> str:
    """The run every set file of ``folder`` came from; fails on a mix or a missing file."""
    assert sorted(p.name for p in folder.iterdir() if p.name != "val") == SET
    fp = json.loads((folder / "fingerprint.json").read_text())["run_id"]
    fit = json.loads((folder / "fit.json").read_text())["run_id"]
    overlay = (folder / "host.yaml").read_text()
    measurements = (folder / "measurements.csv").read_text()
    if fp == "OLD":
        assert fit == "OLD" and overlay == "# OLD\n" and measurements == "# OLD\n"
        return "old"
    assert fit == fp and f"(run {fp})" in overlay and measurements.startswith("case_id,")
    return "new"


def dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".ridgeline-" in p.name)


# ---- the folder itself -------------------------------------------------------------------------

def test_refused_output_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    (tmp_path / "file").write_text("x")
    for bad, fragment in [("", "is empty"), (".", "current folder"), (str(tmp_path.parent), "current folder"),
                          ("notes", "holds other files (todo.txt) and no calibration"),
                          ("file", "not a folder"), ("/", "root folder")]:
        with pytest.raises(InputError, match=re.escape(fragment)):
            check_out_dir(bad)
    assert check_out_dir("cal") == tmp_path / "cal"
    assert not (tmp_path / "cal").exists()       # checking creates nothing


def test_commit_into_a_new_folder_and_over_an_old_set(tmp_path):
    out = tmp_path / "cal"
    staging = staging_dir(out)
    (staging / "fingerprint.json").write_text("1")
    commit(staging, out)
    assert os.listdir(out) == ["fingerprint.json"] and leftovers(tmp_path) == []
    write_old_set(tmp_path / "cal2")
    staging = staging_dir(tmp_path / "cal2")
    (staging / "host.yaml").write_text("# NEW\n")
    commit(staging, tmp_path / "cal2")
    # the old set is gone as a whole; the user's report is carried over
    assert sorted(os.listdir(tmp_path / "cal2")) == ["host.yaml", "val"]
    assert (tmp_path / "cal2" / "val" / "validation.md").read_text() == "the user's report\n"
    assert leftovers(tmp_path) == []


def test_commit_without_an_atomic_exchange_renames_twice(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic_set, "_exchange", lambda a, b: False)   # e.g. macOS, or NFS
    out = tmp_path / "cal"
    write_old_set(out)
    staging = staging_dir(out)
    (staging / "host.yaml").write_text("# NEW\n")
    commit(staging, out)
    assert sorted(os.listdir(out)) == ["host.yaml", "val"] and leftovers(tmp_path) == []


def test_clean_stale_restores_and_removes_what_killed_runs_left(tmp_path):
    out = tmp_path / "cal"
    pid = dead_pid()
    # killed between the two renames (no atomic exchange): the old folder is aside, none in place
    write_old_set(tmp_path / f".cal.ridgeline-old-{pid}-ab12")
    assert clean_stale(out) == [f"restored cal from .cal.ridgeline-old-{pid}-ab12"]
    assert which_run(out) == "old" and leftovers(tmp_path) == []
    # killed after the exchange: the new set is in place, the old one (and the user's report)
    # under the staging name; a staging folder of a run killed while writing; old-style temp files
    swapped = tmp_path / f".cal.ridgeline-staging-{pid}-cd34"
    os.rename(out, swapped)
    out.mkdir()
    (out / "host.yaml").write_text("# NEW\n")
    (out / ".fit.json.x1y2.tmp").write_text("half")
    partial = tmp_path / f".cal.ridgeline-staging-{pid}-ef56"
    partial.mkdir()
    (partial / "measurements.csv").write_text("half")
    live = tmp_path / f".cal.ridgeline-staging-{os.getpid()}-gh78"   # a run still going: left alone
    live.mkdir()
    clean_stale(out)
    assert sorted(os.listdir(out)) == ["host.yaml", "val"]
    assert leftovers(tmp_path) == [live.name]


# ---- a real `ridgeline calibrate` process, killed ----------------------------------------------

CHILD = """
import importlib
import sys
import pandas as pd
cal = importlib.import_module("calibration.calibrate")
frame = pd.read_csv(sys.argv[1])
cal.run_cases = lambda *args, **kwargs: frame       # measuring is not what is tested here
from reports.cli import main
sys.exit(main(["calibrate", "--base", sys.argv[2], "--out", sys.argv[3], "--measurements", "csv",
               "--no-progress", "--format", "json"]))
"""


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    synthetic_frame().to_csv(folder / "frame.csv", index=False)
    (folder / "test-cpu.yaml").write_text(BASE_YAML)
    return folder


def start(inputs, out, hold):
    env = {**os.environ, "PYTHONPATH": str(ROOT), atomic_set.HOLD_ENV: hold}
    # SIGINT back to its default in the child: a shell's background job (`make test &`) ignores it,
    # and Python then installs no KeyboardInterrupt handler, so the interrupt tests would not test
    return subprocess.Popen([sys.executable, "-c", CHILD, str(inputs / "frame.csv"),
                             str(inputs / "test-cpu.yaml"), str(out)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_for_hold(proc, point):
    for line in proc.stderr:
        if line.strip() == f"hold: {point}":
            return
    pytest.fail(f"the process ended without reaching {point}: {proc.wait()}")


@pytest.mark.parametrize("point,expect", [("staging", "old"), ("staged", "old"), ("swapped", "new")])
def test_sigkill_leaves_one_whole_set_and_the_next_run_cleans_up(inputs, tmp_path, point, expect):
    out = tmp_path / "cal"
    write_old_set(out)
    proc = start(inputs, out, point)
    wait_for_hold(proc, point)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert which_run(out) == expect
    assert leftovers(tmp_path)                  # the killed run's folder, until the next run
    if point == "swapped":                      # the next run, in full
        proc = start(inputs, out, "none")
        assert proc.wait() == 0, proc.stderr.read()
        expect = "new"
    else:                                       # what the next run does first
        clean_stale(out)
    assert which_run(out) == expect and leftovers(tmp_path) == []
    assert (out / "val" / "validation.md").read_text() == "the user's report\n"


def test_sigint_once_the_set_is_written_finishes_the_swap_and_says_so(inputs, tmp_path):
    out = tmp_path / "cal"
    write_old_set(out)
    proc = start(inputs, out, "staged:1")
    wait_for_hold(proc, "staged")
    proc.send_signal(signal.SIGINT)
    assert proc.wait() == 130
    assert "interrupted after the new calibration was put in place" in proc.stderr.read()
    assert which_run(out) == "new" and leftovers(tmp_path) == []


def test_sigint_while_writing_keeps_the_old_set_and_says_so(inputs, tmp_path):
    out = tmp_path / "cal"
    write_old_set(out)
    proc = start(inputs, out, "staging")
    wait_for_hold(proc, "staging")
    proc.send_signal(signal.SIGINT)
    assert proc.wait() == 130
    assert "nothing was written" in proc.stderr.read()
    assert which_run(out) == "old" and leftovers(tmp_path) == []
