"""Kernel-family efficiency (issue 12, kernels off their best shape): fused attention's exposed
softmax and causal diagonal blocks, and split-K priced as the two kernels it is. Values computed
by hand in the comments."""

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hwmodels
from hwmodels.errors import InputError
from roofline import cost
from roofline.efficiency import (
    ATTENTION_KERNELS,
    K_OVERHEAD,
    SOFTMAX_EXPOSED_FA2,
    causal_block_scores,
    exposed_softmax_utilization,
    split_k_partial_bytes,
)
from workloads.operators import Attention, Elementwise, MatMul, attended_keys


def test_exposed_softmax_utilization_by_hand():
    # 3 s of MMAs and 2 s of softmax, half of it exposed: 3 / (3 + 0.5 x 2) = 0.75
    assert exposed_softmax_utilization(3.0, 2.0, 0.5) == pytest.approx(0.75)
    assert exposed_softmax_utilization(3.0, 2.0, 0.0) == 1.0


def test_causal_block_scores_by_hand():
    # q = kv = 256 in 128-row tiles and 64-key blocks: tile 0 runs keys 0..127 (2 blocks),
    # tile 1 keys 0..255: 128 x 128 + 128 x 256 = 49152 scores; exactly 256 x 257 / 2 = 32896 attended
    assert causal_block_scores(256, 256, 128.0, 64.0) == 49152
    assert attended_keys(256, 256, True, None) == 32896
    # 100 queries at the end of 300 keys: one tile whose last query sees 300 keys; the block
    # holding key 300 ends at 320, past the sequence, so 100 x 300 = 30000
    assert causal_block_scores(100, 300, 128.0, 64.0) == 30000


def test_split_k_partial_bytes_by_hand():
    # 4 splits of a 256 x 512 output: fp32 partials written and read, 2 x 4 x 256 x 512 x 4 B
    assert split_k_partial_bytes(256.0, 512.0, 1.0, 4.0) == 4_194_304
    assert split_k_partial_bytes(256.0, 512.0, 1.0, 1.0) == 0.0


def test_fa2_attention_on_a100_by_hand():
    """108 heads x one 128-row query tile = one wave on 108 SMs, no split, no padding; the time on
    the tensor engine is the MMAs at 312 TFLOP/s x 0.8 x k ramp plus the exposed softmax:
    exponentials on the SFUs (2.44 TFLOP/s) and 5 fp32 FLOPs per score on the CUDA cores
    (19.5 TFLOP/s), at those peaks."""
    a100 = hwmodels.load_device("a100-sxm-80gb")
    op = Attention(name="a", batch=1, heads=108, kv_heads=108, q_len=128, kv_len=4096, head_dim=128,
                   causal=False, dtype="fp16")
    scores = 108 * 128 * 4096
    ramp = 4096 / (4096 + K_OVERHEAD)
    mma_s = 2 * scores * (128 + 128) / (312e12 * 0.8 * ramp)
    softmax_s = scores / 2.44e12 + scores * 5 / 19.5e12
    d = cost(op, a100)
    assert d.times()["compute:tensor"] == pytest.approx(mma_s + SOFTMAX_EXPOSED_FA2 * softmax_s, rel=1e-9)


def test_causal_attention_pays_for_its_diagonal_blocks():
    # FA2's 64-key blocks: q = kv = 256 computes 49152 scores for 32896 attended (test above),
    # and its tiles' k loops average 49152 / 256 = 192 keys, so the ramp is 192 / (192 + 64)
    a100 = hwmodels.load_device("a100-sxm-80gb")
    fa2 = ATTENTION_KERNELS.get("fa2")
    ATTENTION_KERNELS.register("fa2", dataclasses.replace(fa2, softmax_exposed=0.0))
    try:
        op = Attention(name="a", batch=1, heads=54, kv_heads=54, q_len=256, kv_len=256, head_dim=128,
                       causal=True, dtype="fp16")
        t = cost(op, a100).times()["compute:tensor"]
    finally:
        ATTENTION_KERNELS.register("fa2", fa2)
    # 54 heads x 2 query tiles = 108 tiles: one wave, no split
    assert t == pytest.approx(2 * 54 * 49152 * 256 / (312e12 * 0.8 * 192 / 256), rel=1e-9)


