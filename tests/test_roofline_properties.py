"""Physics of the cost model as properties: more bandwidth or compute never makes an operator
slower; the time covers every resource's demand; the vectorized path is the scalar one."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hwmodels
from roofline import cost, cost_matmul_batch
from workloads.operators import Attention, Collective, Elementwise, MatMul, RMSNorm

A100 = hwmodels.load_device("a100-sxm-80gb")
H100 = hwmodels.load_device("h100-sxm")   # operand_multicast 2: the cluster path of the tiling model
H100_NO_MULTICAST = H100.with_overrides({"engines.tensor.operand_multicast": 1})

# (dotted override path, YAML value with {} for the scaled number)
FASTER = {
    "hbm": ("memory.hbm.bandwidth", "{:.6g} GB/s", 2039.0),
    "l2": ("memory.l2.bandwidth", "{:.6g} TB/s", 7.22),
    "smem": ("memory.smem.bandwidth", "{:.6g} TB/s", 19.5),
    "tensor": ("engines.tensor.peak.bf16", "{:.6g} TFLOP/s", 312.0),
    "vector": ("engines.vector.peak.bf16", "{:.6g} TFLOP/s", 78.0),
    "nvlink": ("links.nvlink.bandwidth", "{:.6g} GB/s", 300.0),
    "host": ("memory.host.bandwidth", "{:.6g} GB/s", 32.0),
}

dims = st.integers(1, 20000)


@st.composite
def operators(draw):
    kind = draw(st.sampled_from(["matmul", "int4", "host", "attention", "elementwise", "rmsnorm", "collective"]))
    if kind in ("matmul", "int4", "host"):
        extra = {"weight_dtype": "int4", "group_size": 128} if kind == "int4" else {}
        if kind == "host":
            extra["weight_placement"] = "host"
        return MatMul(name="g", m=draw(dims), n=draw(dims), k=draw(dims), batch=draw(st.integers(1, 4)), **extra)
    if kind == "attention":
        q = draw(st.integers(1, 4096))
        kv_heads = draw(st.sampled_from([1, 8, 32]))
        return Attention(name="a", batch=draw(st.integers(1, 64)), heads=32, kv_heads=kv_heads, q_len=q,
                         kv_len=q + draw(st.integers(0, 8192)), head_dim=128, fused=draw(st.booleans()))
    if kind == "elementwise":
        return Elementwise(name="e", numel=draw(st.integers(1, 2**30)), special=draw(st.booleans()))
    if kind == "rmsnorm":
        return RMSNorm(name="n", rows=draw(st.integers(1, 8192)), cols=draw(st.sampled_from([4096, 8192])))
    return Collective(name="c", collective=draw(st.sampled_from(["all_reduce", "all_gather", "all_to_all"])),
                      payload_bytes=float(draw(st.integers(1, 2**31))), group_size=draw(st.integers(2, 8)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(op=operators(), resource=st.sampled_from(sorted(FASTER)), factor=st.floats(1.0, 16.0))
def test_more_bandwidth_or_compute_never_makes_an_operator_slower(op, resource, factor):
    path, fmt, value = FASTER[resource]
    faster = A100.with_overrides({path: fmt.format(value * factor)})
    assert cost(op, faster).time_s <= cost(op, A100).time_s * (1 + 1e-12)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(m=dims, n=dims, k=dims, factor=st.floats(1.0, 16.0))
def test_faster_l2_or_operand_multicast_never_slows_a_gemm_on_h100(m, n, k, factor):
    op = MatMul(name="g", m=m, n=n, k=k)
    base = cost(op, H100).time_s
    faster = H100.with_overrides({"memory.l2.bandwidth": f"{11.45 * factor:.6g} TB/s"})
    assert cost(op, faster).time_s <= base * (1 + 1e-12)
    # sharing operand reads in a cluster is a faster L2 for the shared operand: never slower
    assert base <= cost(op, H100_NO_MULTICAST).time_s * (1 + 1e-12)


@settings(max_examples=50, deadline=None)
@given(op=operators())
def test_time_covers_every_resource_demand(op):
    d = cost(op, A100)
    times = d.times()
    assert times, "every operator moves bytes"
    for key, amount in d.work.items():
        assert d.rates[key] > 0
        assert d.time_s >= amount / d.rates[key] + d.fixed_s - 1e-15
    assert d.time_s == pytest.approx(max(times.values()) + d.fixed_s, rel=1e-12)
    assert d.fixed_s >= A100.launch_overhead_s
    assert d.energy_j > 0


@settings(max_examples=25, deadline=None)
@given(m=st.lists(dims, min_size=1, max_size=8), n=dims, k=dims)
def test_vectorized_matches_scalar(m, n, k):
    for device in (A100, H100):
        batch = cost_matmul_batch(np.array(m), n, k, device)
        for i, mi in enumerate(m):
            one = cost(MatMul(name="g", m=mi, n=n, k=k), device)
            assert batch.time_s[i] == pytest.approx(one.time_s, rel=1e-9)
            assert batch.bound[i] == one.bound
