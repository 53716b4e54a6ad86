"""``ridgeline calibrate`` and ``ridgeline validate`` end to end (one quick calibration per session)."""

import importlib.util
import json

import pandas as pd
import pytest

import hwmodels
from calibration.public import load_rows, validate_public
from reports.cli import main
from roofline.costs import cost
from workloads.operators import MatMul

HAS_TORCH = importlib.util.find_spec("torch") is not None


@pytest.fixture(scope="session")
def calibrated(tmp_path_factory):
    """One quick calibration of this machine, shared by the tests below (measured even while other
    programs keep the cores busy: a test machine is rarely quiet)."""
    out = tmp_path_factory.mktemp("cal")
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["calibrate", "--quick", "--no-progress", "--if-busy", "measure", "--out", str(out),
                     "--format", "json"])
    assert code == 0
    return out, json.loads(buf.getvalue())


def test_quick_calibration_writes_overlay_measurements_and_fingerprint(calibrated):
    out, summary = calibrated
    assert summary["overlay"] == str(out / "host.yaml")
    measurements = pd.read_parquet(out / "measurements.parquet")
    assert set(measurements.split) == {"fit", "holdout"}
    assert summary["kernels"] == len(measurements)
    assert summary["trusted"] + summary["refused"] == summary["kernels"]
    fp = json.loads((out / "fingerprint.json").read_text())
    for key in ("cpu_model", "cores_usable", "blas", "numpy", "torch", "gpu_name", "gpu_driver"):
        assert key in fp
    fit = json.loads((out / "fit.json").read_text())
    assert sorted(fit["held_out"]) == sorted(measurements.case_id[measurements.split == "holdout"])
    assert fit["run_id"] == fp["run_id"] and f"(run {fp['run_id']})" in (out / "host.yaml").read_text()
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    assert not [p for p in out.parent.iterdir() if ".ridgeline-" in p.name]
    # the thread count measured with is the one numpy uses, and the overlay says so
    from calibration.cores import resolve_threads

    assert fp["threads_pinned"] == resolve_threads(None)
    assert hwmodels.load_device(out / "host.yaml").threads == fp["threads_pinned"]
    assert fp["core_share"]["if_busy"] == "measure" and fp["core_share"]["probes"]
    # main memory is reached by a fitted and a held-out STREAM size, and has its own ceiling
    assert "dram" in fit["ceilings_bytes_s"]


def test_overlay_loads_and_changes_the_host_prediction(calibrated):
    out, _ = calibrated
    dev = hwmodels.load_device(out / "host.yaml")
    base = hwmodels.load_device("host")
    assert dev.id == "host-calibrated"
    assert dev.engines["vector"].efficiency_curve and "fp32" in dev.engines["vector"].efficiency_curve
    op = MatMul(name="g", m=512, n=512, k=512, dtype="fp32")
    assert cost(op, dev).time_s != cost(op, base).time_s


def test_validate_local_with_the_overlay_json(calibrated, capsys, monkeypatch):
    out, _ = calibrated
    # a machine kept busy by other programs during the local runs is said so, on stderr and in JSON
    import calibration.fingerprint as fingerprint

    monkeypatch.setattr(fingerprint, "load_average", lambda: [1000.0, 1000.0, 1000.0])
    code = main(["validate", "--hw", str(out / "host.yaml"), "--local", "--quick", "--no-progress",
                 "--format", "json", "--out", str(out / "val")])
    captured = capsys.readouterr()
    assert code == 0
    doc = json.loads(captured.out)  # one JSON document, nothing else on stdout
    assert doc["public"]["rows"] == []
    (busy,) = doc["warnings"]
    assert "load average reached 1000" in busy and "validate again" in busy
    assert f"warning: {busy}" in captured.err
    rows = doc["kernels"]["rows"]
    assert rows and all(r["error"] == pytest.approx(r["predicted"] / r["measured"] - 1) for r in rows)
    assert "gemm fp32" in doc["kernels"]["summary"]
    assert {r["family"] for r in doc["end_to_end"]["rows"]} == {"block", "mlp"}
    assert "holdout_gemm_fp32_mape" in doc["targets"]
    for name in ("validation.json", "validation.csv", "validation.md", "validation.png"):
        assert (out / "val" / name).stat().st_size > 0


def test_validate_public_only_lists_every_row(public_validation):
    doc, _ = public_validation
    assert doc["kernels"]["rows"] == [] and doc["end_to_end"]["rows"] == []
    rows = doc["public"]["rows"]
    assert [r["name"] for r in rows] == [r["id"] for r in load_rows()]
    assert all(r["source"] and not r["source"].startswith("same") for r in rows)
    by_id = {r["name"]: r["source"] for r in rows}
    assert by_id["ttft-h100-llama2-7b-2048"] == "NVIDIA TensorRT-LLM docs performance/perf-overview.md (Low Latency H100)"


