"""The cost model: demands, engine mapping, tiling, placement, attention, collectives, efficiency.

Expected values are derived here by hand from the device's catalog numbers (read from the device,
so that a corrected datasheet figure does not break the arithmetic being tested).
"""

import dataclasses
import math
from typing import ClassVar

import numpy as np
import pytest

import hwmodels
from hwmodels.errors import InputError
from roofline import Demands, collectives, cost, cost_matmul_batch, ridge_points
from roofline.builder import DemandsBuilder
from roofline.costs import COSTS, _gemm_traffic, cluster_shapes, operand_reads, register_cost
from roofline.efficiency import (
    ATTENTION_KERNELS,
    CACHE_USABLE_FRACTION,
    LINK_FRAMING,
    padding_utilization,
    wave_utilization,
)
from roofline.mathns import SCALAR
from workloads import OPERATORS, Operator, Tensor, register_operator
from workloads.operators import Attention, Collective, Conv2d, Elementwise, MatMul, Softmax


@pytest.fixture(scope="module")
def a100():
    return hwmodels.load_device("a100-sxm-80gb")


# -- Demands -------------------------------------------------------------------------------------
def test_demands_time_is_max_plus_fixed_and_bound_is_the_argmax():
    d = Demands("x", work={"compute:tensor": 100.0, "memory:hbm": 50.0},
                rates={"compute:tensor": 10.0, "memory:hbm": 2.0}, fixed_s=1.0)
    assert d.times() == {"compute:tensor": 10.0, "memory:hbm": 25.0}
    assert d.time_s == 26.0
    assert d.bound == "memory:hbm"
    assert d.flops == 100.0 and d.bytes_at("hbm") == 50.0 and d.bytes_at("l2") == 0.0


def test_demands_latency_bound_and_empty():
    small = Demands("x", work={"memory:hbm": 1.0}, rates={"memory:hbm": 1e9}, fixed_s=1e-6)
    assert small.bound == "latency" and small.time_s == pytest.approx(1e-6 + 1e-9)
    empty = Demands("y", fixed_s=2e-6)
    assert empty.time_s == 2e-6 and empty.bound == "latency" and empty.times() == {}


def test_two_dtypes_on_one_engine_add_their_times(a100):
    """One key per engine; its rate is the FLOP-weighted harmonic mean of the dtype rates."""
    b = DemandsBuilder("mixed", "custom", a100)
    b.compute("vector", "fp32", 3e9)
    b.compute("vector", "bf16", 5e9)
    d = b.build()
    vec = a100.engines["vector"]
    t32 = 3e9 / (vec.peak_flops["fp32"] * vec.efficiency)
    t16 = 5e9 / (vec.peak_flops["bf16"] * vec.efficiency)
    assert list(d.work) == ["compute:vector"]
    assert d.work["compute:vector"] == 8e9
    assert d.times()["compute:vector"] == pytest.approx(t32 + t16, rel=1e-12)
    assert d.rates["compute:vector"] == pytest.approx(8e9 / (t32 + t16), rel=1e-12)


# -- engine mapping --------------------------------------------------------------------------------
def test_fp32_gemm_runs_on_cuda_cores_unless_the_device_lists_fp32_tensor(a100):
    op = MatMul(name="g", m=4096, n=4096, k=4096, dtype="fp32")
    d = cost(op, a100)
    assert "compute:tensor" not in d.work
    assert d.peak_rates["compute:vector"] == a100.engines["vector"].peak_flops["fp32"]
    tf32 = a100.with_overrides({"engines.tensor.peak.fp32": "156 TFLOP/s"})
    d2 = cost(op, tf32)
    assert d2.peak_rates["compute:tensor"] == 156e12
    assert d2.time_s < d.time_s


def test_fp8_on_a100_runs_at_the_bf16_tensor_rate_and_special_on_the_sfu(a100):
    d = cost(MatMul(name="g", m=2048, n=2048, k=2048, dtype="fp8"), a100)
    assert d.peak_rates["compute:tensor"] == a100.engines["tensor"].peak_flops["bf16"]
    s = cost(Softmax(name="s", rows=8, cols=1024), a100)
    assert s.work["compute:sfu"] == 8 * 1024            # one exp per element
    assert s.work["compute:vector"] == 4 * 8 * 1024     # max, subtract, sum, divide


