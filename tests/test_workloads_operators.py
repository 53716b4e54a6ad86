"""Operators, tensors and the graph: FLOPs and bytes against hand counts."""

import dataclasses
import math
from typing import ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmodels.errors import InputError
from workloads import OPERATORS, Graph, Operator, Tensor, make_operator, register_operator
from workloads.operators import (
    Attention,
    Collective,
    Conv2d,
    Elementwise,
    Embedding,
    LayerNorm,
    MatMul,
    MemCopy,
    Pool,
    RMSNorm,
    Router,
    SelectiveScan,
    Softmax,
    attended_keys,
)


def test_registry_has_every_kind_of_the_contract():
    assert set(OPERATORS) >= {"matmul", "attention", "softmax", "layernorm", "rmsnorm", "elementwise",
                              "embedding", "conv2d", "pool", "selective_scan", "router", "collective",
                              "memcopy"}
    for kind, cls in OPERATORS.items():
        assert cls.kind == kind


def test_tensor_bytes_plain_and_group_quantized():
    assert Tensor("x", (3, 5), "bf16").bytes == 30
    assert Tensor("x", (3, 5), "fp32").numel == 15
    # int4, 4096 x 4096, groups of 128: half a byte each, plus per group an fp16 scale and an int4 zero
    w = Tensor("w", (4096, 4096), "int4", "weight", group_size=128)
    groups = 4096 * 4096 // 128
    assert w.groups == groups
    assert w.bytes == 4096 * 4096 * 0.5 + groups * (2 + 0.5)
    w8 = Tensor("w", (100,), "int8", "weight", group_size=32)   # 4 groups (the last one partial)
    assert w8.bytes == 100 + 4 * (2 + 1)


@pytest.mark.parametrize("kwargs,fragment", [
    ({"role": "bias"}, "role"),
    ({"placement": "disk"}, "placement"),
    ({"dtype": "fp7"}, "dtype"),
    ({"group_size": 64}, "group_size"),          # bf16 cannot be group-quantized
])
def test_tensor_rejects(kwargs, fragment):
    base = {"name": "t", "shape": (4,), "dtype": "bf16"}
    with pytest.raises(InputError) as info:
        Tensor(**{**base, **kwargs})
    assert fragment in str(info.value)


def test_matmul_flops_and_tensors():
    op = MatMul(name="proj", m=16, n=4096, k=1024)
    assert op.flops() == {("matrix", "bf16"): 2 * 16 * 4096 * 1024}
    a, w = op.inputs
    assert a.shape == (1, 16, 1024) and a.role == "activation"
    assert w.name == "proj.weight" and w.role == "weight" and w.bytes == 1024 * 4096 * 2
    assert op.outputs[0].shape == (1, 16, 4096)
    assert op.param_counts() == {"proj.weight": 1024 * 4096}