def test_public_operator_rows_convert_units_by_hand():
    row = next(r for r in load_rows() if r["id"] == "gemm-a100-m1024")
    (result,) = validate_public([row])
    t = cost(MatMul(name="g", m=1024, n=12288, k=12288, dtype="fp16", b_role="activation"),
             hwmodels.load_device("a100-sxm-80gb")).time_s
    assert result["predicted"] == pytest.approx(t * 1e3)          # ms
    assert result["error"] == pytest.approx(t * 1e3 / 1.1990 - 1)
    row = next(r for r in load_rows() if r["id"] == "gemm-a100-mamf")
    (result,) = validate_public([row])
    t = cost(MatMul(name="g", m=1024, n=10240, k=5120, dtype="bf16", b_role="activation"),
             hwmodels.load_device("a100-sxm-80gb")).time_s
    assert result["predicted"] == pytest.approx(2 * 1024 * 10240 * 5120 / t / 1e12)  # TFLOP/s


def test_unknown_hardware_row_is_listed_unpredicted():
    row = {**load_rows()[0], "id": "x", "hardware": "no-such-gpu"}
    (result,) = validate_public([row])
    assert result["predicted"] is None and result["error"] is None
    assert result["how"].startswith("not predicted")


@pytest.mark.skipif(HAS_TORCH, reason="checks the message shown when torch is missing")
def test_cuda_without_torch_is_a_clear_input_error(tmp_path, capsys):
    assert main(["calibrate", "--device", "cuda", "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "torch" in err and "--device host" in err
    assert not (tmp_path / "c").exists()


def test_cuda_without_gpu_is_a_clear_input_error(tmp_path, capsys, monkeypatch):
    import calibration.torch_kernels as tk

    class NoCuda:
        class cuda:
            @staticmethod
            def is_available():
                return False

    monkeypatch.setattr(tk, "torch_available", lambda: True)
    monkeypatch.setitem(__import__("sys").modules, "torch", NoCuda)
    assert main(["calibrate", "--device", "cuda:1", "--out", str(tmp_path / "c")]) == 2
    assert "no CUDA GPU is visible" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("argv,fragment", [
    (["calibrate", "--device", "tpu", "--out", "x"], "unknown device 'tpu'"),
    (["calibrate", "--device", "cuda:one", "--out", "x"], "bad GPU index"),
    (["calibrate", "--threads", "0", "--out", "x"], "must be positive"),
    (["validate", "--public", "--local"], "exclude each other"),
    (["validate", "--hw", "no-such-device", "--local"], "unknown hardware id"),
])
def test_bad_arguments_exit_2_with_a_message(argv, fragment, capsys):
    assert main(argv) == 2
    assert fragment in capsys.readouterr().err


def test_public_fit_row_is_marked_and_left_out_of_the_summary():
    from calibration.public import FIT_ROWS, public_summary

    # the energy model's row, the three rows a collective's startup is fitted on and vLLM 0.6's
    # output-processing row
    assert set(FIT_ROWS) == {"energy-h100-llama31-8b-b8", "allreduce-a100x8-azure-64m", "allreduce-h100x8-azure-64m",
                             "allreduce-h200x8-azure-16m", "serve-a100-llama31-8b-vllm-tput"}
    rows = [{"name": "a", "role": "held-out", "error": 0.10},
            {"name": "b", "role": "held-out", "error": -0.30},
            {"name": "c", "role": "held-out", "error": 0.20},
            {"name": "fitted", "role": "fit", "error": -0.001},
            {"name": "d", "role": "held-out", "error": None}]
    s = public_summary(rows)
    # held-out rows with a prediction: |0.1|, |-0.3|, |0.2| -> mean 0.2, median 0.2, worst 0.3 (b)
    assert s["n"] == 3 and s["fit_rows"] == ["fitted"] and s["not_predicted"] == 1
    assert s["mape"] == pytest.approx(0.2) and s["median_abs_error"] == pytest.approx(0.2)
    assert s["worst"] == pytest.approx(0.3) and s["worst_case"] == "b"
    assert "held-out" in s["over"]


def test_validate_public_json_has_roles_and_a_held_out_summary(public_validation):
    doc, _ = public_validation
    roles = {r["name"]: r["role"] for r in doc["public"]["rows"]}
    assert roles["energy-h100-llama31-8b-b8"] == "fit"
    assert set(roles.values()) == {"fit", "held-out"}
    held = [abs(r["error"]) for r in doc["public"]["rows"] if r["role"] == "held-out" and r["error"] is not None]
    assert doc["public"]["summary"]["n"] == len(held)
    assert doc["public"]["summary"]["mape"] == pytest.approx(sum(held) / len(held))
    assert doc["targets"]["public_held_out_mape"]["n"] == len(held)