def test_special_functions_fall_back_to_the_vector_engine(a100):
    no_sfu = a100.with_overrides({"engines.sfu": None})
    s = cost(Softmax(name="s", rows=8, cols=1024), no_sfu)
    assert s.work == {**{k: v for k, v in s.work.items() if k != "compute:vector"},
                      "compute:vector": 5 * 8 * 1024}


def test_a_memory_device_cannot_run_operators():
    with pytest.raises(InputError, match="no compute engines"):
        cost(MatMul(name="g", m=8, n=8, k=8), hwmodels.load_device("cz120-cxl"))


MINIMAL = """
id: toy
name: a vector machine with DRAM only
kind: cpu
source: test
engines:
  vec: {kind: vector, units: 4, peak: {fp32: 100 GFLOP/s, bf16: 200 GFLOP/s}}
memory:
  dram: {kind: ddr, capacity: 16 GB, bandwidth: 50 GB/s, latency: 100 ns, energy_per_byte: 100 pJ/B}
power: {static: 5 W, tdp: 50 W, energy_per_flop: {fp32: 10 pJ/FLOP, bf16: 5 pJ/FLOP}}
"""


def test_a_device_without_caches_or_links(tmp_path):
    """No on-chip level: a GEMM's CTA tiles read straight from DRAM, A ceil(n / tn) and B
    ceil(m / tm) times; no matrix unit: its FLOPs run on the vector engine; no link: no collective."""
    path = tmp_path / "toy.yaml"
    path.write_text(MINIMAL)
    toy = hwmodels.load_device(str(path))
    d = cost(MatMul(name="g", m=64, n=64, k=64), toy)
    assert set(d.work) == {"compute:vec", "memory:dram"}
    # 64 x 64 fits one 64-wide candidate tile: every operand once
    assert d.work["memory:dram"] == 3 * 64 * 64 * 2
    # 512^3: the largest tiles (256 x 128 or 128 x 256) re-read one operand 4 times, the other twice
    big = cost(MatMul(name="g", m=512, n=512, k=512), toy)
    assert big.work["memory:dram"] == 512 * 512 * 2 * (4 + 2 + 1)
    with pytest.raises(InputError, match="no link"):
        cost(Collective(name="c", collective="all_reduce", payload_bytes=1e6, group_size=2), toy)


# -- GEMM tiling -----------------------------------------------------------------------------------
def test_gemm_that_fits_on_chip_reads_each_operand_once(a100):
    d = cost(MatMul(name="g", m=512, n=512, k=512), a100)
    assert d.work["memory:hbm"] == 3 * 512 * 512 * 2
    assert d.work["memory:l2"] >= d.work["memory:hbm"]


@pytest.mark.parametrize("l2_bytes", [40e6, 80e6])
def test_gemm_rereads_follow_the_cache_blocking(a100, l2_bytes):
    """One SM (no wave to share fetches): half the usable L2 holds a Tm x k panel of A, half a
    k x Tn panel of B: T = c / (2 k e); A is read ceil(n / T) times and B ceil(m / T) times."""
    dev = a100.with_overrides({"memory.l2.capacity": f"{l2_bytes / 1e6:g} MB", "engines.tensor.units": 1})
    n = 16384
    d = cost(MatMul(name="g", m=n, n=n, k=n), dev)
    c = l2_bytes * CACHE_USABLE_FRACTION
    t = c / (2 * n * 2)
    reads = math.ceil(n / t)
    operand = n * n * 2
    assert reads == (54 if l2_bytes == 40e6 else 27)
    assert d.work["memory:hbm"] == operand * reads * 2 + operand


