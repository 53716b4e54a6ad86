"""The catalog devices the serving work needs: each loads with its source, its derived figures
match hand arithmetic, and a GeForce card's bf16 GEMMs are costed at the fp32-accumulate rate."""

import pytest

import hwmodels
from reports.cli import main as cli_main
from roofline import cost, ridge_points
from workloads.operators import MatMul

NEW_DEVICES = ["rtx-4090", "rtx-pro-6000-server", "l40s", "b200", "hgx-b200", "mi325x"]


@pytest.mark.parametrize("ref", NEW_DEVICES)
def test_hw_validate_accepts_the_new_catalog_entries(ref, capsys):
    assert cli_main(["hw", "validate", ref]) == 0
    assert f"{ref}: ok" in capsys.readouterr().out


# ---------------------------------------------------------------- RTX 4090
def test_rtx_4090_figures_from_the_ada_whitepaper():
    d = hwmodels.load_device("rtx-4090")
    tensor = d.engines["tensor"]
    # 128 SMs x 512 FLOP/clock (fp32 accumulate) x 2.73 GHz (the clock under load, not the rated
    # 2.52 GHz boost) = 178.9 TFLOP/s
    assert tensor.peak_flops["bf16"] == pytest.approx(128 * 512 * 2.73e9, rel=1e-3)
    assert tensor.peak_flops["fp8"] == 357.8e12
    assert tensor.efficiency == 0.9     # 161 of 178.9 TFLOP/s measured by an MMA kernel
    assert d.memory["gddr"].bandwidth_bytes_s == 1008e9      # 384 bit x 21 Gb/s / 8
    # 24 GiB on the card; the catalog holds what the driver reports (torch total_memory)
    assert d.memory["gddr"].capacity_bytes == 25_250_627_584
    assert 0.9 * 2**30 * 24 < d.memory["gddr"].capacity_bytes < 24 * 2**30
    assert d.memory["l2"].capacity_bytes == 72e6
    assert d.power.tdp_w == 450.0
    # ridge point of bf16 against GDDR6X: 178.9e12 / 1008e9 = 177.5 FLOP/B
    assert ridge_points(d)["tensor:bf16"]["gddr"] == pytest.approx(177.48, rel=1e-4)


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_rtx_4090_bf16_gemm_is_costed_at_the_fp32_accumulate_ceiling(dtype):
    """vLLM and PyTorch accumulate bf16/fp16 GEMMs in fp32, which a GeForce card runs at half its
    fp16-accumulate rate (178.9, not 357.8 TFLOP/s at 2.73 GHz). m = 256 x 128 fills whole waves of
    256 x 256 tiles on 128 SMs with no padding, so the rate is peak x efficiency x k ramp:
    178.9e12 x 0.9 x 4096 / (4096 + 64) = 158.53e12 FLOP/s, and the time
    2 x 32768 x 256 x 4096 / 158.53e12 = 0.4335 ms (plus launch and latency, 4.55 us)."""
    d = cost(MatMul(name="g", m=256 * 128, n=256, k=4096, dtype=dtype), hwmodels.load_device("rtx-4090"))
    assert d.bound == "compute:tensor"
    assert d.peak_rates["compute:tensor"] == 178.9e12
    rate = 178.9e12 * 0.9 * 4096 / 4160
    assert d.rates["compute:tensor"] == pytest.approx(rate, rel=1e-9)
    assert d.time_s == pytest.approx(2 * 32768 * 256 * 4096 / rate + 4e-6 + 550e-9, rel=1e-6)


# ---------------------------------------------------------------- the others
def test_l40s_and_rtx_pro_run_fp32_accumulate_at_the_full_rate():
    l40s, pro = hwmodels.load_device("l40s"), hwmodels.load_device("rtx-pro-6000-server")
    # professional parts: one bf16 figure, equal to fp16, half of fp8
    assert l40s.engines["tensor"].peak_flops["bf16"] == l40s.engines["tensor"].peak_flops["fp16"] == 362e12
    assert l40s.engines["tensor"].peak_flops["fp8"] == 733e12
    # 362e12 / 864e9 = 419.0 FLOP/B
    assert ridge_points(l40s)["tensor:bf16"]["gddr"] == pytest.approx(418.98, rel=1e-4)
    # 188 SMs x 1024 FLOP/clock x 2.43 GHz = 467.8 TFLOP/s dense (the page's 1 PFLOP/s is sparse)
    assert pro.engines["tensor"].peak_flops["bf16"] == pytest.approx(188 * 1024 * 2.43e9, rel=1e-3)
    assert pro.memory["gddr"].capacity_bytes == 96e9
    # 468e12 / 1597e9 = 293.05 FLOP/B
    assert ridge_points(pro)["tensor:bf16"]["gddr"] == pytest.approx(293.05, rel=1e-4)
    assert "nvlink" not in l40s.links and "nvlink" not in pro.links


def test_b200_and_its_eight_gpu_system():
    b200 = hwmodels.load_device("b200")
    assert b200.engines["tensor"].peak_flops["bf16"] == 2250e12
    assert b200.memory["hbm"].capacity_bytes == 180e9
    # 2250e12 / 7.7e12 = 292.2 FLOP/B
    assert ridge_points(b200)["tensor:bf16"]["hbm"] == pytest.approx(292.21, rel=1e-4)
    # NVLink 5: 1.8 TB/s bidirectional = 900 GB/s per direction
    assert b200.links["nvlink"].bandwidth_bytes_s == 900e9
    s = hwmodels.load_system("hgx-b200")
    assert s.accelerators == [f"gpu{i}" for i in range(8)]
    assert s.graph.nodes["nvswitch"]["in_network_reduction"] is True
    # 8 x 1.8 TB/s = 14.4 TB/s per node, the datasheet's figure
    assert 8 * 2 * s.graph.edges["gpu0", "nvswitch"]["link"].bandwidth_bytes_s == pytest.approx(14.4e12)


def test_mi325x_is_an_mi300x_with_hbm3e_and_1000_w():
    mi325, mi300 = hwmodels.load_device("mi325x"), hwmodels.load_device("mi300x")
    # 304 CUs x 2048 FLOP/clock at the 1447 MHz of a dense BF16 GEMM (AMD's MAF measurement)
    # = 900.9 TFLOP/s; the white paper's 1307.4 is at the 2.1 GHz maximum clock
    assert mi325.engines["matrix"].peak_flops["bf16"] == pytest.approx(304 * 2048 * 1.447e9, rel=1e-4)
    # the MI300X's at 1207 MHz: 304 x 2048 x 1.207e9 = 751.4 TFLOP/s
    assert mi300.engines["matrix"].peak_flops["bf16"] == pytest.approx(304 * 2048 * 1.207e9, rel=1e-4)
    assert mi325.memory["hbm"].capacity_bytes == 256e9
    assert mi325.memory["hbm"].bandwidth_bytes_s == 6.0e12
    assert mi325.memory["infinity_cache"].capacity_bytes == mi300.memory["infinity_cache"].capacity_bytes
    # TDP rule at AMD's measured efficiency 0.94: active = 120 + 0.50 x 880 = 560 W;
    # (1000 - 560) / (900.9e12 x 0.94) = 0.5196 pJ
    assert mi325.engines["matrix"].efficiency == 0.94
    assert mi325.power.energy_j_per_flop["bf16"] == pytest.approx(0.5196e-12, rel=2e-3)