def test_matmul_int4_weights_pay_scales_and_dequantization():
    op = MatMul(name="q", m=8, n=4096, k=4096, weight_dtype="int4", group_size=128)
    w = op.inputs[1]
    assert w.bytes == 4096 * 4096 / 2 + (4096 * 4096 // 128) * 2.5
    fl = op.flops()
    assert fl[("matrix", "bf16")] == 2 * 8 * 4096 * 4096
    assert fl[("vector", "bf16")] == 2 * 4096 * 4096        # zero-point subtract + scale multiply


def test_matmul_bias_and_batched_activation_operand():
    op = MatMul(name="fc", m=10, n=20, k=30, bias=True)
    assert op.flops()[("vector", "bf16")] == 10 * 20
    assert op.param_counts() == {"fc.weight": 600, "fc.bias": 20}
    bmm = MatMul(name="qk", m=128, n=256, k=64, batch=12, b_role="kv")
    assert bmm.flops()[("matrix", "bf16")] == 2 * 12 * 128 * 256 * 64
    assert bmm.param_counts() == {} and bmm.inputs[1].role == "kv"


def test_moe_expert_gemm_counts_tokens_not_experts():
    # 10 routed rows over 4 hit experts (2.5 rows each) of 8 held; imbalance 1.5 on the busiest rank
    op = MatMul(name="w1", m=2.5, n=64, k=32, experts=4, experts_held=8, top_k=2, imbalance=1.5)
    assert op.flops()[("matrix", "bf16")] == pytest.approx(2 * 10 * 1.5 * 64 * 32)
    assert op.inputs[1].shape == (4, 32, 64)              # only the hit experts' weights are read
    assert op.param_counts() == {"w1.weight": 8 * 32 * 64}
    assert op.active_param_counts() == {"w1.weight": 2 * 32 * 64}


def brute_attended(q_len, kv_len, causal, window):
    total = 0
    for p in range(kv_len - q_len, kv_len):
        visible = p + 1 if causal else kv_len
        total += min(visible, window) if window else visible
    return total


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 60), st.integers(0, 60), st.booleans(), st.one_of(st.none(), st.integers(1, 80)))
def test_attended_keys_matches_brute_force(q_len, extra, causal, window):
    kv_len = q_len + extra
    assert attended_keys(q_len, kv_len, causal, window) == brute_attended(q_len, kv_len, causal, window)


def test_attention_causal_prefill_counts_unmasked_half():
    b, h, s, d = 2, 8, 512, 128
    op = Attention(name="a", batch=b, heads=h, kv_heads=2, q_len=s, kv_len=s, head_dim=d)
    scores = b * h * s * (s + 1) / 2
    fl = op.flops()
    assert fl[("matrix", "bf16")] == 2 * scores * d * 2        # QK^T and PV
    assert fl[("special", "bf16")] == scores                   # one exp per score
    assert fl[("vector", "bf16")] == 5 * scores
    # prefill: no cache read; new K and V appended (kv role)
    assert not [t for t in op.inputs if t.role == "kv"]
    appended = [t for t in op.outputs if t.role == "kv"]
    assert sum(t.bytes for t in appended) == 2 * b * s * 2 * d * 2


def test_attention_decode_reads_cache_and_unfused_materializes_scores():
    b, h, hk, ctx, d = 4, 32, 8, 1000, 128
    op = Attention(name="a", batch=b, heads=h, kv_heads=hk, q_len=1, kv_len=ctx + 1, head_dim=d,
                   kv_dtype="fp8")
    kv_read = sum(t.bytes for t in op.inputs if t.role == "kv")
    assert kv_read == 2 * b * ctx * hk * d * 1
    assert op.flops()[("matrix", "bf16")] == 2 * b * h * (ctx + 1) * d * 2
    assert op.cache_bytes() == {"kv": b * (ctx + 1) * hk * d * 2 * 1}
    unfused = dataclasses.replace(op, inputs=[], outputs=[], fused=False)
    scores = [t for t in unfused.outputs if t.name.endswith(("scores", "probs"))]
    assert len(scores) == 2 and all(t in unfused.inputs for t in scores)   # written, then re-read
    assert scores[0].bytes == b * h * 1 * (ctx + 1) * 2
    with pytest.raises(InputError, match="unfused"):
        dataclasses.replace(op, inputs=[], outputs=[], softmax_dtype="fp32")


def test_attention_window_sparse_and_shared_prefix():
    base = {"name": "a", "heads": 4, "kv_heads": 4, "q_len": 1, "kv_len": 10001, "head_dim": 64}
    win = Attention(batch=1, window=4096, **base)
    assert win.scores == 4 * 4096
    assert sum(t.numel for t in win.inputs if t.role == "kv") == 2 * 4095 * 4 * 64
    sparse = Attention(batch=1, kv_fraction=0.25, **base)
    assert sparse.scores == 4 * 10001 * 0.25
    assert sum(t.numel for t in sparse.inputs if t.role == "kv") == 2 * 2500 * 4 * 64
    # best-of-4 over 2 prompts: the 6000-token prompt KV is read once per prompt, not per sample
    shared = Attention(batch=8, shared_kv_len=6000, share_group=4, **base)
    kv = sum(t.numel for t in shared.inputs if t.role == "kv")
    assert kv == 2 * (2 * 6000 + 8 * 4000) * 4 * 64
    assert shared.cache_bytes()["kv"] == (8 * 10001 - 6 * 6000) * 4 * 64 * 2 * 2
    assert shared.scores == 8 * 4 * 10001                     # every sample still attends to all keys