def test_a_wave_in_lockstep_shares_its_fetches():
    """108 tiles of 256 x 128 run at once as a 12 x 9 block (12 x 9 = 108): A is fetched once per
    9 column tiles, B once per 12 row tiles; their k-slices need (12 x 256 + 9 x 128) x 2 B x 128."""
    n = 16384.0
    assert operand_reads(n, n, n, 2.0, 2.0, 40e6, 256.0, 128.0, units=108.0) == (math.ceil(128 / 9), math.ceil(64 / 12))
    # one unit: only the resident panels help (T = 20 MB / (2 x 16384 x 2) = 305)
    assert operand_reads(n, n, n, 2.0, 2.0, 40e6, 256.0, 128.0, units=1.0) == (54, 54)
    # no cache: every tile fetches its own panels
    assert operand_reads(n, n, n, 2.0, 2.0, 0.0, 256.0, 128.0, units=108.0) == (128, 64)


def test_a_two_tile_cluster_reads_the_shared_panel_once_from_l2():
    """1024 x 1024 x 512 bf16 in 128 x 256 tiles: 8 row tiles, 4 column tiles; |A| = |B| = 1 MiB,
    |C| = 2 MiB. Alone, each tile streams its panels through L2: A 4 times, B 8 times. A cluster of
    2 tiles along m gets each B panel from one multicast read: B 4 times; along n, A twice."""
    h100 = hwmodels.load_device("h100-sxm")
    op = MatMul(name="g", m=1024, n=1024, k=512)
    mib = 1024.0 ** 2
    operands = dict(a=(mib, 2.0, "device"), bm=(mib, 2.0, "device"), c=(2 * mib, 2.0, "device"), others=())
    l2 = {}
    for cluster in ((1.0, 1.0), (2.0, 1.0), (1.0, 2.0)):
        b = DemandsBuilder("g", "matmul", h100)
        _gemm_traffic(b, 1024.0, 1024.0, 512.0, 1.0, op.flops(), tm=128.0, tn=256.0, xp=SCALAR,
                      cluster=cluster, **operands)
        l2[cluster] = b.work["memory:l2"]
    assert l2[(1.0, 1.0)] == (4 + 8 + 2) * mib
    assert l2[(2.0, 1.0)] == (4 + 4 + 2) * mib
    assert l2[(1.0, 2.0)] == (2 + 8 + 2) * mib
    assert cluster_shapes(1) == ((1.0, 1.0),)
    assert cluster_shapes(2) == ((2.0, 1.0), (1.0, 2.0))


def test_an_l2_bound_gemm_picks_the_cluster_that_reads_least():
    """4096^3 bf16 on an H100 whose L2 is made the bottleneck (1 TB/s): every operand is 32 MiB.
    Best without multicast: 256 x 128 tiles, A ceil(4096 / 128) = 32 and B 16 times, + C = 49 x
    32 MiB. With 2-tile clusters sharing A: A 16, B 16, + C = 33 x 32 MiB."""
    h100 = hwmodels.load_device("h100-sxm").with_overrides({"memory.l2.bandwidth": "1 TB/s"})
    alone = h100.with_overrides({"engines.tensor.operand_multicast": 1})
    op = MatMul(name="g", m=4096, n=4096, k=4096)
    operand = 4096 * 4096 * 2
    shared, single = cost(op, h100), cost(op, alone)
    assert shared.bound == single.bound == "memory:l2"
    assert shared.work["memory:l2"] == 33 * operand
    assert single.work["memory:l2"] == 49 * operand
    assert shared.work["memory:hbm"] == single.work["memory:hbm"]   # multicast is an on-chip matter


def test_catalog_l2_bandwidths_follow_their_derivations():
    """A100: 5120 B/clk x 1.41 GHz (whitepaper). H100 SXM (estimate): A100's per-SM rate,
    5120 / 108 B/clk, x 132 SMs x 1.83 GHz."""
    a100 = hwmodels.load_device("a100-sxm-80gb")
    h100 = hwmodels.load_device("h100-sxm")
    assert a100.memory["l2"].bandwidth_bytes_s == pytest.approx(5120 * 1.41e9, rel=1e-3)
    assert h100.memory["l2"].bandwidth_bytes_s == pytest.approx(5120 / 108 * 132 * 1.83e9, rel=1e-3)
    assert (a100.engines["tensor"].operand_multicast, h100.engines["tensor"].operand_multicast) == (1, 2)
    with pytest.raises(InputError, match="operand_multicast"):
        h100.with_overrides({"engines.tensor.operand_multicast": 0})


