"""The llama.cpp runtime profiles: ggml's unfused kernels, micro-batches, fp16 accumulation and
launch costs, each checked against arithmetic done by hand."""

import pytest

import hwmodels
from hwmodels import defaults
from hwmodels.runtime import RuntimeProfile, load_runtime
from roofline import cost
from roofline.efficiency import GEMM_MEMORY_FRACTION
from simulator import simulate
from workloads import Graph, build_llm
from workloads.operators import Attention, Elementwise, MatMul, RMSNorm
from workloads.runtime import with_runtime

US = 1e-6
H100_LAUNCH_S = 4 * US   # h100-sxm.yaml launch_overhead


def one(op, phase="prefill", batch=1, **meta) -> Graph:
    g = Graph("one", meta={"phase": phase, "batch": batch, **meta})
    g.add(op)
    return g


def test_profiles_load_with_their_sourced_figures():
    new, old = load_runtime("llama.cpp"), load_runtime("llama.cpp-b1680")
    # graphs only for a one-token decode (ggml-cuda.cu b2824: off when src1 has > 1 row)
    assert new.graphed("decode", 1) and not new.graphed("decode", 2) and not new.graphed("prefill", 1)
    assert old.cuda_graph_max_tokens == 0
    assert new.ubatch_tokens == old.ubatch_tokens == 512 and new.gemm_accumulate == "fp16"
    # issue #6763: 1 us gap + 1.81 us minimum inside a graph + 0.87 ms / ~1,100 kernels = 3.61 us eager
    assert new.launch_s == pytest.approx(3.61 * US) and new.graph_launch_s == pytest.approx(1 * US)
    assert "all_logits" in old.unfused and "all_logits" not in new.unfused
    assert new.fitted.startswith("nothing") and old.fitted.startswith("nothing")


def test_the_name_wins_over_a_llama_cpp_checkout_in_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "llama.cpp").mkdir()
    monkeypatch.chdir(tmp_path)
    assert load_runtime("llama.cpp").name == "llama.cpp"


def test_f16_convert_wraps_a_cublas_gemm_but_not_a_mat_vec():
    prof = RuntimeProfile("c", unfused=("f16_convert",))
    gemm = MatMul(name="mm", m=512, n=11008, k=4096, dtype="fp16")
    ops = {op.name: op for op in with_runtime(one(gemm), prof).ops}
    assert list(ops) == ["mm.to_f16", "mm", "mm.to_f32"]
    # to_f16 reads the 512 x 4096 input as fp32 (4 B) and writes fp16 (2 B)
    to16 = ops["mm.to_f16"]
    assert to16.inputs[0].bytes == 512 * 4096 * 4 and to16.outputs[0].bytes == 512 * 4096 * 2
    # to_f32 reads the 512 x 11008 fp16 output and writes it as fp32
    to32 = ops["mm.to_f32"]
    assert to32.inputs[0].bytes == 512 * 11008 * 2 and to32.outputs[0].bytes == 512 * 11008 * 4
    matvec = MatMul(name="mv", m=1, n=11008, k=4096, dtype="fp16")
    assert [op.name for op in with_runtime(one(matvec, "decode"), prof).ops] == ["mv"]


def test_a_prompt_longer_than_a_micro_batch_runs_each_weight_gemm_once_a_pass_reading_the_weights_again():
    """llama_decode_internal computes the whole graph for each 512-token micro-batch: a 1,300-token
    prefill runs gate_proj as GEMMs of 512, 512 and 276 rows, each behind its own conversions."""
    prof = RuntimeProfile("u", unfused=("f16_convert",), ubatch_tokens=512)
    gemm = MatMul(name="mm", m=1300, n=11008, k=4096, dtype="fp16")
    ops = {op.name: op for op in with_runtime(one(gemm), prof).ops}
    assert list(ops) == [f"mm.ub{i}{suffix}" for i in range(3) for suffix in (".to_f16", "", ".to_f32")]
    assert [ops[f"mm.ub{i}"].m for i in range(3)] == [512, 512, 1300 - 2 * 512]
    weight = 4096 * 11008 * 2                  # fp16 weights, read by every pass
    assert [ops[f"mm.ub{i}"].inputs[1].bytes for i in range(3)] == [weight] * 3
    assert ops["mm.ub2.to_f16"].inputs[0].bytes == 276 * 4096 * 4   # the last pass's fp32 input rows
    # the passes' FLOPs add up to the whole GEMM's: 2 x 1300 x 11008 x 4096
    assert sum(2 * ops[f"mm.ub{i}"].m * 11008 * 4096 for i in range(3)) == 2 * 1300 * 11008 * 4096
    # a prompt of one micro-batch, a decode step and a profile without micro-batches: one GEMM
    assert [op.name for op in with_runtime(one(MatMul(name="mm", m=512, n=11008, k=4096, dtype="fp16")),
                                           prof).ops] == ["mm.to_f16", "mm", "mm.to_f32"]
    assert [op.name for op in with_runtime(one(gemm, "decode"), prof).ops] == ["mm.to_f16", "mm", "mm.to_f32"]
    assert [op.name for op in with_runtime(one(gemm), RuntimeProfile("w", ubatch_tokens=0)).ops] == ["mm"]


