"""Decode attention at scale (issue 12): a fixed latency per wave of decode CTAs, and the streaming
a kernel family loses per block of a paged KV cache. Values computed by hand in the comments; the
fitted constants enter by name."""

import dataclasses

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import hwmodels
from hwmodels.errors import InputError
from roofline import cost
from roofline.efficiency import (
    ATTENTION_KERNELS,
    DECODE_CTA_LATENCY_S,
    PAGE_GATHER_BYTES_FA3,
    decode_attention_latency_s,
    page_gather_efficiency,
)
from workloads.llm import build_llm
from workloads.operators import Attention

H100 = hwmodels.load_device("h100-sxm")      # 132 SMs, attention_kernel fa3
A100 = hwmodels.load_device("a100-sxm-80gb")  # fa2: no paged measurement, no gather cost


def _decode(batch=64, heads=32, kv_heads=32, kv_len=512, page_size=None):
    return Attention(name="a", batch=batch, heads=heads, kv_heads=kv_heads, q_len=1, kv_len=kv_len,
                     head_dim=128, dtype="bf16", page_size=page_size)


def test_decode_latency_counts_waves_by_hand():
    # Llama-3.1-8B at batch 256: 256 x 8 KV heads = 2048 CTAs on 132 SMs: ceil(15.52) = 16 waves
    assert decode_attention_latency_s(2048, 132, 1e-6) == pytest.approx(16e-6)
    # 512 CTAs: ceil(3.88) = 4 waves; one CTA is still one wave
    assert decode_attention_latency_s(512, 132, 2e-6) == pytest.approx(8e-6)
    assert decode_attention_latency_s(1, 132, 2e-6) == pytest.approx(2e-6)


def test_page_gather_efficiency_by_hand():
    # 8 tokens x 128 x 2 B = 2048 B a block; 1200 B lost per block: 2048 / 3248 = 0.6305
    assert page_gather_efficiency(8, 128, 2, 1200.0) == pytest.approx(2048 / 3248)
    # a contiguous cache, or a family without a gather cost, streams at the full rate
    assert page_gather_efficiency(None, 128, 2, 1200.0) == 1.0
    assert page_gather_efficiency(8, 128, 2, 0.0) == 1.0


def test_a_decode_attention_pays_its_waves_and_a_prefill_does_not():
    launch, hbm = H100.launch_overhead_s, H100.memory["hbm"].latency_s
    # batch 64 x 8 KV heads = 512 CTAs (the 64 query heads' groups of 8 share a CTA): 4 waves
    d = cost(_decode(heads=64, kv_heads=8), H100)
    assert d.fixed_s == pytest.approx(launch + hbm + 4 * DECODE_CTA_LATENCY_S)
    # 1024 queries x 4 heads a group = 32 query tiles per KV head: a prefill kernel, no waves term
    prefill = Attention(name="p", batch=1, heads=32, kv_heads=8, q_len=1024, kv_len=1024, head_dim=128)
    assert cost(prefill, H100).fixed_s == pytest.approx(launch + hbm)


def test_paged_cache_read_time_by_hand():
    # B=16, 32 heads, KV 4000, page 8 on H100 (fa3). Cached K and V read: 16 x 3999 tokens x 32
    # heads x 128 x 2 B x 2 = 1,048,313,856 B; each costs (1 / eff - 1) more at the HBM rate,
    # 1 / eff - 1 = gather / 2048 B a block
    contiguous, paged = cost(_decode(batch=16, kv_len=4000), H100), cost(_decode(batch=16, kv_len=4000, page_size=8), H100)
    cached = 16 * 3999 * 32 * 128 * 2 * 2
    assert cached == 1_048_313_856
    rate = H100.memory["hbm"].bandwidth_bytes_s * H100.memory["hbm"].efficiency   # 3.35e12 x 0.9
    extra = cached * (PAGE_GATHER_BYTES_FA3 / 2048) / rate
    assert paged.times()["memory:hbm"] - contiguous.times()["memory:hbm"] == pytest.approx(extra)
    # the bytes themselves (and their energy) are the same: only the rate falls
    assert paged.work == contiguous.work and paged.energy_j == pytest.approx(contiguous.energy_j)


def test_a_family_without_a_gather_cost_ignores_the_page_size():
    assert ATTENTION_KERNELS.get("fa2").page_gather_bytes == 0.0
    assert cost(_decode(page_size=16), A100).time_s == pytest.approx(cost(_decode(), A100).time_s)


@settings(max_examples=25, deadline=None)
@given(small=st.integers(1, 512), factor=st.integers(1, 8), batch=st.integers(1, 512),
       kv_len=st.integers(2, 8192))
def test_larger_pages_are_never_slower(small, factor, batch, kv_len):
    """A paged cache is never faster than a contiguous one, and larger blocks never cost more."""
    t = {p: cost(_decode(batch=batch, kv_heads=8, heads=32, kv_len=kv_len, page_size=p), H100).time_s
         for p in (small, small * factor, None)}
    assert t[None] <= t[small * factor] * (1 + 1e-12) <= t[small] * (1 + 1e-12) ** 2


@settings(max_examples=20, deadline=None)
@given(batch=st.integers(1, 1024), kv_heads=st.sampled_from([1, 2, 8, 32]), scale=st.floats(1.0, 4.0))
@example(batch=1, kv_heads=1, scale=2.0)   # one CTA: slower on weaker SMs, never on more of the same
def test_more_sms_never_slow_a_decode(batch, kv_heads, scale):
    """More units (each as fast as before) mean fewer waves of CTAs: never slower."""
    tensor = H100.engines["tensor"]
    units = int(tensor.units * scale)
    per_unit = units / tensor.units   # the peak grows with the units: an SM keeps its own rate
    more = H100.model_copy(update={"engines": {**H100.engines, "tensor": tensor.model_copy(
        update={"units": units, "peak_flops": {d: p * per_unit for d, p in tensor.peak_flops.items()}})}})
    op = _decode(batch=batch, heads=kv_heads * 4, kv_heads=kv_heads, kv_len=1024)
    assert cost(op, more).time_s <= cost(op, H100).time_s * (1 + 1e-12)


def test_the_kv_block_knob_reaches_every_attention():
    graph = build_llm("llama-3.1-8b", phase="decode", batch=8, prompt_len=128, kv_block=16)
    attention = [op for op in graph.ops if op.kind == "attention"]
    assert attention and all(op.page_size == 16 for op in attention)
    assert all(op.page_size is None for op in build_llm("llama-3.1-8b", phase="decode").ops if op.kind == "attention")
    with pytest.raises(InputError) as err:
        build_llm("llama-3.1-8b", kv_block=0)
    assert err.value.problems[0].path == "kv_block"
    with pytest.raises(InputError) as err:
        dataclasses.replace(_decode(), page_size=0).check()
    assert err.value.problems[0].path == "page_size"


def test_serving_pages_its_step_attention_in_its_blocks():
    from simulator.serving.steptime import StepTimeModel

    assert StepTimeModel("llama-3.1-8b", "h100-sxm", kv_block=16).knobs["kv_block"] == 16