def test_weights_in_host_memory_are_read_over_pcie(a100):
    op = MatMul(name="g", m=1, n=4096, k=4096, weight_placement="host")
    d = cost(op, a100)
    w = op.inputs[1].bytes
    assert d.work["memory:host"] == w and d.work["link:pcie"] == w
    # A (1 x 4096) is read once: one wave of 108 SMs covers all 32 column tiles
    assert d.work["memory:hbm"] == 4096 * 2 + 4096 * 2
    assert d.bound in ("memory:host", "link:pcie")
    assert d.time_s >= w / a100.memory["host"].bandwidth_bytes_s


CXL = {"memory.cxl": {"kind": "cxl", "capacity": "256 GB", "bandwidth": "36 GB/s", "latency": "400 ns",
                      "energy_per_byte": "60 pJ/B"},
       "links.cxl": {"kind": "cxl", "bandwidth": "32 GB/s", "latency": "300 ns", "energy_per_byte": "20 pJ/B"}}


def test_kv_cache_in_cxl_memory_is_read_over_the_cxl_link(a100):
    op = Attention(name="a", batch=1, heads=32, kv_heads=8, q_len=1, kv_len=4097, head_dim=128,
                   kv_placement="cxl")
    d = cost(op, a100.with_overrides(CXL))
    kv = 2 * 4096 * 8 * 128 * 2 + 2 * 8 * 128 * 2      # cached K, V read; new K, V appended
    assert d.work["memory:cxl"] == kv and d.work["link:cxl"] == kv
    assert d.bound in ("memory:cxl", "link:cxl")
    assert d.time_s >= kv / 32e9
    with pytest.raises(InputError, match="no memory level of kind 'cxl'"):
        cost(op, a100)


def test_int4_weights_pay_scales_and_dequantization(a100):
    op = MatMul(name="g", m=1, n=4096, k=4096, weight_dtype="int4", group_size=128)
    d = cost(op, a100)
    weight_bytes = 4096 * 4096 * 0.5 + 4096 * 4096 / 128 * (2 + 0.5)
    assert op.inputs[1].bytes == weight_bytes
    assert d.work["compute:vector"] == 2 * 4096 * 4096
    assert weight_bytes < d.work["memory:hbm"] < weight_bytes + 4 * 8192


def test_small_gemm_cannot_fill_the_machine(a100):
    """m = n = 128: at most 4 tiles of the smallest (64 x 64) candidate, each split at most
    k / 256 = 16 ways, so at most 64 of 108 SMs work."""
    d = cost(MatMul(name="g", m=128, n=128, k=4096), a100)
    tensor = a100.engines["tensor"]
    assert d.rates["compute:tensor"] <= tensor.peak_flops["bf16"] * tensor.efficiency * 64 / 108


def test_wave_and_padding_utilization():
    assert wave_utilization(109, 108) == pytest.approx(109 / 216)
    assert wave_utilization(216, 108) == 1.0
    assert padding_utilization(20, 16) == pytest.approx(20 / 32)


def test_conv2d_is_an_implicit_gemm(a100):
    op = Conv2d(name="c", batch=1, in_channels=64, out_channels=64, height=56, width=56, kernel=3, padding=1)
    d = cost(op, a100)
    assert d.work["compute:tensor"] == 2 * 64 * 56 * 56 * 64 * 9
    x, w, y = 64 * 56 * 56 * 2, 64 * 64 * 9 * 2, 64 * 56 * 56 * 2
    assert d.work["memory:hbm"] == x + w + y      # everything fits in L2: each once


