"""The catalog devices the serving work needs: each loads with its source, its derived figures
match hand arithmetic, and a GeForce card's bf16 GEMMs are costed at the fp32-accumulate rate."""

import pytest

import hwmodels
from reports.cli import main as cli_main
from roofline import cost, ridge_points
from workloads.operators import MatMul

NEW_DEVICES = ["rtx-4090"]


@pytest.mark.parametrize("ref", NEW_DEVICES)
def test_hw_validate_accepts_the_new_catalog_entries(ref, capsys):
    assert cli_main(["hw", "validate", ref]) == 0
    assert f"{ref}: ok" in capsys.readouterr().out


# ---------------------------------------------------------------- RTX 4090
def test_rtx_4090_figures_from_the_ada_whitepaper():
    d = hwmodels.load_device("rtx-4090")
    tensor = d.engines["tensor"]
    # 128 SMs x 512 FLOP/clock (fp32 accumulate) x 2.52 GHz = 165.2 TFLOP/s
    assert tensor.peak_flops["bf16"] == pytest.approx(128 * 512 * 2.52e9, rel=1e-3)
    assert tensor.peak_flops["fp8"] == 330.3e12
    assert d.memory["gddr"].bandwidth_bytes_s == 1008e9      # 384 bit x 21 Gb/s / 8
    assert d.memory["gddr"].capacity_bytes == 24e9
    assert d.memory["l2"].capacity_bytes == 72e6
    assert d.power.tdp_w == 450.0
    # ridge point of bf16 against GDDR6X: 165.2e12 / 1008e9 = 163.9 FLOP/B
    assert ridge_points(d)["tensor:bf16"]["gddr"] == pytest.approx(163.89, rel=1e-4)


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_rtx_4090_bf16_gemm_is_costed_at_the_fp32_accumulate_ceiling(dtype):
    """vLLM and PyTorch accumulate bf16/fp16 GEMMs in fp32, which a GeForce card runs at half its
    fp16-accumulate rate (165.2, not 330.3 TFLOP/s). m = 256 x 128 fills whole waves of 256 x 256
    tiles on 128 SMs with no padding, so the rate is peak x default efficiency x k ramp:
    165.2e12 x 0.8 x 4096 / (4096 + 64) = 130.13e12 FLOP/s, and the time
    2 x 32768 x 256 x 4096 / 130.13e12 = 0.5281 ms (plus launch and latency, 4.55 us)."""
    d = cost(MatMul(name="g", m=256 * 128, n=256, k=4096, dtype=dtype), hwmodels.load_device("rtx-4090"))
    assert d.bound == "compute:tensor"
    assert d.peak_rates["compute:tensor"] == 165.2e12
    rate = 165.2e12 * 0.8 * 4096 / 4160
    assert d.rates["compute:tensor"] == pytest.approx(rate, rel=1e-9)
    assert d.time_s == pytest.approx(2 * 32768 * 256 * 4096 / rate + 4e-6 + 550e-9, rel=1e-6)
