"""The thread count a calibration measures with, and what it does when other programs keep the
cores busy: wait for a quiet moment, refuse, or measure anyway and say so."""

import importlib

import pytest

from calibration import cores
from calibration.cores import POLL_S, CoreGate, CoresBusy, core_share, resolve_threads
from hwmodels.errors import InputError
from reports.cli import main

cal = importlib.import_module("calibration.calibrate")


def test_threads_beyond_the_usable_cpus_are_refused_naming_the_limit(monkeypatch):
    monkeypatch.setattr(cores, "physical_cores", lambda: 2)
    assert resolve_threads(2) == 2
    with pytest.raises(InputError, match="may use 2 CPU") as info:
        resolve_threads(100_000)
    assert info.value.problems[0].path == "--threads"


def test_a_blas_library_that_caps_the_count_is_refused(monkeypatch):
    monkeypatch.setattr(cores, "physical_cores", lambda: 8)
    monkeypatch.setattr(cores, "blas_limit", lambda n: 4)     # e.g. a build for at most 4 threads
    assert resolve_threads(4) == 4
    with pytest.raises(InputError, match="runs at most 4 thread"):
        resolve_threads(6)


def test_default_is_what_numpy_uses_within_the_cpus(monkeypatch):
    monkeypatch.setattr(cores, "physical_cores", lambda: 2)
    monkeypatch.setattr(cores, "blas_threads", lambda: 1)    # OPENBLAS_NUM_THREADS=1, say
    assert resolve_threads(None) == 1
    monkeypatch.setattr(cores, "blas_threads", lambda: 64)   # a pool sized for a bigger machine
    assert resolve_threads(None) == 2


def test_the_probe_reports_a_share_of_the_cores():
    assert 0.0 < core_share(1, seconds=0.02) <= 1.0


def _gate(shares, **kw):
    it = iter(shares)
    slept = []
    gate = CoreGate(2, probe=lambda n: next(it), sleep=slept.append, **kw)
    return gate, slept


def test_gate_waits_for_a_quiet_moment_then_measures():
    gate, slept = _gate([0.3, 0.5, 0.95], max_wait_s=60)
    gate()
    # two busy probes, one pause after each; the third finds the cores free
    assert slept == [POLL_S, POLL_S] and gate.waited_s == 2 * POLL_S
    assert gate.shares == [0.3, 0.5, 0.95] and gate.warnings == []


def test_gate_refuses_once_the_wait_is_spent():
    gate, slept = _gate([0.3] * 10, max_wait_s=2 * POLL_S)
    with pytest.raises(CoresBusy, match=r"2 BLAS thread\(s\) got 30% of their cores after waiting 10 s"):
        gate()
    assert len(slept) == 2


def test_gate_refuse_mode_does_not_wait_and_measure_mode_warns():
    gate, slept = _gate([0.3], if_busy="refuse")
    with pytest.raises(CoresBusy, match="--if-busy measure"):
        gate()
    assert slept == []
    gate, slept = _gate([0.3, 0.4], if_busy="measure")
    gate()
    gate()
    assert slept == [] and len(gate.warnings) == 1 and "got 30% of their cores at worst" in gate.warnings[0]


def test_cli_busy_machine_exits_3_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cores, "core_share", lambda threads, seconds=0.0: 0.25)
    out = tmp_path / "cal"
    assert main(["calibrate", "--quick", "--no-progress", "--if-busy", "refuse", "--out", str(out)]) == 3
    err = capsys.readouterr().err
    assert "keep the cores busy" in err and "nothing was written" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv,fragment", [
    (["calibrate", "--threads", "100000"], "--threads: 100000 threads asked for"),
    (["calibrate", "--base", ""], "--base: is empty"),
    (["calibrate", "--out", ""], "--out: the output folder is empty"),
    (["calibrate", "--out", "  "], "--out: the output folder is empty"),
    (["validate", "--local", "--out", ""], "--out: is empty"),
    (["validate", "--local", "--hw", ""], "--hw: is empty"),
])
def test_empty_and_impossible_arguments_exit_2_before_measuring(argv, fragment, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cal, "run_cases", lambda *a, **k: pytest.fail("measured before checking"))
    if "--out" not in argv:
        argv = [*argv, "--out", str(tmp_path / "cal")]
    assert main(argv) == 2
    assert fragment in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []       # nothing written here, nor into the current folder


def test_validate_times_with_the_calibrations_thread_count_and_warns_on_another(monkeypatch):
    from types import SimpleNamespace

    from calibration import fingerprint

    validate = importlib.import_module("calibration.validate")   # the module, not the function
    monkeypatch.setattr(fingerprint, "physical_cores", lambda: 2)
    monkeypatch.setattr(cores, "physical_cores", lambda: 2)
    monkeypatch.setattr(cores, "blas_threads", lambda: 2)

    def threads_for(asked, calibrated):
        report = validate.ValidationReport("cal/host.yaml", "host-calibrated")
        return validate._threads_for(asked, SimpleNamespace(threads=calibrated), {}, report), report.warnings

    assert threads_for(None, 1) == (1, [])               # the overlay's own count
    threads, (warning,) = threads_for(2, 1)               # asked for another: allowed, said so
    assert threads == 2 and "calibrated with 1" in warning
    threads, (warning,) = threads_for(None, 8)            # an overlay of a bigger machine
    assert threads == 2 and "calibrated with 8" in warning
    assert threads_for(None, None) == (2, [])            # no calibration: numpy's count