# -- calibration curves ---------------------------------------------------------------------------
def test_compute_efficiency_curve_from_an_overlay(a100):
    dev = a100.with_overrides({"engines.tensor.efficiency_curve.bf16":
                               {"x": "log10_flops", "points": [[9, 0.2], [12, 0.6]]}})
    m, n, k = 256 * 108, 256, 4096     # every candidate tile fills whole waves, no padding
    d = cost(MatMul(name="g", m=m, n=n, k=k), dev)
    x = math.log10(2 * m * n * k)
    assert d.rates["compute:tensor"] == pytest.approx(312e12 * (0.2 + 0.4 * (x - 9) / 3), rel=1e-9)


def test_memory_efficiency_curve_from_an_overlay(a100):
    dev = a100.with_overrides({"memory.hbm.efficiency_curve": {"x": "log10_bytes",
                                                               "points": [[3, 0.1], [9, 0.9]]}})
    d = cost(Elementwise(name="e", numel=2**20), dev)
    nbytes = 2 * 2**20 * 2
    assert d.work["memory:hbm"] == nbytes
    eff = 0.1 + 0.8 * (math.log10(nbytes) - 3) / 6
    assert d.rates["memory:hbm"] == pytest.approx(2039e9 * eff, rel=1e-9)


def test_fixed_time_is_launch_plus_farthest_latency(a100):
    d = cost(Elementwise(name="e", numel=1024), a100)
    assert d.fixed_s == pytest.approx(a100.launch_overhead_s + a100.memory["hbm"].latency_s)


# -- attention -------------------------------------------------------------------------------------
def _attn(fused, **kw):
    args = dict(batch=1, heads=32, kv_heads=32, q_len=2048, kv_len=2048, head_dim=128, fused=fused)
    args.update(kw)
    return Attention(name="a", **args)


def test_flash_attention_keeps_scores_on_chip(a100):
    fused, unfused = cost(_attn(True), a100), cost(_attn(False), a100)
    scores = 1 * 32 * 2048 * 2048 * 2
    # unfused writes the scores, reads them, writes the probabilities, reads them
    assert unfused.work["memory:hbm"] - fused.work["memory:hbm"] == 4 * scores


def test_flash_attention_rereads_kv_once_per_wave_when_it_does_not_fit(a100):
    """One head, 32768 queries = 256 query tiles of 128 rows on 108 SMs: 3 waves. K and V
    (16 MiB) fit in the usable half of the 40 MB L2, but not in half of 1 MiB."""
    op = _attn(True, heads=1, kv_heads=1, q_len=32768, kv_len=32768)
    t = 32768 * 128 * 2       # one (q, dim) tensor
    # Q, O and the appended K, V once; the new K and V once, or once per wave of query tiles
    assert cost(op, a100).work["memory:hbm"] == 6 * t
    tiny = a100.with_overrides({"memory.l2.capacity": "1 MiB"})
    assert cost(op, tiny).work["memory:hbm"] == 4 * t + 3 * 2 * t


def test_decode_attention_reads_the_kv_cache_once(a100):
    d = cost(Attention(name="a", batch=4, heads=32, kv_heads=8, q_len=1, kv_len=4097, head_dim=128), a100)
    cache = 2 * 4 * 4096 * 8 * 128 * 2
    small = 4 * 32 * 128 * 2 * 2 + 4 * 8 * 128 * 2 * 4     # q, o; new and appended k, v
    assert d.work["memory:hbm"] == cache + small
    assert d.bound == "memory:hbm"


# -- collectives -----------------------------------------------------------------------------------
def test_ring_tree_and_in_switch_bytes():
    p, n = 800.0, 8
    ring = collectives.steps("all_reduce", p, n, "ring")
    assert collectives.link_bytes(ring) == pytest.approx(2 * (n - 1) / n * p)
    assert collectives.latency_s(ring, 1.0) == 2 * (n - 1)
    assert collectives.link_bytes(collectives.steps("all_gather", p, n)) == pytest.approx((n - 1) / n * p)
    assert collectives.link_bytes(collectives.steps("reduce_scatter", p, n)) == pytest.approx((n - 1) / n * p)
    tree = collectives.steps("all_reduce", p, n, "tree")
    assert collectives.link_bytes(tree) == pytest.approx(2 * p)
    assert collectives.latency_s(tree, 1.0) == 2 * 3
    nvls = collectives.steps("all_reduce", p, n, "in_switch")
    # ld_reduce: P out, P/8 in; st + multicast: P/8 out, P in: 900 each way, 2 hops
    assert collectives.link_bytes(nvls) == pytest.approx(900.0) and collectives.latency_s(nvls, 1.0) == 2
    # in-switch all-gather: the gathered 800 arrive in one step
    assert collectives.link_bytes(collectives.steps("all_gather", p, n, "in_switch")) == p
    assert collectives.steps("send_recv", p, 2) == [collectives.Step(p, 1)]
    assert collectives.bus_factor("all_reduce", 8) == 1.75


