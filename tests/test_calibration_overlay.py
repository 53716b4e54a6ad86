"""The fitted overlay, on synthetic measurements with a known answer: it loads through hwmodels
(extends: the base file) and changes roofline predictions exactly as worked out by hand."""

import json
import math

import pandas as pd
import pytest

import hwmodels
from calibration.fit import curve_value
from calibration.kernels import make_case
from calibration.opmap import predict_case
from calibration.overlay import fit_overlay
from calibration.runner import COLUMNS
from calibration.store import write_overlay
from roofline.costs import cost
from workloads.operators import MatMul

PEAK = 100e9  # FLOP/s
LAUNCH = 5e-8  # s (small enough that an 8 KiB copy is not mostly call cost)

BASE_YAML = """\
id: test-cpu
name: Test CPU
kind: cpu
source: written by the test
engines:
  vector:
    kind: vector
    units: 1
    peak: {fp32: "100 GFLOP/s", fp64: "50 GFLOP/s"}
memory:
  l1: {kind: sram, capacity: "32 KiB", bandwidth: "10 TB/s", latency: "0 ns", energy_per_byte: "0 pJ/B"}
  dram: {kind: ddr, capacity: "16 GiB", bandwidth: "1 TB/s", latency: "0 ns", energy_per_byte: "0 pJ/B"}
power: {static: "1 W", tdp: "10 W", energy_per_flop: {fp32: "1 pJ/FLOP", fp64: "2 pJ/FLOP"}}
launch_overhead: "5 us"
"""


def _row(case, median_s):
    return {"case_id": case.case_id, "kernel": case.kernel, "backend": case.backend, "device": case.device,
            "dtype": case.dtype, "split": case.split, "shape": json.dumps(case.shape), "flops": case.flops,
            "bytes_moved": case.bytes_moved, "median_s": median_s, "spread": 0.0, "inner": 1, "attempts": 1,
            "passes_ok": 1, "pass_spread": 0.0, "status": "ok", "note": "",
            "flop_s": case.flops / median_s, "bytes_s": case.bytes_moved / median_s}


GEMM_EFF = {256: 0.5, 512: 0.7, 1024: 0.9}   # efficiency of the synthetic machine at each size
COPY_BW = {512: 100e9, 4 * 2**20: 10e9}      # copy elements -> bandwidth (8 KiB in L1, 64 MiB in DRAM)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("overlay")
    base_path = folder / "test-cpu.yaml"
    base_path.write_text(BASE_YAML)
    rows = [_row(make_case("launch", "fp64", n=1), LAUNCH)]
    for n, e in GEMM_EFF.items():
        case = make_case("gemm", "fp32", m=n, n=n, k=n)
        rows.append(_row(case, 2.0 * n**3 / (PEAK * e) + LAUNCH))
    for n, bw in COPY_BW.items():
        case = make_case("stream_copy", "fp64", n=n)
        rows.append(_row(case, case.bytes_moved / bw + LAUNCH))
    frame = pd.DataFrame(rows, columns=COLUMNS)
    base = hwmodels.load_device(base_path)
    overlay, report = fit_overlay(frame, base, base_ref=str(base_path), fingerprint={"taken_utc": "t"},
                                  caches={"l1": 32 * 1024})
    path = write_overlay(folder / "host.yaml", overlay)
    return base, hwmodels.load_device(path), report, overlay


def test_launch_overhead_is_the_measured_one(fitted):
    _, dev, report, _ = fitted
    assert report.launch_overhead_s == pytest.approx(LAUNCH)
    assert dev.launch_overhead_s == pytest.approx(LAUNCH)


def test_gemm_curve_recovers_the_synthetic_efficiencies(fitted):
    _, dev, report, overlay = fitted
    curve = dev.engines["vector"].efficiency_curve["fp32"]
    assert curve.x == "log10_flops"
    for n, e in GEMM_EFF.items():
        assert curve.at(math.log10(2.0 * n**3)) == pytest.approx(e, abs=1e-4)
    # no GEMM beat the stated peak, so the peak is left alone
    assert dev.engines["vector"].peak_flops["fp32"] == PEAK
    assert "peak" not in overlay["engines"]["vector"]


def test_overlay_changes_the_roofline_prediction_as_computed_by_hand(fitted):
    base, dev, _, _ = fitted
    op = MatMul(name="g", m=768, n=768, k=768, dtype="fp32", b_role="activation")
    flops = 2.0 * 768**3
    # by hand: linear in log10 FLOPs between the 512^3 (0.7) and 1024^3 (0.9) points
    x0, x1 = math.log10(2.0 * 512**3), math.log10(2.0 * 1024**3)
    e = 0.7 + (0.9 - 0.7) * (math.log10(flops) - x0) / (x1 - x0)
    expected = flops / (PEAK * e) + LAUNCH
    assert cost(op, dev).time_s == pytest.approx(expected, rel=1e-3)
    assert cost(op, base).time_s != pytest.approx(expected, rel=1e-2)


def test_memory_ceilings_come_from_the_stream_plateaus(fitted):
    _, dev, report, _ = fitted
    assert report.ceilings_bytes_s == pytest.approx({"l1": 100e9, "dram": 10e9})
    assert dev.memory["dram"].bandwidth_bytes_s == pytest.approx(10e9)
    assert dev.memory["l1"].bandwidth_bytes_s == pytest.approx(100e9)
    assert dev.memory["l1"].efficiency == 1.0
    # the DRAM-sized copy runs exactly at the ceiling; the 8 KiB one lives in L1 (16 KiB of arrays
    # fit in half of 32 KiB), so it says nothing about DRAM and is left out of its curve
    big = 2 * 8 * 4 * 2**20
    (point,) = dev.memory["dram"].efficiency_curve.points
    assert point[0] == pytest.approx(math.log10(big), abs=0.005) and point[1] == 1.0


