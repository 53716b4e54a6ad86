"""Memory tiers in a system: a KV cache placed in CXL memory is read over the GPU's PCIe port."""

import pytest

import hwmodels
from simulator import simulate
from workloads import build_llm

BATCH, CONTEXT = 32, 8192
# Llama-3.1-8B: 32 layers, 8 KV heads of 128, bf16 -> 2 x 32 x 8 x 128 x 2 B = 131072 B per token
KV_BYTES = BATCH * CONTEXT * 2 * 32 * 8 * 128 * 2


@pytest.fixture(scope="module")
def system():
    return hwmodels.load_system("h100-cxl")


def test_gpu_in_h100_cxl_has_a_cxl_tier_behind_its_pcie_port(system):
    gpu = system.devices["gpu0"]
    assert gpu.memory["cxl"].kind == "cxl"
    assert gpu.memory["cxl"].capacity_bytes == 512e9
    assert gpu.memory["cxl"].bandwidth_bytes_s == gpu.links["pcie"].bandwidth_bytes_s == 64e9


def test_kv_in_cxl_is_bounded_by_the_pcie_port(system):
    on_device = simulate(build_llm("llama-3.1-8b", "decode", batch=BATCH, context=CONTEXT), system)
    in_cxl = simulate(build_llm("llama-3.1-8b", "decode", batch=BATCH, context=CONTEXT,
                                kv_placement="cxl"), system)
    # every KV byte crosses the 64 GB/s port once per step: the step cannot be shorter than that
    assert in_cxl.latency_s >= KV_BYTES / 64e9
    assert in_cxl.latency_s > 10 * on_device.latency_s
    assert "memory:cxl" in set(in_cxl.timeline["resource"])
    assert in_cxl.utilisation["gpu0"]["memory:cxl"] > 0.5
    assert in_cxl.utilisation["gpu0"]["link:pcie"] > 0.5


def test_sensitivity_names_the_path_a_memory_tier_and_its_link_form():
    """KV cache on host memory behind PCIe: host memory owns the critical path, yet doubling it
    alone gains little (PCIe then binds); doubling the path (both) nearly halves the step, and
    the ranking puts the path first."""
    res = simulate(build_llm("llama-2-7b", "decode", batch=64, context=4096, kv_placement="host"), "h100-sxm")
    sens = res.sensitivity()
    path = "memory:host+link:pcie"
    assert list(sens)[0] == path and sens[path]["resources"] == ["memory:host", "link:pcie"]
    assert sens[path]["change"] < -0.45 and sens["memory:host"]["change"] > -0.10
    both = simulate(build_llm("llama-2-7b", "decode", batch=64, context=4096, kv_placement="host"), "h100-sxm",
                    scale={"memory:host": 2.0, "link:pcie": 2.0})
    assert sens[path]["latency_s"] == pytest.approx(both.latency_s, rel=1e-12)
    latencies = [v["latency_s"] for v in sens.values()]
    assert latencies == sorted(latencies)
