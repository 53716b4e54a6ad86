"""roofline.variants: N rate variants of a device costed at once equal N scalar analyses."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwmodels import load_device
from hwmodels.errors import InputError
from roofline import analyze
from roofline.variants import analyze_variants, rate_path
from workloads import build_llm


@pytest.fixture(scope="module")
def h100():
    return load_device("h100-sxm")


@pytest.fixture(scope="module")
def decode_tp2():
    # tensor parallel: all-reduces over NVLink, so link rates matter too
    return build_llm("llama-3.1-8b", "decode", batch=64, context=512, tp=2)


def _scalar(device, graph, rates: dict, i: int):
    unit = {"memory": "B/s", "links": "B/s", "engines": "FLOP/s"}
    overrides = {p: f"{float(v[i])!r} {unit[p.split('.')[0]]}" for p, v in rates.items()}
    return analyze(graph, device.with_overrides(overrides))


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.floats(0.5e12, 10e12), st.floats(2e14, 3e15), st.floats(100e9, 1.8e12),
                          st.floats(2e12, 20e12)), min_size=1, max_size=4))
def test_variants_equal_scalar_analysis(h100, decode_tp2, values):
    rates = {"memory.hbm.bandwidth": np.array([v[0] for v in values]),
             "engines.tensor.peak.bf16": np.array([v[1] for v in values]),
             "links.nvlink.bandwidth": np.array([v[2] for v in values]),
             "memory.l2.bandwidth": np.array([v[3] for v in values])}
    va = analyze_variants(decode_tp2, h100, rates)
    for i in range(len(values)):
        a = _scalar(h100, decode_tp2, rates, i)
        assert va.total_time_s[i] == pytest.approx(a.total_time_s, rel=1e-9)
        assert va.total_energy_j[i] == pytest.approx(a.total_energy_j, rel=1e-9)
        assert va.dominant[i] == a.bound_summary()["dominant"]


def test_prefill_tile_choice_follows_each_variant(h100):
    # a compute-heavy prefill: the GEMM tile a kernel picks depends on the rates, per variant
    graph = build_llm("llama-3.1-8b", "prefill", batch=2, prompt_len=1024)
    rates = {"memory.l2.bandwidth": np.array([1e12, 3e12, 30e12]),
             "engines.tensor.peak.bf16": np.array([3e15, 989e12, 200e12])}
    va = analyze_variants(graph, h100, rates)
    for i in range(3):
        assert va.total_time_s[i] == pytest.approx(_scalar(h100, graph, rates, i).total_time_s, rel=1e-9)


def test_rate_paths(h100):
    assert rate_path(h100, "memory.hbm.bandwidth")
    assert rate_path(h100, "engines.tensor.peak.bf16")
    assert not rate_path(h100, "memory.hbm.capacity")     # changes the work, not a rate
    assert not rate_path(h100, "engines.tensor.peak.int3")
    npu = load_device("tpu-v5e")
    assert not rate_path(npu, "engines.mxu.peak.bf16")     # derived from the systolic array
    with pytest.raises(InputError, match="not a rate"):
        analyze_variants(build_llm("llama-3.1-8b", "decode"), h100, {"memory.hbm.capacity": [1e9]})
    with pytest.raises(InputError, match="scale-up link"):   # NVLink below PCIe: another link scales up
        analyze_variants(build_llm("llama-3.1-8b", "decode"), h100, {"links.nvlink.bandwidth": [50e9]})
    with pytest.raises(InputError, match="positive"):
        analyze_variants(build_llm("llama-3.1-8b", "decode"), h100, {"memory.hbm.bandwidth": [0.0]})