def test_unknown_attention_kernel_is_an_input_error():
    h100 = hwmodels.load_device("h100-sxm")
    tensor = h100.engines["tensor"].model_copy(update={"attention_kernel": "fa9"})
    bad = h100.model_copy(update={"engines": {**h100.engines, "tensor": tensor}})
    op = Attention(name="a", batch=1, heads=8, kv_heads=8, q_len=128, kv_len=128, head_dim=64)
    with pytest.raises(InputError, match="attention kernel"):
        cost(op, bad)


def test_unknown_attention_kernel_in_a_yaml_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("id: h100-bad\nextends: h100-sxm\nengines:\n  tensor:\n    attention_kernel: fa9\n")
    op = Attention(name="a", batch=1, heads=8, kv_heads=8, q_len=128, kv_len=128, head_dim=64)
    with pytest.raises(InputError) as err:
        cost(op, hwmodels.load_device(str(path)))
    problem = err.value.problems[0]
    assert problem.file == str(path) and problem.path == "engines.tensor.attention_kernel"
    assert "did you mean 'fa3'" in str(err.value)


def _with_warp_mma(device, fraction):
    tensor = device.engines["tensor"].model_copy(update={"warp_mma_fraction": fraction})
    return device.model_copy(update={"engines": {**device.engines, "tensor": tensor}})


def test_fa2_on_hopper_runs_at_the_mma_sync_fraction_of_the_peak():
    h100 = hwmodels.load_device("h100-sxm")
    assert h100.engines["tensor"].warp_mma_fraction == 0.67          # the catalog's, from the FA3 post
    big = dict(name="a", batch=4, heads=32, kv_heads=32, q_len=4096, kv_len=4096, head_dim=128, causal=False)

    def tensor_s(device, kernel="fa2"):
        d = cost(Attention(**big, kernel=kernel), device)
        return d.work["compute:tensor"] / d.rates["compute:tensor"]

    # FlashAttention-2 runs MMAs then softmax: time = M / f + S for MMA time M at the full rate,
    # exposed softmax S and mma.sync fraction f. With f = 1, 0.67 and 0.5: T(0.67) - T(1) =
    # M (1/0.67 - 1) and T(0.5) - T(1) = M, whatever M and S are
    t1, t067, t05 = (tensor_s(_with_warp_mma(h100, f)) for f in (1.0, 0.67, 0.5))
    assert t067 - t1 == pytest.approx((t05 - t1) * (1 / 0.67 - 1))
    assert tensor_s(h100) == pytest.approx(t067)
    # FlashAttention-3 (wgmma) does not pay it, nor does FA2 on an engine without the field (A100)
    fa3 = cost(Attention(**big, kernel="fa3"), h100).rates["compute:tensor"]
    assert fa3 == cost(Attention(**big, kernel="fa3"), _with_warp_mma(h100, 0.5)).rates["compute:tensor"]
    a100 = hwmodels.load_device("a100-sxm-80gb")
    assert a100.engines["tensor"].warp_mma_fraction == 1.0
    assert cost(Attention(**big), a100).rates == cost(Attention(**big, kernel="fa2"), a100).rates
    # the operator's kernel wins over the device's (h100-sxm runs fa3 by default)
    assert cost(Attention(**big), h100).rates["compute:tensor"] == fa3


def test_an_operator_kernel_must_be_known_and_fused():
    h100 = hwmodels.load_device("h100-sxm")
    with pytest.raises(InputError, match=r"unknown attention kernel 'fa4'.*did you mean"):
        cost(Attention(name="a", batch=1, heads=8, kv_heads=8, q_len=128, kv_len=128, head_dim=64, kernel="fa4"),
             h100)
    with pytest.raises(InputError, match="unfused attention") as err:
        Attention(name="a", batch=1, heads=8, kv_heads=8, q_len=128, kv_len=128, head_dim=64, kernel="fa2",
                  fused=False)
    assert err.value.problems[0].path.endswith("kernel")


