"""The fitted overlay, on synthetic measurements with a known answer: it loads through hwmodels
(extends: the base file) and changes roofline predictions exactly as worked out by hand."""

import math

import pandas as pd
import pytest
from synthetic_calibration import BASE_YAML, GEMM_EFF, LAUNCH, PEAK, measured_row, synthetic_frame

import hwmodels
from calibration.fit import curve_value
from calibration.kernels import make_case
from calibration.opmap import predict_case
from calibration.overlay import fit_overlay
from calibration.runner import COLUMNS
from calibration.store import write_overlay
from roofline.costs import cost
from workloads.operators import MatMul


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("overlay")
    base_path = folder / "test-cpu.yaml"
    base_path.write_text(BASE_YAML)
    frame = synthetic_frame()
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
        rows.append(measured_row(case, 2.0 * n**3 / (PEAK * e) + 5e-6))
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
    rows = [measured_row(gelu, measured)]
    for size, e in {256: 0.6, 1024: 0.9}.items():
        case = make_case("gemm", "fp32", m=size, n=size, k=size)
        rows.append(measured_row(case, 2.0 * size**3 / (PEAK * e) + launch))
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
        rows.append(measured_row(case, 2.0 * n**3 / (tensor_peak * e) + base.launch_overhead_s))
    nbytes = 2**28
    copy = KernelCase("copy_h2d", "int8", (("bytes", nbytes),), "fit", backend="torch", device="cuda:0",
                      bytes_moved=float(nbytes))
    measured = nbytes / 40e9 + 20e-6   # 40 GB/s plus a little fixed time
    rows.append(measured_row(copy, measured))
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


def test_main_memory_reached_but_never_measured_is_refused(tmp_path):
    # the 64 MiB copy (DRAM) was refused as too noisy: writing the overlay would predict every
    # DRAM-sized kernel with the base device's 1 TB/s, so the fit refuses instead
    from calibration.runner import TooFewMeasurements

    base_path = tmp_path / "test-cpu.yaml"
    base_path.write_text(BASE_YAML)
    with pytest.raises(TooFewMeasurements, match="no trusted STREAM run measured dram"):
        fit_overlay(synthetic_frame(dram_status="refused"), hwmodels.load_device(base_path),
                    base_ref=str(base_path), fingerprint={}, caches={"l1": 32 * 1024})


def test_levels_reached_by_the_stream_runs(tmp_path):
    from calibration.overlay import levels_reached

    base_path = tmp_path / "test-cpu.yaml"
    base_path.write_text(BASE_YAML)
    base = hwmodels.load_device(base_path)
    # 2 arrays x 512 x 8 B = 8 KiB: twice that fits in the 32 KiB L1; 64 MiB lives in DRAM
    assert levels_reached(synthetic_frame(), base, {"l1": 32 * 1024}) == ["l1", "dram"]
    assert levels_reached(synthetic_frame().iloc[:-1], base, {"l1": 32 * 1024}) == ["l1"]


def test_stream_sweep_reaches_main_memory_with_a_held_out_size():
    from calibration.kernels import stream_working_sets

    mib = 2**20
    # last cache 1 MiB: powers of 4 from 16 KiB up to 2 MiB (16K, 64K, 256K, 1M; the second held
    # out), then main memory at 3, 4 and 6 MiB, the middle one held out
    assert stream_working_sets(True, 1 * mib, 2**30) == [
        (16 * 1024, "fit"), (64 * 1024, "holdout"), (256 * 1024, "fit"), (mib, "fit"),
        (3 * mib, "fit"), (4 * mib, "holdout"), (6 * mib, "fit")]
    # 40 MiB of memory: one working set may take 5 MiB, so main memory gets 3 and 4 MiB (fitted)
    assert stream_working_sets(True, 1 * mib, 40 * mib)[-3:] == [(mib, "fit"), (3 * mib, "fit"), (4 * mib, "fit")]