def test_unfused_attention_in_512_token_passes_with_its_conversions():
    attn = Attention(name="a", batch=1, heads=32, kv_heads=8, q_len=1024, kv_len=1024, head_dim=128, dtype="fp16")
    prof = RuntimeProfile("s", unfused=("attention_scores",), ubatch_tokens=512)
    ops = {op.name: op for op in with_runtime(one(attn), prof).ops}
    passes = [ops["a.ub0"], ops["a.ub1"]]
    assert [(p.q_len, p.kv_len, p.fused) for p in passes] == [(512, 512, False), (512, 1024, False)]
    # the full score matrix of each pass (the mask comes after the GEMM): 32 heads x 512 x kv
    assert passes[0].scores == 32 * 512 * 512 and passes[1].scores == 32 * 512 * 1024
    # scores written fp16 by the KQ GEMM, read again and written fp32 for the softmax: 6 B each
    s32 = ops["a.ub1.scores_to_f32"]
    assert s32.inputs[0].bytes + s32.outputs[0].bytes == 32 * 512 * 1024 * (2 + 4)
    # the fp32 queries converted for cuBLAS: 512 x 32 heads x 128, 4 + 2 B
    q16 = ops["a.ub0.q_to_f16"]
    assert q16.inputs[0].bytes + q16.outputs[0].bytes == 512 * 32 * 128 * 6
    # per pass: q_to_f16, the KQ pointer kernel (GQA: 32 query heads on 8 KV heads), the
    # attention, scores_to_f32, probs_to_f16, the KQV pointer kernel, out_to_f32, out_cont
    assert len(ops) == 2 * 8
    kq = ops["a.ub0.kq_pointers"]
    # a pointer (8 B) to A, B and C of each of the 32 batched GEMMs
    assert kq.outputs[0].bytes == 3 * 32 * 8 and with_runtime(one(attn), prof).deps("a.ub0") == ["a.ub0.kq_pointers"]
    mha = Attention(name="m", batch=1, heads=32, kv_heads=32, q_len=512, kv_len=512, head_dim=128, dtype="fp16")
    assert not [op for op in with_runtime(one(mha), prof).ops if op.name.endswith("_pointers")]


def _bytes(tensors, suffix):
    return sum(t.bytes for t in tensors if t.name.endswith(suffix))


def test_ggml_softmax_reads_and_writes_fp32_with_its_fp32_mask_and_the_output_is_copied_contiguous():
    attn = Attention(name="a", batch=1, heads=32, kv_heads=8, q_len=1024, kv_len=1024, head_dim=128, dtype="fp16")
    prof = RuntimeProfile("s", unfused=("attention_scores",), ubatch_tokens=512)
    ops = {op.name: op for op in with_runtime(one(attn), prof).ops}
    ub1 = ops["a.ub1"]
    scores = 32 * 512 * 1024   # heads x queries of the pass x keys up to its last query
    # the KQ GEMM writes fp16 scores (2 B); ggml_soft_max_ext reads them in fp32 (4 B)
    assert _bytes(ub1.outputs, ".scores") == scores * 2 and _bytes(ub1.inputs, ".scores") == scores * 4
    # the softmax writes fp32 probabilities (4 B); the KQV GEMM reads the fp16 copy (2 B)
    assert _bytes(ub1.outputs, ".probs") == scores * 4 and _bytes(ub1.inputs, ".probs") == scores * 2
    # the fp32 KQ mask: one n_kv x n_tokens matrix (1024 x 512 x 4 B), broadcast over the heads
    assert _bytes(ub1.inputs, ".mask") == 1024 * 512 * 4
    # the softmax's arithmetic is fp32: no fp16 vector FLOPs are left
    assert not [k for k in ub1.flops() if k[0] != "matrix" and k[1] != "fp32"]
    # ggml_cont_2d of the permuted fp32 KQV output: 512 x 32 heads x 128, read and written in fp32
    cont = ops["a.ub1.out_cont"]
    assert cont.inputs[0].bytes == cont.outputs[0].bytes == 512 * 32 * 128 * 4
    # whole chain per pass: GEMM 2 + convert 2+4 + softmax 4+4 + convert 4+2 + GEMM 2 = 24 B a score
    chain = (_bytes(ub1.outputs, (".scores", ".probs")) + _bytes(ub1.inputs, (".scores", ".probs"))
             + sum(t.bytes for n in ("scores_to_f32", "probs_to_f16") for t in (*ops[f"a.ub1.{n}"].inputs,
                                                                               *ops[f"a.ub1.{n}"].outputs)))
    assert chain == 24 * scores