def test_split_k_gemm_is_two_kernels_and_runs_only_where_it_pays():
    h100 = hwmodels.load_device("h100-sxm")
    launch, hbm_latency = h100.launch_overhead_s, h100.memory["hbm"].latency_s
    # one 128 x 128 tile with k = 65536 on one SM would take 2 x 128^2 x 65536 / (989e12 / 132
    # x 0.8) = 358 us; split 132 ways (256 of k each) it takes a few us plus a second launch: split
    d = cost(MatMul(name="g", m=128, n=128, k=65536, dtype="bf16", b_role="activation"), h100)
    assert d.fixed_s == pytest.approx(2 * launch + hbm_latency)
    assert d.work["memory:l2"] >= split_k_partial_bytes(128.0, 128.0, 1.0, 132.0)
    # a large square GEMM fills the SMs with its own tiles: one kernel
    d = cost(MatMul(name="g", m=4096, n=4096, k=4096, dtype="bf16", b_role="activation"), h100)
    assert d.fixed_s == pytest.approx(launch + hbm_latency)


@settings(max_examples=25, deadline=None)
@given(scale=st.floats(1.0, 8.0), which=st.sampled_from(["sfu", "vector", "tensor"]),
       causal=st.booleans(), q_len=st.integers(1, 2048))
def test_faster_softmax_pipes_never_slow_fused_attention(scale, which, causal, q_len):
    """More peak on any engine a fused attention uses never makes it slower (the exposed softmax
    adds time; it never takes the MMA's place)."""
    h100 = hwmodels.load_device("h100-sxm")
    engine = h100.engines[which]
    faster_engine = engine.model_copy(update={"peak_flops": {k: v * scale for k, v in engine.peak_flops.items()}})
    faster = h100.model_copy(update={"engines": {**h100.engines, which: faster_engine}})
    op = Attention(name="a", batch=2, heads=16, kv_heads=4, q_len=q_len, kv_len=2048, head_dim=128,
                   causal=causal)
    assert cost(op, faster).time_s <= cost(op, h100).time_s * (1 + 1e-12)


def test_the_softmax_constants_are_what_the_fit_rows_give():
    from calibration.kernel_fit import attention_rows, fit_family
    from roofline.efficiency import ATTENTION_KERNELS

    fit = attention_rows("fit")
    assert set(fit) == {"fa2", "fa3"} and all(r["role"] == "fit" for rows in fit.values() for r in rows)
    for name, rows in fit.items():
        assert ATTENTION_KERNELS.get(name).softmax_exposed == pytest.approx(fit_family(name, rows)), \
            "rerun `python -m calibration.kernel_fit` and copy its figures into roofline/efficiency.py"


def test_the_decode_constants_are_what_the_decode_fit_rows_give():
    """The decode CTA latency and fa3's page gather bytes come from the paged decode rows with
    role ``fit`` only, and those rows stay out of the softmax fit."""
    from calibration.kernel_fit import attention_rows, fit_decode
    from roofline import efficiency

    decode = attention_rows("fit", decode=True)
    # the FlashAttention-2 paged rows on H100 are fa2's (their framework says so), not the device's fa3
    assert set(decode) == {"fa2", "fa3"}
    assert all(r["role"] == "fit" and "decode" in r["workload"] for rows in decode.values() for r in rows)
    assert all("FlashAttention-2" in r["framework"] for r in decode["fa2"])
    assert not any("decode" in r["workload"] for rows in attention_rows("fit").values() for r in rows)
    latency, gather = fit_decode(decode)
    assert latency == pytest.approx(efficiency.DECODE_CTA_LATENCY_S), \
        "rerun `python -m calibration.kernel_fit` and copy its figures into roofline/efficiency.py"
    # fa2's rows use 256-token pages, no shorter than its KV tile: nothing to gather, 0 as registered
    assert gather == {"fa2": 0.0, "fa3": pytest.approx(efficiency.PAGE_GATHER_BYTES_FA3)}
    assert ATTENTION_KERNELS.get("fa2").page_gather_bytes == 0.0
    # the fit leaves the constants as they were
    assert ATTENTION_KERNELS.get("fa3").page_gather_bytes == efficiency.PAGE_GATHER_BYTES_FA3