def test_collective_algorithm_errors():
    with pytest.raises(InputError) as info:
        collectives.steps("all_reduce", 1.0, 8, "rign")
    assert info.value.problems[0].suggestion == "ring"
    with pytest.raises(InputError, match="does not implement all_gather"):
        collectives.steps("all_gather", 1.0, 8, "tree")
    with pytest.raises(InputError, match="payload_bytes"):
        collectives.steps("all_reduce", -1.0, 8)


def test_all_reduce_cost_on_a_ring(a100):
    from roofline.efficiency import (
        COLLECTIVE_FILL_BYTES,
        COLLECTIVE_STEP_STARTUP_S,
        collective_link_efficiency,
    )

    p, n = float(2**30), 8
    d = cost(Collective(name="ar", collective="all_reduce", payload_bytes=p, group_size=n), a100)
    link_bytes = 2 * (n - 1) / n * p
    # NCCL over NVLink: (20.0/25 + 20.6/25 + 40.1/50) / 3 = (0.8 + 0.824 + 0.802) / 3 = 0.809 of
    # the line rate, in place of the framing
    rate = 300e9 * 0.809
    assert d.work["link:nvlink"] == pytest.approx(link_bytes)
    assert d.rates["link:nvlink"] == pytest.approx(rate)
    assert d.work["memory:hbm"] == pytest.approx(2 * link_bytes + (n - 1) / n * p)
    # 14 pipeline steps, each waiting the ring's startup scaled by P / (P + 4 MiB) = 256/257
    startup = 14 * COLLECTIVE_STEP_STARTUP_S["ring"] * 256 / 257
    assert COLLECTIVE_FILL_BYTES == 4 * 2**20
    fixed = 4e-6 + 1e-6 + 2 * (n - 1) * 1e-6 + startup   # launch, link latency touched, 14 ring steps
    assert d.fixed_s == pytest.approx(fixed)
    assert d.time_s == pytest.approx(link_bytes / rate + fixed)
    # a link without a library figure keeps its framing (PCIe: 256 / 282)
    payload, overhead = LINK_FRAMING["pcie"]
    assert collective_link_efficiency(a100.links["pcie"]) == pytest.approx(payload / (payload + overhead))


def test_all_reduce_uses_in_switch_reduction_where_the_switch_offers_it():
    h100 = hwmodels.load_device("h100-sxm")
    op = Collective(name="ar", collective="all_reduce", payload_bytes=2.0**30, group_size=8)
    d = cost(op, h100)
    assert d.work["link:nvlink"] == pytest.approx(9 / 8 * 2.0**30)   # (1 + 1/8) P each way
    assert d.rates["link:nvlink"] == pytest.approx(450e9 * 0.809 * 0.85)   # NCCL's NVLink and NVLS shares
    assert "compute:vector" not in d.work      # the switch reduces
    op.algorithm = "ring"                     # pinned on the operator (NVLS off)
    assert cost(op, h100).work["link:nvlink"] == pytest.approx(1.75 * 2**30)


# -- registry, batch, ridge -------------------------------------------------------------------------
def test_registered_cost_function_is_used_and_unknown_kinds_stream(a100):
    op = Elementwise(name="e", numel=1000)
    assert cost(op, a100).work["memory:hbm"] == 4000
    try:
        @register_cost("elementwise")
        def double(op, device):
            return Demands(op.name, {"memory:hbm": 1.0}, {"memory:hbm": 1.0})
        assert cost(op, a100).time_s == 1.0
    finally:
        from roofline.costs import cost_streaming
        register_cost("elementwise")(cost_streaming)
    assert COSTS["elementwise"] is cost_streaming
    assert cost(op, a100).work["memory:hbm"] == 4000


