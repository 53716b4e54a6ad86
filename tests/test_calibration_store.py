"""Atomic writes: an interrupted or failed write leaves no partial file; unwritable folders are input errors."""

import importlib
import os

import pandas as pd
import pytest

from calibration.store import (
    atomic_write,
    atomic_write_text,
    ensure_writable_dir,
    read_measurements,
    write_measurements,
    write_overlay,
)
from hwmodels.errors import InputError
from reports.cli import main

# the module, not the function of the same name that the package exports
cal = importlib.import_module("calibration.calibrate")


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "host.yaml"
    atomic_write_text(target, "a: 1\n")
    atomic_write_text(target, "a: 2\n")
    assert target.read_text() == "a: 2\n"
    assert os.listdir(tmp_path) == ["host.yaml"]


def test_written_files_get_the_umask_mode_or_keep_the_replaced_one(tmp_path):
    target = tmp_path / "host.yaml"
    old = os.umask(0o022)
    try:
        atomic_write_text(target, "a: 1\n")
    finally:
        os.umask(old)
    assert target.stat().st_mode & 0o777 == 0o644      # 0o666 less umask 0o022, not mkstemp's 0o600
    target.chmod(0o640)
    atomic_write_text(target, "a: 2\n")
    assert target.stat().st_mode & 0o777 == 0o640


def test_interrupted_write_leaves_old_file_and_no_temp(tmp_path):
    target = tmp_path / "host.yaml"
    atomic_write_text(target, "old: true\n")

    def half_then_interrupt(tmp):
        tmp.write_text("new: tru")  # half a document ...
        raise KeyboardInterrupt     # ... then Ctrl-C

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, half_then_interrupt)
    assert target.read_text() == "old: true\n"
    assert os.listdir(tmp_path) == ["host.yaml"]


def test_failed_first_write_leaves_nothing(tmp_path):
    def disk_full(tmp):
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        atomic_write(tmp_path / "host.yaml", disk_full)
    assert os.listdir(tmp_path) == []


def test_overlay_text_round_trips_through_yaml(tmp_path):
    import yaml

    overlay = {"id": "x", "engines": {"vector": {"efficiency_curve": {"fp32": {
        "x": "log10_flops", "points": [[6.0, 0.5], [9.0, 0.9]]}}}}}
    path = write_overlay(tmp_path / "o.yaml", overlay, header="made by a test")
    text = path.read_text()
    assert text.startswith("# made by a test\n")
    assert "- [6.0, 0.5]" in text
    assert yaml.safe_load(text) == overlay


def test_unwritable_output_folder_is_an_input_error(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    with pytest.raises(InputError) as info:
        ensure_writable_dir(blocker / "out")
    assert "cannot write to output folder" in str(info.value)


def test_cli_unwritable_folder_exits_2_before_measuring(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cal, "run_cases", lambda *a, **k: pytest.fail("measured before checking --out"))
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    assert main(["calibrate", "--quick", "--no-progress", "--out", str(blocker / "out")]) == 2
    assert "cannot write to output folder" in capsys.readouterr().err


def test_interrupted_calibration_writes_no_overlay(tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cal, "run_cases", interrupted)
    out = tmp_path / "cal"
    assert main(["calibrate", "--quick", "--no-progress", "--out", str(out)]) == 130
    assert "nothing was written" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []       # no folder, no staging folder beside it


def test_too_noisy_to_fit_exits_3_with_the_reason_and_writes_nothing(tmp_path, capsys, monkeypatch):
    from calibration.runner import COLUMNS
    from calibration.timing import MeasurementRefused

    reason = str(MeasurementRefused("numpy:host:gemm:fp32[m=64,n=64,k=64]", 0.4, 0.25, 3))
    rows = [{**dict.fromkeys(COLUMNS), "case_id": f"g{i}", "kernel": "gemm", "split": "fit", "dtype": "fp32",
             "status": "refused", "note": reason} for i in range(4)]
    monkeypatch.setattr(cal, "run_cases", lambda *a, **k: pd.DataFrame(rows, columns=COLUMNS))
    out = tmp_path / "cal"
    assert main(["calibrate", "--quick", "--no-progress", "--out", str(out)]) == 3
    err = capsys.readouterr().err
    assert "only 0 trusted 'gemm' fit measurements" in err and "timing spread 40.0%" in err
    assert "nothing was written" in err
    assert os.listdir(tmp_path) == []


def test_interrupted_while_writing_the_overlay_leaves_none(tmp_path, monkeypatch):
    frame = pd.DataFrame({"a": [1.0]})
    write_measurements(frame, tmp_path, "csv")

    def boom(tmp):
        tmp.write_text("id: half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "host.yaml", boom)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["measurements.csv"]


def test_measurements_round_trip_csv_and_parquet(tmp_path):
    frame = pd.DataFrame({"case_id": ["a", "b"], "median_s": [1e-3, 2e-3]})
    for fmt in ("csv", "parquet"):
        folder = tmp_path / fmt
        folder.mkdir()
        path = write_measurements(frame, folder, fmt)
        assert path.suffix == "." + fmt
        pd.testing.assert_frame_equal(read_measurements(folder), frame)


def test_missing_measurements_is_an_input_error(tmp_path):
    with pytest.raises(InputError):
        read_measurements(tmp_path)