def test_a_decode_gemm_streams_its_weights_at_the_gemm_fraction_of_stream():
    from roofline.efficiency import GEMM_MEMORY_FRACTION

    h100 = hwmodels.load_device("h100-sxm")
    op = MatMul(name="w", m=1, n=16384, k=16384, dtype="fp16")
    d = cost(op, h100)
    # 16384^2 fp16 weights = 536,870,912 B (+ the 32 KiB row in, 32 KiB out) from HBM at
    # 3.35 TB/s x 0.90 (HBM's streaming efficiency) x the GEMM's fraction
    assert d.bound == "memory:hbm"
    assert d.rates["memory:hbm"] == pytest.approx(3.35e12 * 0.90 * GEMM_MEMORY_FRACTION)
    assert d.time_s - d.fixed_s == pytest.approx((536870912 + 2 * 32768) / (3.35e12 * 0.90 * GEMM_MEMORY_FRACTION))
    # a runtime's own mat-vec kernel states its fraction of stream instead (llama.cpp's 0.75 on HBM)
    op.memory_fraction = (("hbm", 0.75),)
    assert cost(op, h100).rates["memory:hbm"] == pytest.approx(3.35e12 * 0.90 * 0.75)
    # a streaming kernel keeps the whole streaming rate
    add = Elementwise(name="e", numel=2**28, dtype="fp16")
    assert cost(add, h100).rates["memory:hbm"] == pytest.approx(3.35e12 * 0.90)


def test_the_gemm_memory_fraction_is_what_the_skinny_fit_rows_give():
    from calibration.kernel_fit import SKINNY_M, fit_gemm_memory, skinny_gemm_rows
    from roofline import efficiency

    fit = skinny_gemm_rows("fit")
    assert len(fit) >= 2 and all(r["role"] == "fit" and r["workload"].startswith("matmul") for r in fit)
    assert SKINNY_M == 64
    assert fit_gemm_memory(fit) == pytest.approx(efficiency.GEMM_MEMORY_FRACTION), \
        "rerun `python -m calibration.kernel_fit` and copy its figures into roofline/efficiency.py"


def test_the_graph_kernel_minimum_is_what_the_kernel_time_fit_rows_give():
    from calibration.kernel_fit import fit_graph_kernel_fixed, kernel_time_rows
    from hwmodels import defaults

    fit = kernel_time_rows("fit")
    assert len(fit) >= 2 and all(r["role"] == "fit" and r["metric"] == "latency" for r in fit)
    assert fit_graph_kernel_fixed(fit) == pytest.approx(defaults.GRAPH_KERNEL_FIXED_S), \
        "rerun `python -m calibration.kernel_fit` and copy its figure into hwmodels/defaults.py"


def test_a_one_row_add_norm_is_its_latency_bytes_and_minimum_time():
    from calibration import public

    row = {"id": "x", "hardware": "h200-sxm", "workload": "fused add rmsnorm M=1 N=4096 (test)", "dtype": "bf16",
           "metric": "latency", "unit": "us", "value": "2"}
    # x, residual in; output, new residual out; the weight: 5 x 4096 x 2 B = 40,960 B at the H200's
    # 4.8 TB/s x 0.90 (9.5 ns), one 480 ns HBM latency (h200-sxm.yaml), and the kernel's 1.81 us
    # minimum in place of a launch: 2.2995 us
    by_hand = 40960 / (4.8e12 * 0.90) + 480e-9 + 1.81e-6
    assert public.predict_row(row)[0] * 1e-6 == pytest.approx(by_hand, rel=0.02)