def test_user_operator_kinds_stream_until_they_register_a_cost(a100):
    @dataclasses.dataclass(kw_only=True)
    class Blur(Operator):
        kind: ClassVar[str] = "test_blur"
        numel: int
        taps: list = dataclasses.field(default_factory=lambda: [1, 2, 1])   # unhashable: not remembered

        def default_tensors(self):
            return ([Tensor(f"{self.name}.in", (self.numel,), "fp32")],
                    [Tensor(f"{self.name}.out", (self.numel,), "fp32")])

        def flops(self):
            return {("vector", "fp32"): 2.0 * len(self.taps) * self.numel}

    register_operator(Blur)
    try:
        op = Blur(name="b", numel=1000)
        d = cost(op, a100)
        assert d.work["memory:hbm"] == 8000 and d.work["compute:vector"] == 6000

        @register_cost("test_blur")
        def blur_cost(op, device):
            b = DemandsBuilder(op.name, op.kind, device)
            b.placed("device", 4.0 * op.numel)
            return b.build()

        assert cost(op, a100).work == {"memory:hbm": 4000.0}
    finally:
        OPERATORS.unregister("test_blur")
        COSTS.unregister("test_blur")


def test_remembered_costs_are_not_shared_with_callers(a100):
    op = MatMul(name="g", m=64, n=64, k=64)
    first = cost(op, a100)
    hbm = first.work["memory:hbm"]
    first.work["memory:hbm"] = 0.0
    again = cost(MatMul(name="other", m=64, n=64, k=64), a100)
    assert again.work["memory:hbm"] == hbm and again.op == "other"


def test_vectorized_gemm_equals_the_scalar_cost(a100):
    rng = np.random.default_rng(7)
    m, n, k = (rng.integers(1, 9000, 40) for _ in range(3))
    for wd, gs in ((None, None), ("int4", 128)):
        batch = cost_matmul_batch(m, n, k, a100, weight_dtype=wd, group_size=gs)
        times, bounds = batch.time_s, batch.bound
        for i in range(len(m)):
            one = cost(MatMul(name="g", m=int(m[i]), n=int(n[i]), k=int(k[i]), weight_dtype=wd,
                              group_size=gs), a100)
            assert times[i] == pytest.approx(one.time_s, rel=1e-6)
            assert bounds[i] == one.bound


def test_vectorized_gemm_rejects_bad_shapes(a100):
    with pytest.raises(InputError, match="positive"):
        cost_matmul_batch([1, 0], [1, 1], [1, 1], a100)


def test_ridge_points(a100):
    ridges = ridge_points(a100)
    assert ridges["tensor:bf16"]["hbm"] == pytest.approx(312e12 / 2039e9)
    assert ridges["vector:fp32"]["link:nvlink"] == pytest.approx(19.5e12 / 300e9)


# -- data resident in a cache level ---------------------------------------------------------------
def test_streaming_op_resident_in_a_cache_level_reads_it_there():
    xeon = hwmodels.load_device("xeon-8480")     # memory: l1, l2, l3 on chip; ddr
    n = 1 << 20
    base = Elementwise(name="add", numel=n, operands=2, dtype="fp32")
    nbytes = 3 * n * 4                           # two inputs read, one output written
    in_l2 = Elementwise(name="add2", numel=n, operands=2, dtype="fp32")
    in_l2.resident = "l2"
    d = cost(in_l2, xeon)
    # all bytes at L2, none at DDR; the scratchpad-innermost L1 is bypassed, L3 is outside L2
    assert d.work == {"compute:vector": n, "memory:l2": nbytes}
    l2 = xeon.memory["l2"]
    assert d.times()["memory:l2"] == pytest.approx(nbytes / (l2.bandwidth_bytes_s * l2.efficiency))
    in_l3 = Elementwise(name="add3", numel=n, operands=2, dtype="fp32")
    in_l3.resident = "l3"
    assert cost(in_l3, xeon).work == {"compute:vector": n, "memory:l2": nbytes, "memory:l3": nbytes}
    # default (and resident in main memory): DDR, passing through L2 and L3
    assert cost(base, xeon).work == {"compute:vector": n, "memory:ddr": nbytes, "memory:l2": nbytes,
                                     "memory:l3": nbytes}
    in_ddr = Elementwise(name="addd", numel=n, operands=2, dtype="fp32")
    in_ddr.resident = "ddr"
    assert cost(in_ddr, xeon).work == cost(base, xeon).work
    # the attribute is part of the cost signature (no stale memo)
    assert cost(base, xeon).time_s > d.time_s