def test_mla_latent_cache():
    op = Attention(name="mla", batch=2, heads=16, kv_heads=1, q_len=1, kv_len=101, head_dim=576,
                   v_head_dim=512, latent_kv=True)
    assert op.cache_bytes() == {"kv": 2 * 101 * 576 * 2}
    assert sum(t.bytes for t in op.inputs if t.role == "kv") == 2 * 100 * 576 * 2


def test_row_ops():
    assert Softmax(name="s", rows=10, cols=20).flops() == {("vector", "bf16"): 800, ("special", "bf16"): 200}
    rms = RMSNorm(name="n", rows=10, cols=20)
    assert rms.flops() == {("vector", "bf16"): 800, ("special", "bf16"): 10}
    assert rms.param_counts() == {"n.weight": 20}
    ln = LayerNorm(name="ln", rows=10, cols=20)
    assert ln.flops()[("vector", "bf16")] == 7 * 200
    assert ln.param_counts() == {"ln.weight": 20, "ln.bias": 20}


def test_elementwise_embedding_router():
    swiglu = Elementwise(name="act", numel=100, flops_per_element=4, special=True, operands=2)
    assert swiglu.flops() == {("vector", "bf16"): 400, ("special", "bf16"): 100}
    assert len(swiglu.inputs) == 2
    emb = Embedding(name="emb", tokens=7, hidden=16, vocab=1000)
    assert emb.flops() == {}
    assert emb.inputs[0].numel == 7 * 16                        # only the gathered rows are read
    assert emb.param_counts() == {"emb.weight": 16000}
    r = Router(name="r", tokens=10, experts=8, top_k=2)
    assert r.flops() == {("vector", "bf16"): (4 + 2) * 80 + 2 * 20, ("special", "bf16"): 80}


def test_conv_pool_scan():
    conv = Conv2d(name="c", batch=2, in_channels=3, out_channels=64, height=224, width=224, kernel=7,
                  stride=2, padding=3, bias=True)
    assert (conv.out_h, conv.out_w) == (112, 112)
    outputs = 2 * 64 * 112 * 112
    assert conv.flops() == {("matrix", "bf16"): 2 * outputs * 3 * 49, ("vector", "bf16"): outputs}
    assert conv.param_counts() == {"c.weight": 64 * 3 * 49, "c.bias": 64}
    pool = Pool(name="p", batch=2, in_channels=64, height=112, width=112, kernel=2)
    assert pool.flops() == {("vector", "bf16"): 2 * 64 * 56 * 56 * 4}
    scan = SelectiveScan(name="mixer", batch=2, seq_len=10, d_inner=32, d_state=16)
    bld = 2 * 10 * 32
    assert scan.flops() == {("vector", "bf16"): 7 * bld * 16 + 4 * bld, ("special", "bf16"): bld * 16 + bld}
    assert scan.cache_bytes() == {"state": 2 * 32 * 16 * 2}
    assert set(scan.param_counts()) == {"mixer.A_log", "mixer.D"}


def test_collective_and_memcopy():
    ar = Collective(name="ar", collective="all_reduce", payload_bytes=8192, group="tp", group_size=8)
    assert ar.flops() == {("vector", "bf16"): 4096 * 7 / 8}
    ag = Collective(name="ag", collective="all_gather", payload_bytes=8000, group="tp", group_size=8)
    assert (ag.inputs[0].bytes, ag.outputs[0].bytes) == (1000, 8000) and ag.flops() == {}
    cp = MemCopy(name="cp", bytes_moved=1e6, src="host", dst="device")
    assert cp.inputs[0].placement == "host" and cp.outputs[0].placement == "device"
    assert cp.inputs[0].bytes == 1e6