def test_norm_weight_kv_store_and_swiglu_split_add_ggml_kernels():
    g = build_llm("llama-2-7b", "decode", batch=1, context=64, dtype="fp16")
    prof = RuntimeProfile("k", unfused=("norm_weight", "kv_store", "swiglu_split"))
    out = with_runtime(g, prof)
    # per layer: two norm weight multiplies, the K and V copies, one SiLU; + the final norm's multiply
    assert len(out.ops) == len(g.ops) + 32 * (2 + 2 + 1) + 1
    k = out.op("model.layers.0.self_attn.attn.k_store")
    # one token's K: 32 KV heads x 128, read as fp32 and written into the fp16 cache
    assert k.inputs[0].bytes == 32 * 128 * 4 and k.outputs[0].bytes == 32 * 128 * 2
    silu = out.op("model.layers.0.mlp.act.silu")
    assert out.deps("model.layers.0.mlp.act") == [silu.name]


def test_eager_launches_cost_the_profiles_launch_and_a_one_token_decode_replays_a_graph():
    g = Graph("chain", meta={"phase": "decode", "batch": 2})
    prev = []
    for i in range(10):
        g.add(Elementwise(name=f"k{i}", numel=2**20), prev)
        prev = [f"k{i}"]
    bare = simulate(g, "h100-sxm").latency_s
    prof = load_runtime("llama.cpp")
    no_host = RuntimeProfile("l", launch_s=prof.launch_s, graph_launch_s=prof.graph_launch_s,
                             cuda_graph_max_tokens=prof.cuda_graph_max_tokens)
    # batch 2: eager, 10 kernels x (3.61 - 4) us
    eager = simulate(g, "h100-sxm", runtime=no_host)
    assert eager.meta["cuda_graph"] is False
    assert eager.latency_s == pytest.approx(bare - 10 * (H100_LAUNCH_S - 3.61 * US), rel=1e-9)
    g.meta["batch"] = 1
    # batch 1: one graph, each kernel the 1 us gap and its 1.81 us minimum
    graphed = simulate(g, "h100-sxm", runtime=no_host)
    assert graphed.latency_s == pytest.approx(bare - 10 * (H100_LAUNCH_S - 2.81 * US), rel=1e-9)


def test_llamacpp_eager_launch_keeps_the_measured_0_8_us_over_a_graphed_kernel():
    # issue #6763: 0.87 ms more a token eager over about 1,100 kernels: 0.8 us a kernel more
    for name in ("llama.cpp", "llama.cpp-b1680"):
        prof = load_runtime(name)
        graphed = 1 * US + defaults.GRAPH_KERNEL_FIXED_S     # llama.cpp's graph_launch + the minimum
        assert prof.launch_s == pytest.approx(graphed + 0.8 * US, abs=0.01 * US)


def test_all_logits_runs_the_lm_head_over_the_prompt_and_copies_the_logits_to_the_host():
    g = build_llm("llama-2-7b", "prefill", batch=1, prompt_len=512, dtype="fp16")
    out = with_runtime(g, RuntimeProfile("o", unfused=("all_logits",)))
    assert out.op("lm_head").m == 512
    copy = out.op("lm_head.logits_to_host")
    # 512 tokens x 32,000 vocabulary x 4 B of fp32 logits
    assert copy.bytes_moved == 512 * 32000 * 4 and copy.dst == "host"