def test_resident_level_must_be_a_level_of_the_device():
    op = Elementwise(name="add", numel=8, operands=2, dtype="fp32")
    op.resident = "l4"
    with pytest.raises(InputError, match="unknown memory level 'l4'"):
        cost(op, hwmodels.load_device("xeon-8480"))


def test_attention_mma_runs_at_the_wider_of_activation_and_kv_dtype():
    # A tensor-core MMA takes both operands in one type: fp8 queries over a bf16 KV cache multiply
    # at the bf16 rate, so their tensor time is the all-bf16 attention's; fp8 over fp8 is faster.
    h100 = hwmodels.load_device("h100-sxm")
    args = dict(batch=1, heads=32, kv_heads=32, q_len=2048, kv_len=2048, head_dim=128, causal=True)
    mixed = cost(Attention(name="a", dtype="fp8", kv_dtype="bf16", **args), h100)
    wide = cost(Attention(name="a", dtype="bf16", kv_dtype="bf16", **args), h100)
    narrow = cost(Attention(name="a", dtype="fp8", kv_dtype="fp8", **args), h100)
    # Q.K^T and P.V: 2 x 2048 x 2048 x 128 x 2 FLOPs per head, 32 heads, half of it under the causal mask
    matrix_flops = 2.0 * 2048 * 2048 * 128 * 2 * 32 / 2
    assert mixed.flops_by_dtype["bf16"] == pytest.approx(matrix_flops, rel=0.01)
    assert mixed.times()["compute:tensor"] == pytest.approx(wide.times()["compute:tensor"])
    # fp8 halves the MMA time, not the softmax the kernel leaves exposed next to it:
    # mixed - narrow = (MMA time at bf16) x (1 - 989 / 1979), the MMA time being the time with no
    # softmax exposed (fp8 peak 1979, bf16 989 TFLOP/s)
    fa3 = ATTENTION_KERNELS.get("fa3")
    ATTENTION_KERNELS.register("fa3", dataclasses.replace(fa3, softmax_exposed=0.0))
    try:
        mma_only = cost(Attention(name="a", dtype="fp8", kv_dtype="bf16", **args), h100).times()["compute:tensor"]
    finally:
        ATTENTION_KERNELS.register("fa3", fa3)
    gap = mixed.times()["compute:tensor"] - narrow.times()["compute:tensor"]
    assert gap == pytest.approx(mma_only * (1 - 989 / 1979), rel=1e-9)
    assert mixed.times()["compute:tensor"] > mma_only


def test_among_engines_of_one_kind_the_fastest_at_the_dtype_runs_the_op():
    """Two vector engines: a GEMV-like fp32 elementwise op goes to the one with the higher fp32 peak,
    whatever the order they are declared in."""
    from roofline.hardware import _choose_engine

    base = hwmodels.load_device("h100-sxm")
    slow = {"kind": "vector", "units": 132, "peak": {"fp32": "10 TFLOP/s"}}
    fast = {"kind": "vector", "units": 132, "peak": {"fp32": "60 TFLOP/s"}}
    for first, second in ((slow, fast), (fast, slow)):
        dev = base.with_overrides({"engines.vector": first, "engines.vector2": second})
        choice = _choose_engine(dev, "vector", "fp32")
        assert choice.engine.peak_flops["fp32"] == 60e12