@pytest.mark.parametrize("cls,kwargs,field", [
    (MatMul, {"m": 0, "n": 1, "k": 1}, "m"),
    (MatMul, {"m": 1, "n": 1, "k": 1, "imbalance": 0.5}, "imbalance"),
    (MatMul, {"m": 1, "n": 1, "k": 1, "group_size": 128}, "group_size"),
    (Attention, {"batch": 1, "heads": 6, "kv_heads": 4, "q_len": 1, "kv_len": 2, "head_dim": 8}, "kv_heads"),
    (Attention, {"batch": 1, "heads": 4, "kv_heads": 4, "q_len": 3, "kv_len": 2, "head_dim": 8}, "q_len"),
    (Attention, {"batch": 1, "heads": 4, "kv_heads": 4, "q_len": 1, "kv_len": 2, "head_dim": 8,
                 "kv_fraction": 1.5}, "kv_fraction"),
    (Collective, {"collective": "broadcast", "payload_bytes": 1}, "collective"),
    (Collective, {"collective": "send_recv", "payload_bytes": 1, "group": "pp"}, "peer_stage"),
    (Conv2d, {"batch": 1, "in_channels": 3, "out_channels": 4, "height": 2, "width": 2, "kernel": 5}, "kernel"),
    (MemCopy, {"bytes_moved": 1, "src": "host", "dst": "host"}, "dst"),
    (Router, {"tokens": 1, "experts": 2, "top_k": 3}, "top_k"),
])
def test_operator_rejects_bad_fields(cls, kwargs, field):
    with pytest.raises(InputError) as info:
        cls(name="x", **kwargs)
    assert info.value.problems[0].path == field


def test_make_operator_suggests_fields_and_kinds():
    with pytest.raises(InputError) as info:
        make_operator("matmull", name="x")
    assert info.value.problems[0].suggestion == "matmul"
    with pytest.raises(InputError) as info:
        make_operator("matmul", name="x", m=1, n=1, kk=1)
    assert info.value.problems[0].suggestion == "k"
    with pytest.raises(InputError, match="needs field"):
        make_operator("matmul", name="x", m=1, n=1)


def test_users_can_register_a_kind():
    @register_operator
    @dataclasses.dataclass(kw_only=True)
    class Fft(Operator):
        kind: ClassVar[str] = "test_fft"
        n: int

        def flops(self):
            return {("vector", "fp32"): 5 * self.n * math.log2(self.n)}

    try:
        op = make_operator("test_fft", name="f", n=1024)
        assert op.total_flops == 5 * 1024 * 10
    finally:
        OPERATORS.unregister("test_fft")


def test_graph_add_order_and_summary():
    g = Graph("tiny")
    a = g.add(MatMul(name="a", m=2, n=3, k=4))
    g.add(Elementwise(name="b", numel=6), [a])
    g.add(MatMul(name="c", m=2, n=3, k=4, param_prefix="a"), ["b"])    # shares a's weight (tied)
    assert [op.name for op in g.ops] == ["a", "b", "c"]
    assert g.deps("c") == ["b"]
    s = g.summary()
    assert s["ops"] == 3
    assert s["flops"] == 2 * (2 * 2 * 3 * 4) + 6
    assert s["params"] == 12                                  # a tied weight counts once ...
    assert s["by_kind"]["matmul"]["ops"] == 2
    assert s["bytes"]["weight"] == 2 * 12 * 2                 # ... but is read by both ops
    with pytest.raises(InputError, match="not in the graph"):
        g.add(Elementwise(name="d", numel=1), ["zz"])
    with pytest.raises(InputError, match="duplicate"):
        g.add(Elementwise(name="a", numel=1))
    frame = g.to_frame()
    assert list(frame["name"]) == ["a", "b", "c"]