def test_fp16_accumulate_doubles_a_geforce_tensor_rate_only():
    rtx = hwmodels.load_device("rtx-4090")
    fast = rtx.with_fp16_accumulate()
    # at the loaded 2.73 GHz: 128 SMs x 512 FLOP/clock = 178.9 TFLOP/s with fp32 accumulate, twice
    # that (357.8) with fp16 accumulate (the Ada whitepaper's ratio)
    assert rtx.engines["tensor"].peak_flops["fp16"] == pytest.approx(178.9e12)
    assert fast.engines["tensor"].peak_flops["fp16"] == pytest.approx(357.8e12)
    assert fast.engines["tensor"].peak_flops["bf16"] == pytest.approx(178.9e12)   # no fp16-accumulate bf16
    # TDP rule: energy per FLOP scales with 1/peak: the catalog's fp16 figure x 178.9 / 357.8
    assert fast.power.energy_j_per_flop["fp16"] == pytest.approx(rtx.power.energy_j_per_flop["fp16"] / 2)
    assert fast.with_fp16_accumulate().engines["tensor"].peak_flops == fast.engines["tensor"].peak_flops
    a100 = hwmodels.load_device("a100-sxm-80gb")
    assert a100.with_fp16_accumulate() is a100
    pair = hwmodels.with_fp16_accumulate(hwmodels.system_from_device(rtx, 2))
    assert all(d.engines["tensor"].peak_flops["fp16"] == pytest.approx(357.8e12) for d in pair.devices.values())
    gemm = MatMul(name="mm", m=8192, n=8192, k=8192, dtype="fp16")
    fp32_acc = simulate(one(gemm), rtx, power_cap=False).latency_s
    fp16_acc = simulate(one(gemm), rtx, runtime=RuntimeProfile("f", gemm_accumulate="fp16"),
                        power_cap=False).latency_s
    assert fp16_acc < 0.6 * fp32_acc


def test_none_is_unchanged():
    g = build_llm("llama-2-7b", "prefill", batch=1, prompt_len=512, dtype="fp16")
    assert with_runtime(g, "none") is g
    assert simulate(g, "rtx-4090", runtime="none").latency_s == simulate(g, "rtx-4090").latency_s


def test_the_mat_vec_kernel_reaches_a_fraction_of_the_memory_rate_by_memory_kind():
    prof = load_runtime("llama.cpp")
    # issue #9817: vectorized loads sped the F16 mat-vec up 1.33x on HBM, 1.01x on GDDR
    assert dict(prof.matvec_memory_fraction) == {"hbm": 0.75, "gddr": 0.99}
    only = RuntimeProfile("m", matvec_memory_fraction=prof.matvec_memory_fraction)
    matvec = MatMul(name="mv", m=1, n=4096, k=4096, dtype="fp16")
    (mv,) = with_runtime(one(matvec, "decode"), only).ops
    for hw, level, fraction in (("h100-sxm", "hbm", 0.75), ("rtx-4090", "gddr", 0.99)):
        dev = hwmodels.load_device(hw)
        bare, slow = cost(matvec, dev).times(), cost(mv, dev).times()
        # the kernel's fraction of the streaming rate replaces a library GEMM's
        assert slow[f"memory:{level}"] == pytest.approx(bare[f"memory:{level}"] * GEMM_MEMORY_FRACTION / fraction,
                                                        rel=1e-12)
    gemm = MatMul(name="mm", m=2, n=4096, k=4096, dtype="fp16")
    assert not hasattr(with_runtime(one(gemm, "decode", batch=2), only).ops[0], "memory_fraction")


def test_ggml_streaming_kernels_reach_the_kernel_fraction_of_the_memory_rate_by_memory_kind():
    prof = load_runtime("llama.cpp")
    # the mat-vec's figure (issue #9817) for ggml's other scalar-load kernels
    assert dict(prof.kernel_memory_fraction) == {"hbm": 0.75, "gddr": 0.99}
    only = RuntimeProfile("k", kernel_memory_fraction=prof.kernel_memory_fraction)
    norm = RMSNorm(name="n", rows=512, cols=4096, dtype="fp32")
    (slow_norm,) = with_runtime(one(norm), only).ops
    h100 = hwmodels.load_device("h100-sxm")
    hbm = h100.memory["hbm"]
    # 512 x 4096 x 4 B read and written, the 4096 x 4 B weight read: at 0.75 of STREAM
    nbytes = 2 * 512 * 4096 * 4 + 4096 * 4
    stream = hbm.bandwidth_bytes_s * hbm.efficiency
    assert cost(norm, h100).times()["memory:hbm"] == pytest.approx(nbytes / stream, rel=1e-9)
    assert cost(slow_norm, h100).times()["memory:hbm"] == pytest.approx(nbytes / (0.75 * stream), rel=1e-9)
    # a GEMM is cuBLAS's, not the engine's: it keeps the library fraction
    gemm = MatMul(name="mm", m=512, n=4096, k=4096, dtype="fp16")
    assert not hasattr(with_runtime(one(gemm), only).ops[0], "memory_fraction")