def test_a_faster_than_peak_gemm_raises_the_peak(tmp_path):
    base_path = tmp_path / "test-cpu.yaml"
    base_path.write_text(BASE_YAML)
    base = hwmodels.load_device(base_path)
    rows = []
    for n, e in {256: 0.6, 1024: 1.2}.items():   # 1.2: the machine boosts above the stated clock
        case = make_case("gemm", "fp32", m=n, n=n, k=n)
        rows.append(_row(case, 2.0 * n**3 / (PEAK * e) + 5e-6))
    overlay, report = fit_overlay(pd.DataFrame(rows, columns=COLUMNS), base, base_ref=str(base_path),
                                  fingerprint={})
    assert report.peaks_flops["fp32"]["empirical"] == pytest.approx(1.2 * PEAK)
    points = overlay["engines"]["vector"]["efficiency_curve"]["fp32"]["points"]
    assert curve_value(points, math.log10(2.0 * 256**3)) == pytest.approx(0.5, abs=1e-4)  # 0.6 / 1.2
    assert curve_value(points, math.log10(2.0 * 1024**3)) == pytest.approx(1.0)
    dev = hwmodels.load_device(write_overlay(tmp_path / "o.yaml", overlay))
    assert dev.engines["vector"].peak_flops["fp32"] == pytest.approx(1.2 * PEAK, rel=1e-5)


def test_transcendental_kernels_fit_a_special_function_unit(tmp_path):
    # a device whose tanh/exp run on an SFU at 10 GFLOP/s. numpy's GELU is nine passes over
    # n-element arrays (8 MiB of them: DRAM); the eight without tanh run one vector FLOP per
    # element at the GEMM curve's smallest-size value 0.6 (clamped below the fitted GEMMs),
    # slower than their <= 12 bytes per element at 1 TB/s, each after the 5 us launch. The tanh
    # pass measured at 1 ns per element needs the SFU at (n / 10e9) / (n * 1e-9) = 0.1 of its peak
    base_path = tmp_path / "sfu-cpu.yaml"
    base_path.write_text(BASE_YAML.replace(
        'peak: {fp32: "100 GFLOP/s", fp64: "50 GFLOP/s"}',
        'peak: {fp32: "100 GFLOP/s", fp64: "50 GFLOP/s"}\n  sfu:\n    kind: scalar\n'
        '    peak: {fp32: "10 GFLOP/s"}').replace('energy_per_byte: "0 pJ/B"}\npower',
                                                 'energy_per_byte: "0 pJ/B", efficiency: 1.0}\npower'))
    base = hwmodels.load_device(base_path)
    n = 2**20
    launch = 5e-6
    measured = 8 * (launch + n / (0.6 * PEAK)) + launch + n * 1e-9
    gelu = make_case("gelu", "fp32", n=n)
    rows = [_row(gelu, measured)]
    for size, e in {256: 0.6, 1024: 0.9}.items():
        case = make_case("gemm", "fp32", m=size, n=size, k=size)
        rows.append(_row(case, 2.0 * size**3 / (PEAK * e) + launch))
    overlay, report = fit_overlay(pd.DataFrame(rows, columns=COLUMNS), base, base_ref=str(base_path),
                                  fingerprint={})
    assert report.curves["sfu:fp32"] == [[round(math.log10(n), 4), 0.1]]
    dev = hwmodels.load_device(write_overlay(tmp_path / "o.yaml", overlay))
    assert predict_case(gelu, dev) == pytest.approx(measured, rel=1e-3)


def test_gpu_calibration_fits_torch_gemms_and_the_pcie_copy(tmp_path):
    """The CUDA path on synthetic torch measurements: no GPU needed to check the arithmetic."""
    from calibration.kernels import KernelCase
    from workloads.operators import MemCopy

    base = hwmodels.load_device("h100-sxm")
    tensor_peak = base.engines["tensor"].peak_flops["bf16"]
    rows = []
    # efficiencies low enough that compute, not the model's L2 traffic, bounds these GEMMs
    for n, e in {4096: 0.25, 8192: 0.35}.items():
        case = KernelCase("gemm", "bf16", (("m", n), ("n", n), ("k", n)), "fit", backend="torch",
                          device="cuda:0", flops=2.0 * n**3, bytes_moved=3.0 * n * n * 2)
        rows.append(_row(case, 2.0 * n**3 / (tensor_peak * e) + base.launch_overhead_s))
    nbytes = 2**28
    copy = KernelCase("copy_h2d", "int8", (("bytes", nbytes),), "fit", backend="torch", device="cuda:0",
                      bytes_moved=float(nbytes))
    measured = nbytes / 40e9 + 20e-6   # 40 GB/s plus a little fixed time
    rows.append(_row(copy, measured))
    overlay, report = fit_overlay(pd.DataFrame(rows, columns=COLUMNS), base, base_ref="h100-sxm",
                                  fingerprint={})
    assert overlay["extends"] == "h100-sxm"
    dev = hwmodels.load_device(write_overlay(tmp_path / "cuda0.yaml", overlay))
    # the fitted curve reproduces each measured GEMM (shape effects such as wave quantization stay
    # in the model, so the curve itself is e / utilization, not e)
    for n, row in zip((4096, 8192), rows):
        gemm = MatMul(name="g", m=n, n=n, k=n, dtype="bf16", b_role="activation")
        assert cost(gemm, dev).time_s == pytest.approx(row["median_s"], rel=1e-3)
    op = MemCopy(name="c", bytes_moved=float(nbytes), src="host", dst="device")
    assert cost(op, dev).time_s == pytest.approx(measured, rel=1e-4)
    assert "link:pcie" in report.ceilings_bytes_s