def test_unfused_attention_blends_cublas_gemm_bytes_and_ggml_softmax_bytes():
    only = RuntimeProfile("k", kernel_memory_fraction=(("hbm", 0.5),))
    base = {"batch": 1, "heads": 8, "kv_heads": 8, "q_len": 256, "kv_len": 256, "head_dim": 128,
            "dtype": "fp16", "fused": False, "softmax_dtype": "fp32"}
    bare = Attention(name="a", **base)
    tagged = Attention(name="a", **base)
    tagged.memory_fraction = only.kernel_memory_fraction
    h100 = hwmodels.load_device("h100-sxm")
    hbm = h100.memory["hbm"]
    stream = hbm.bandwidth_bytes_s * hbm.efficiency
    scores = 8 * 256 * 256
    softmax_bytes = scores * (4 + 4)          # fp32 scores read, fp32 probabilities written
    # Q, the new K and V, the output and the K and V appended to the cache: fp16 each
    qkvo = 6 * 256 * 8 * 128 * 2
    gemm_bytes = qkvo + scores * (2 + 2)      # fp16 scores written, fp16 probabilities read
    assert cost(bare, h100).work["memory:hbm"] == pytest.approx(softmax_bytes + gemm_bytes)
    # the GEMMs' bytes at a library GEMM's fraction of STREAM (0.92), the softmax's at 1 (no
    # kernel fraction) or at the runtime's 0.5
    expect_bare = gemm_bytes / (GEMM_MEMORY_FRACTION * stream) + softmax_bytes / stream
    expect_tagged = gemm_bytes / (GEMM_MEMORY_FRACTION * stream) + softmax_bytes / (0.5 * stream)
    assert cost(bare, h100).times()["memory:hbm"] == pytest.approx(expect_bare, rel=1e-9)
    assert cost(tagged, h100).times()["memory:hbm"] == pytest.approx(expect_tagged, rel=1e-9)


def test_fp32_activations_widen_norms_and_elementwise_kernels_only():
    prof = RuntimeProfile("w", activation_dtype="fp32")
    norm = RMSNorm(name="n", rows=512, cols=4096, dtype="fp16")
    (wide,) = with_runtime(one(norm), prof).ops
    # reads and writes 512 x 4096 x 4 B, and the fp32 weight (4096 x 4 B)
    assert sum(t.bytes for t in wide.inputs) == 512 * 4096 * 4 + 4096 * 4
    assert wide.outputs[0].bytes == 512 * 4096 * 4 and wide.dtype == "fp32"
    gemm = MatMul(name="mm", m=512, n=4096, k=4096, dtype="fp16")
    assert with_runtime(one(gemm), prof).ops[0].inputs[0].dtype == "fp16"


def test_the_softmax_mask_stays_in_l2_between_heads_only_while_one_heads_stream_fits():
    h100 = hwmodels.load_device("h100-sxm")   # 50 MB of L2, half of it counted usable: 25 MB
    base = {"batch": 1, "heads": 32, "kv_heads": 8, "q_len": 512, "head_dim": 128, "dtype": "fp16",
            "fused": False, "softmax_dtype": "fp32"}

    def mask_hbm_bytes(kv_len):
        bare = cost(Attention(name="a", kv_len=kv_len, **base), h100).work["memory:hbm"]
        masked = cost(Attention(name="a", kv_len=kv_len, mask_dtype="fp32", **base), h100).work["memory:hbm"]
        return masked - bare

    # 512 keys: one head streams 512 x 512 x (4 + 4) B of scores and probabilities + the 1 MB
    # mask = 3.1 MB < 25 MB: the mask comes from HBM once
    assert mask_hbm_bytes(512) == pytest.approx(512 * 512 * 4)
    # 8192 keys: 512 x 8192 x (4 + 4 + 4) B = 50.3 MB > 25 MB: read from HBM once per head
    assert mask_hbm_bytes(8192) == pytest.approx(32 * 512 * 8192 * 4)
