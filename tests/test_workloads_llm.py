"""LLM builders: parameter counts, FLOPs, KV bytes, parallelism, knobs, bad input.

Parameter counts are computed here by hand from each architecture's arithmetic and compared
both with the builder (exactly) and with the published totals of model_configs.md.
"""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmodels.errors import InputError
from workloads import build_llm, expected_tokens, load_config, load_workload
from workloads.configs import parse_config
from workloads.footprint import stage_footprints


def dense(h, layers, heads, kv, inter, vocab, tied=False, qkv_bias=False):
    d = h // heads
    attn = 2 * h * h + 2 * h * kv * d + ((h + 2 * kv * d) if qkv_bias else 0)
    layer = attn + 3 * h * inter + 2 * h                  # + SwiGLU MLP + two RMSNorms
    return layers * layer + vocab * h * (1 if tied else 2) + h


def mixtral(active=False):
    h, inter, experts, top_k = 4096, 14336, 8, 2
    attn = 2 * h * h + 2 * h * 1024
    used = top_k if active else experts
    layer = attn + used * 3 * h * inter + h * experts + 2 * h
    return 32 * layer + 2 * 32000 * h + h


def gpt3():
    h = 12288
    layer = 4 * h * h + 4 * h + 2 * h * 4 * h + 4 * h + h + 4 * h   # attn+biases, MLP+biases, 2 LayerNorms
    return 96 * layer + 50257 * h + 2048 * h + 2 * h                # tied token emb, learned positions


def mamba():
    d, d_in, n, conv, vocab = 2560, 5120, 16, 4, 50280
    dt_rank = 160                                              # ceil(2560 / 16)
    layer = (d * 2 * d_in + d_in * conv + d_in + d_in * (dt_rank + 2 * n) + dt_rank * d_in + d_in
             + d_in * n + d_in + d_in * d + d)
    return 64 * layer + vocab * d + d


def deepseek_v2_lite(active=False):
    h, heads, nope, rope, v, rank = 2048, 16, 128, 64, 128, 512
    attn = (h * heads * (nope + rope) + h * (rank + rope) + rank + rank * heads * (nope + v)
            + heads * v * h)
    expert = 3 * h * 1408
    moe = (6 if active else 64) * expert + 2 * expert + h * 64
    dense_layer = attn + 3 * h * 10944 + 2 * h
    return dense_layer + 26 * (attn + moe + 2 * h) + 2 * 102400 * h + h


PUBLISHED = {  # model_configs.md, in parameters
    "llama-2-7b": (dense(4096, 32, 32, 32, 11008, 32000), 6.74e9),
    "llama-2-13b": (dense(5120, 40, 40, 40, 13824, 32000), 13.0e9),
    "llama-2-70b": (dense(8192, 80, 64, 8, 28672, 32000), 69.0e9),
    "llama-3.1-8b": (dense(4096, 32, 32, 8, 14336, 128256), 8.03e9),
    "llama-3.1-70b": (dense(8192, 80, 64, 8, 28672, 128256), 70.6e9),
    "mistral-7b": (dense(4096, 32, 32, 8, 14336, 32000), 7.24e9),
    "mixtral-8x7b": (mixtral(), 46.7e9),
    "qwen2.5-7b": (dense(3584, 28, 28, 4, 18944, 152064, qkv_bias=True), 7.62e9),
    "qwen2.5-72b": (dense(8192, 80, 64, 8, 29568, 152064, qkv_bias=True), 72.7e9),
    "gpt3-175b": (gpt3(), 175e9),
    "mamba-2.8b": (mamba(), 2.8e9),
    "deepseek-v2-lite": (deepseek_v2_lite(), 15.7e9),
}


@pytest.mark.parametrize("model", sorted(PUBLISHED))
def test_param_count_matches_hand_count_and_published(model):
    by_hand, published = PUBLISHED[model]
    graph = build_llm(model, "decode", context=16)
    assert graph.params() == by_hand
    # '2.8b' is Mamba's name, rounded; its exact count (2.768 B, as the model card says 2.77 B) is 1.1% below
    tolerance = 0.012 if model == "mamba-2.8b" else 0.01
    assert abs(by_hand / published - 1) < tolerance


def test_active_params_of_moe_models():
    assert build_llm("mixtral-8x7b", "decode").params(active=True) == mixtral(active=True)
    assert abs(mixtral(active=True) / 12.9e9 - 1) < 0.01
    active = build_llm("deepseek-v2-lite", "decode").params(active=True)
    assert active == deepseek_v2_lite(active=True)
    # DeepSeek's "2.4 B activated" leaves out the input embedding (a lookup): 2.45 B
    assert abs((active - 102400 * 2048) / 2.4e9 - 1) < 0.025


@pytest.mark.parametrize("model,ctx", [("llama-3.1-8b", 4000), ("llama-2-7b", 100), ("qwen2.5-7b", 2048)])
def test_decode_flops_are_two_per_weight_plus_attention(model, ctx):
    cfg = load_config(model)
    graph = build_llm(model, "decode", batch=1, context=ctx)
    h, L = cfg.hidden, cfg.layers
    non_matmul = cfg.vocab * h + (2 * L + 1) * h       # embedding lookup and norm weights
    if cfg.qkv_bias:
        non_matmul += L * (h + 2 * cfg.kv_heads * cfg.head_dim)
    attention = L * 2 * cfg.heads * (ctx + 1) * cfg.head_dim * 2   # QK^T + PV over ctx + 1 keys
    matrix = graph.summary()["flops_by_engine"]["matrix"]
    assert matrix == 2 * (PUBLISHED[model][0] - non_matmul) + attention
    assert graph.meta["tokens"] == 1


def test_prefill_attention_is_causal_half():
    P, B = 1024, 2
    graph = build_llm("llama-2-7b", "prefill", batch=B, prompt_len=P)
    attn = [op for op in graph.ops if op.kind == "attention"]
    assert len(attn) == 32
    assert attn[0].flops()[("matrix", "bf16")] == 2 * B * 32 * (P * (P + 1) / 2) * 128 * 2
    lm_head = graph.op("lm_head")
    assert lm_head.m == B                                # logits only for each prompt's last token
    assert graph.meta["tokens"] == B and graph.meta["tokens_processed"] == B * P


@pytest.mark.parametrize("model,kv_dtype,per_token", [
    ("llama-3.1-70b", "bf16", 2 * 80 * 8 * 128 * 2),
    ("llama-2-7b", "fp8", 2 * 32 * 32 * 128 * 1),
    ("deepseek-v2-lite", "bf16", 27 * (512 + 64) * 2),       # MLA: the compressed latent
])
def test_kv_cache_bytes(model, kv_dtype, per_token):
    B, C = 4, 1000
    s = build_llm(model, "decode", batch=B, context=C, kv_dtype=kv_dtype).summary()
    assert s["kv_cache_bytes"] == B * (C + 1) * per_token
    assert s["meta"]["kv_bytes_per_token"] == per_token


def test_sliding_window_caps_cache_and_mamba_has_state_only():
    s = build_llm("mistral-7b", "decode", batch=1, context=10000).summary()
    assert s["kv_cache_bytes"] == 4096 * 2 * 32 * 8 * 128 * 2
    m = build_llm("mamba-2.8b", "decode", batch=3, context=5000).summary()
    assert m["kv_cache_bytes"] == 0
    assert m["state_bytes"] == 64 * 3 * 5120 * (16 + 3) * 2    # SSM state + causal-conv window (d_conv - 1)


@pytest.mark.parametrize("model,tp,ep,replicated", [
    ("llama-3.1-70b", 8, 1, (2 * 80 + 1) * 8192),
    ("qwen2.5-7b", 4, 1, (2 * 28 + 1) * 3584),                    # q/k/v biases are column-parallel
    ("mixtral-8x7b", 8, 1, (2 * 32 + 1) * 4096 + 32 * 4096 * 8),    # norms + router gates
    ("mixtral-8x7b", 8, 8, (2 * 32 + 1) * 4096 + 32 * 4096 * 8),    # one whole expert per rank
    ("deepseek-v2-lite", 4, 1,                                      # norms, gates, MLA down-projection
     (2 * 27 + 1) * 2048 + 26 * 2048 * 64 + 27 * (2048 * 576 + 512)),
])
def test_tensor_parallel_shards_weights_exactly(model, tp, ep, replicated):
    whole = build_llm(model, "decode", batch=8).params()
    rank = build_llm(model, "decode", batch=8, tp=tp, ep=ep).params()
    assert tp * rank == whole + (tp - 1) * replicated


def test_gpt3_tensor_parallel_shards_with_replicated_biases_and_a_padded_vocabulary():
    h, layers, vocab, tp = 12288, 96, 50257, 8
    whole = build_llm("gpt3-175b", "decode", batch=8).params()
    rank = build_llm("gpt3-175b", "decode", batch=8, tp=tp).params()
    # replicated: two LayerNorms (weight + bias) and the o_proj/fc_out biases per layer, the final
    # LayerNorm, the learned positions; the vocabulary is padded to 50264 rows (a multiple of 8)
    replicated = layers * (2 * 2 * h + 2 * h) + 2 * h + 2048 * h
    padding = (-(-vocab // tp) * tp - vocab) * h
    assert tp * rank == whole + (tp - 1) * replicated + padding


def test_tensor_parallel_collectives():
    B = 8
    graph = build_llm("llama-3.1-70b", "decode", batch=B, context=100, tp=8)
    colls = [op for op in graph.ops if op.kind == "collective"]
    reduces = [c for c in colls if c.collective == "all_reduce"]
    assert len(reduces) == 2 * 80 + 1                    # after o_proj and down_proj, plus the embedding
    assert all(c.group == "tp" and c.group_size == 8 and c.payload_bytes == B * 8192 * 2 for c in reduces)
    (gather,) = [c for c in colls if c.collective == "all_gather"]
    assert gather.payload_bytes == B * 128256 * 2
    q = graph.op("model.layers.0.self_attn.q_proj")
    assert (q.k, q.n) == (8192, 8192 // 8)
    assert graph.meta["tp"] == 8


def test_pipeline_stages_and_send_recv():
    graph = build_llm("llama-2-7b", "decode", batch=8, pp=3, microbatches=2)
    layer_stage = {i: graph.op(f"model.layers.{i}.input_layernorm").stage for i in range(32)}
    assert [sum(1 for s in layer_stage.values() if s == k) for k in range(3)] == [11, 11, 10]
    sends = [op for op in graph.ops if op.kind == "collective" and op.collective == "send_recv"]
    assert [(s.stage, s.peer_stage) for s in sends] == [(0, 1), (1, 2)]
    assert all(s.payload_bytes == 4 * 4096 * 2 and s.group == "pp" for s in sends)   # 4 seqs per microbatch
    assert graph.op("model.embed_tokens").stage == 0 and graph.op("lm_head").stage == 2
    assert graph.meta["microbatches"] == 2 and graph.meta["tokens"] == 8
    # the ops are one microbatch's; the cache holds both microbatches' sequences
    assert graph.summary()["kv_cache_bytes"] == 8 * (512 + 1) * 2 * 32 * 32 * 128 * 2


def test_expert_parallel_all_to_all():
    T = 64
    graph = build_llm("mixtral-8x7b", "decode", batch=T, tp=8, ep=8, moe_imbalance=1.25)
    p = "model.layers.0.block_sparse_moe."
    dispatch, combine = graph.op(p + "dispatch"), graph.op(p + "combine")
    assert dispatch.collective == combine.collective == "all_to_all"
    assert dispatch.group == "ep" and dispatch.payload_bytes == (T / 8) * 2 * 4096 * 2
    w1 = graph.op(p + "experts.w1")
    assert (w1.experts_held, w1.n) == (1, 14336)            # a whole expert per rank
    assert w1.flops()[("matrix", "bf16")] == pytest.approx(2 * (T * 2 / 8) * 1.25 * 4096 * 14336)


def test_moe_decode_reads_only_hit_experts():
    one = build_llm("mixtral-8x7b", "decode", batch=1).op("model.layers.0.block_sparse_moe.experts.w1")
    assert one.experts == 2 and one.inputs[1].shape == (2, 4096, 14336)
    many = build_llm("mixtral-8x7b", "decode", batch=256).op("model.layers.0.block_sparse_moe.experts.w1")
    assert many.experts == 8
    assert many.flops()[("matrix", "bf16")] == pytest.approx(2 * 256 * 2 * 4096 * 14336)


def test_speculative_decoding_with_a_draft(tmp_path):
    draft = tmp_path / "draft.json"
    draft.write_text(json.dumps({"model_type": "llama", "hidden_size": 512, "num_hidden_layers": 2,
                                 "num_attention_heads": 8, "intermediate_size": 1024, "vocab_size": 32000}))
    k, a, B = 4, 0.8, 2
    graph = build_llm("llama-2-7b", "decode", batch=B, context=500, spec_tokens=k, draft=str(draft),
                      acceptance=a)
    assert graph.meta["tokens"] == pytest.approx(B * (1 - a ** (k + 1)) / (1 - a))
    verify = graph.op("model.layers.0.self_attn.attn")
    assert (verify.q_len, verify.kv_len) == (k + 1, 500 + k + 1)
    draft_steps = [op for op in graph.ops if op.kind == "attention" and op.name.startswith("draft.")]
    assert len(draft_steps) == k * 2 and all(op.q_len == 1 for op in draft_steps)
    draft_params = 2 * (2 * 512 * 512 * 2 + 3 * 512 * 1024 + 2 * 512) + 2 * 32000 * 512 + 512
    assert graph.params() == PUBLISHED["llama-2-7b"][0] + draft_params     # draft weights counted once
    # the draft's steps run before the verification
    order = [op.name for op in graph.ops]
    assert order.index("draft.step3.lm_head") < order.index("model.embed_tokens")
    # one KV cache per model: the target's holds context + k + 1 tokens, the draft's (2 layers,
    # 8 KV heads of 64) context + k after its k steps; not one draft cache per draft step
    target_kv = B * (500 + k + 1) * 2 * 32 * 32 * 128 * 2
    draft_kv = B * (500 + k) * 2 * 2 * 8 * 64 * 2
    assert graph.summary()["kv_cache_bytes"] == target_kv + draft_kv
    assert stage_footprints(graph)[0].kv_cache == {"device": target_kv + draft_kv}


def test_expected_tokens_formula():
    assert expected_tokens(0, 0.5) == 1
    assert expected_tokens(3, 0.5) == pytest.approx(1 + 0.5 + 0.25 + 0.125)
    assert expected_tokens(4, 1.0) == 5


def test_best_of_n_reads_the_shared_prefix_once():
    P, C, N, B = 1000, 1200, 4, 2
    graph = build_llm("llama-2-7b", "decode", batch=B, best_of=N, prompt_len=P, context=C)
    attn = graph.op("model.layers.0.self_attn.attn")
    kv_read = sum(t.bytes for t in attn.inputs if t.role == "kv")
    assert kv_read == (B * P + B * N * (C - P)) * 2 * 32 * 128 * 2
    assert graph.meta["tokens"] == B * N
    s = graph.summary()
    assert s["kv_cache_bytes"] == 32 * (B * P + B * N * (C + 1 - P)) * 2 * 32 * 128 * 2


def test_sparse_attention_and_kv_placement():
    full = build_llm("llama-3.1-8b", "decode", batch=4, context=8000)
    sparse = build_llm("llama-3.1-8b", "decode", batch=4, context=8000, kv_fraction=0.25,
                       kv_placement="cxl")
    fa, sa = full.op("model.layers.0.self_attn.attn"), sparse.op("model.layers.0.self_attn.attn")
    assert sa.total_flops == pytest.approx(fa.total_flops / 4)
    kv_full = sum(t.bytes for t in fa.inputs if t.role == "kv")
    kv_sparse = sum(t.bytes for t in sa.inputs if t.role == "kv")
    assert kv_sparse == kv_full / 4
    assert {t.placement for t in (*sa.inputs, *sa.outputs) if t.role == "kv"} == {"cxl"}


def test_int4_weights():
    graph = build_llm("llama-2-7b", "decode", weight_dtype="int4", group_size=128)
    q = graph.op("model.layers.0.self_attn.q_proj")
    w = q.inputs[1]
    assert w.dtype == "int4" and w.bytes == 4096 * 4096 / 2 + 4096 * 4096 / 128 * 2.5
    assert q.flops()[("vector", "bf16")] == 2 * 4096 * 4096
    assert graph.op("lm_head").inputs[1].dtype == "bf16"       # embeddings and head stay unquantized


def test_int4_shards_that_group_size_does_not_divide_warn():
    graph = build_llm("llama-2-7b", "decode", weight_dtype="int4", tp=8)
    down = graph.op("model.layers.0.mlp.down_proj").inputs[1]         # 11008 / 8 = 1376 rows per rank
    assert down.bytes == 1376 * 4096 / 2 + 1376 * 4096 / 128 * 2.5   # one scale + zero per 128 weights
    assert any("does not divide the input features [1376]" in w for w in graph.meta["warnings"])
    assert build_llm("llama-2-7b", "decode", weight_dtype="int4", tp=2).meta["warnings"] == []


def test_chunked_prefill_mixes_a_chunk_and_decodes():
    graph = build_llm("llama-3.1-8b", "chunked", batch=32, prompt_len=2048, chunk_size=512, chunk_start=512,
                      context=1000)
    chunk, dec = graph.op("model.layers.0.self_attn.attn.0"), graph.op("model.layers.0.self_attn.attn.1")
    assert (chunk.batch, chunk.q_len, chunk.kv_len) == (1, 512, 1024)
    assert (dec.batch, dec.q_len, dec.kv_len) == (32, 1, 1001)
    assert graph.op("model.layers.0.mlp.gate_proj").m == 512 + 32
    assert set(graph.deps("model.layers.0.self_attn.o_proj")) == {chunk.name, dec.name}
    assert graph.meta["tokens"] == 32                         # the chunk does not finish its prompt


def test_deepseek_mla_uses_the_latent():
    graph = build_llm("deepseek-v2-lite", "decode", batch=2, context=99)
    attn = graph.op("model.layers.0.self_attn.attn")
    assert (attn.heads, attn.kv_heads, attn.head_dim, attn.v_head_dim, attn.latent_kv) == (16, 1, 576, 512, True)
    assert "model.layers.0.mlp.gate_proj" in graph                       # first layer dense
    assert "model.layers.1.mlp.experts.gate_proj" in graph
    assert "model.layers.1.mlp.shared_experts.gate_proj" in graph


def test_context_beyond_max_positions_is_a_warning():
    graph = build_llm("llama-2-7b", "decode", context=5000)
    assert any("max_position_embeddings 4096" in w for w in graph.meta["warnings"])
    assert build_llm("llama-2-7b", "decode", context=100).meta["warnings"] == []


@pytest.mark.parametrize("kwargs,field,fragment", [
    ({"batch": 0}, "batch", "positive"),
    ({"prompt_len": -5}, "prompt_len", "positive"),
    ({"context": -1}, "context", "an integer >= 0"),
    ({"phase": "prefil"}, None, "prefill"),
    ({"tp": 3}, "tp", "tp values that work: 1, 2, 4, 8"),
    ({"tp": 16}, "tp", "num_key_value_heads=8"),
    ({"ep": 2}, "ep", "no experts"),
    ({"kv_fraction": 0}, "kv_fraction", "(0, 1]"),
    ({"acceptance": 1.5, "spec_tokens": 2}, "acceptance", "[0, 1]"),
    ({"dtype": "fp7"}, "dtype", "fp7"),
    ({"kv_placement": "disk"}, "kv_placement", "disk"),
    ({"batch": 3, "microbatches": 2}, "microbatches", "multiple"),
    ({"pp": 99}, "pp", "exceeds"),
    ({"group_size": 128}, "group_size", "applies to int4/int8 weights"),     # never silently ignored
    ({"weight_dtype": "int4", "group_size": 0}, "group_size", "positive"),
])
def test_bad_knobs(kwargs, field, fragment):
    with pytest.raises(InputError) as info:
        build_llm("llama-3.1-70b", **{"phase": "decode", **kwargs})
    problem = info.value.problems[0]
    assert fragment in str(problem)
    if field:
        assert problem.path == field


@pytest.mark.parametrize("model,kwargs,field", [
    ("llama-2-7b", {"phase": "prefill", "prompt_len": 100, "context": 50}, "context"),
    ("llama-2-7b", {"phase": "decode", "chunk_size": 128}, "chunk_size"),
    ("llama-2-7b", {"phase": "prefill", "chunk_start": 64}, "chunk_start"),
    ("llama-2-7b", {"phase": "decode", "acceptance": 0.5}, "acceptance"),
    ("llama-2-7b", {"phase": "decode", "moe_imbalance": 1.5}, "moe_imbalance"),
])
def test_knobs_that_do_not_apply_are_refused_not_ignored(model, kwargs, field):
    with pytest.raises(InputError) as info:
        build_llm(model, **kwargs)
    assert info.value.problems[0].path == field


def test_knobs_that_apply_are_accepted():
    # a prefill whose context equals its prompt says the same thing twice: accepted
    assert build_llm("llama-2-7b", "prefill", prompt_len=100, context=100).meta["tokens_processed"] == 100
    k, a = 3, 0.5
    spec = build_llm("llama-2-7b", "decode", batch=2, spec_tokens=k, acceptance=a)
    assert spec.meta["tokens"] == 2 * (1 + a + a ** 2 + a ** 3)
    assert build_llm("llama-2-7b", "decode", spec_tokens=1).meta["acceptance"] == 0.8    # the default
    # at ep=1 each rank holds a slice of every expert: an imbalance changes nothing, and says so
    even = build_llm("mixtral-8x7b", "decode", batch=64, tp=2)
    skewed = build_llm("mixtral-8x7b", "decode", batch=64, tp=2, moe_imbalance=1.5)
    assert skewed.flops() == even.flops()
    assert any("no effect with ep=1" in w for w in skewed.meta["warnings"])


def test_ep_below_tp_and_mamba_tp_are_refused():
    with pytest.raises(InputError, match="ep=4 must be 1 or a multiple of tp=8"):
        build_llm("mixtral-8x7b", tp=8, ep=4)
    with pytest.raises(InputError, match="Mamba"):
        build_llm("mamba-2.8b", tp=2)


def test_unknown_model_suggests():
    with pytest.raises(InputError) as info:
        load_workload("llama-3-8b")
    assert info.value.problems[0].suggestion == "llama-3.1-8b"


def test_config_json_missing_keys_are_named(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "llama", "num_hidden_layers": 2, "num_attention_heads": 8,
                                "intermediate_size": 64}))
    with pytest.raises(InputError) as info:
        build_llm(str(path))
    text = str(info.value)
    assert "hidden_size" in text and "vocab_size" in text and str(path) in text
    path.write_text('{"model_type": "llama",\n "hidden_size": 64,,}')
    with pytest.raises(InputError) as info:
        build_llm(str(path))
    assert info.value.problems[0].line == 2
    path.write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(InputError, match="model_type"):
        build_llm(str(path))


def test_users_config_json_loads_like_a_bundled_one(tmp_path):
    path = tmp_path / "my-llama.json"
    cfg = json.loads(json.dumps(load_config("llama-2-7b").raw))
    path.write_text(json.dumps(cfg))
    assert load_workload(str(path), phase="decode").params() == PUBLISHED["llama-2-7b"][0]


def test_llama_attention_bias_and_mlp_bias_as_transformers_builds_them(tmp_path):
    h, layers, heads, kv, inter, vocab, tp = 256, 2, 8, 4, 512, 1000, 2
    d = h // heads
    path = tmp_path / "biased.json"
    path.write_text(json.dumps({"model_type": "llama", "hidden_size": h, "num_hidden_layers": layers,
                                "num_attention_heads": heads, "num_key_value_heads": kv,
                                "intermediate_size": inter, "vocab_size": vocab, "attention_bias": True,
                                "mlp_bias": True}))
    plain = dense(h, layers, heads, kv, inter, vocab)
    biases = layers * ((h + 2 * kv * d) + h + 2 * inter + h)   # q/k/v, o_proj, gate/up, down_proj
    assert build_llm(str(path)).params() == plain + biases
    # o_proj and down_proj biases are added after the all-reduce: replicated like the norms
    replicated = (2 * layers + 1) * h + layers * 2 * h
    assert tp * build_llm(str(path), tp=tp).params() == plain + biases + (tp - 1) * replicated
    assert "model.layers.0.self_attn.o_proj.bias_add" in build_llm(str(path))
    # Qwen2 keeps its biases on q/k/v only
    assert not load_config("qwen2.5-7b").o_bias and not load_config("qwen2.5-7b").mlp_bias


TINY = parse_config({"model_type": "llama", "hidden_size": 256, "num_hidden_layers": 4,
                     "num_attention_heads": 8, "num_key_value_heads": 4, "intermediate_size": 512,
                     "vocab_size": 1024, "max_position_embeddings": 1 << 20}, "tiny")


@settings(max_examples=30, deadline=None)
@given(batch=st.integers(1, 64), context=st.integers(1, 5000), extra=st.integers(1, 5000),
       tp=st.sampled_from([1, 2, 4]))
def test_decode_properties(batch, context, extra, tp):
    s = build_llm(TINY, "decode", batch=batch, context=context, tp=tp).summary()
    longer = build_llm(TINY, "decode", batch=batch, context=context + extra, tp=tp).summary()
    one = build_llm(TINY, "decode", batch=1, context=context, tp=tp).summary()
    assert longer["flops"] > s["flops"] and longer["bytes"]["kv"] > s["bytes"]["kv"]
    assert s["bytes"]["weight"] == longer["bytes"]["weight"]          # weights read once per step
    assert s["kv_cache_bytes"] == batch * one["kv_cache_bytes"]
    assert s["kv_cache_bytes"] * tp == batch * (context + 1) * 2 * 4 * 4 * 32 * 2
    assert tp * s["params"] == build_llm(TINY, "decode").params() + (tp - 1) * (2 * 4 + 1) * 256


def test_deepseek_prefill_decompresses_but_caches_the_latent():
    B, P = 2, 300
    graph = build_llm("deepseek-v2-lite", "prefill", batch=B, prompt_len=P)
    attn = graph.op("model.layers.0.self_attn.attn")
    assert (attn.heads, attn.kv_heads, attn.head_dim, attn.v_head_dim) == (16, 16, 192, 128)
    assert attn.flops()[("matrix", "bf16")] == 2 * B * 16 * (P * (P + 1) / 2) * (192 + 128)
    assert graph.summary()["kv_cache_bytes"] == B * P * 27 * 576 * 2
    appended = [t for t in attn.outputs if t.role == "kv"]
    assert [t.shape for t in appended] == [(B, P, 1, 576)]
    kvb = graph.op("model.layers.0.self_attn.kv_b_proj")
    assert (kvb.k, kvb.n) == (512, 16 * (128 + 128))
    assert graph.params() == deepseek_v2_lite()                 # same weights as the absorbed form


def test_expert_parallel_wider_than_tensor_parallel_hand_counted():
    # Mixtral (hidden 4096, expert intermediate 14336, 8 experts, top-2, 32 heads of 128) on 8 GPUs:
    # attention TP2 in 8/2 = 4 data-parallel groups, experts over EP8.
    B, tp, ep, H, inter = 8, 2, 8, 4096, 14336
    graph = build_llm("mixtral-8x7b", "decode", batch=B, context=100, tp=tp, ep=ep)
    assert graph.meta["dp"] == 4 and graph.meta["tokens"] == B
    T = B // 4                                # 2 tokens per attention group
    p = "model.layers.0."
    q = graph.op(p + "self_attn.q_proj")
    assert (q.m, q.n) == (T, 32 // tp * 128)  # each rank: 16 of the 32 heads of its group's 2 tokens
    dispatch = graph.op(p + "block_sparse_moe.dispatch")
    # each rank routes T/tp = 1 token x top-2 x 4096 x 2 bytes; the all-to-all spans the 8 ep ranks
    assert (dispatch.group, dispatch.group_size, dispatch.payload_bytes) == ("ep", 8, 1 * 2 * 4096 * 2)
    gather = graph.op(p + "block_sparse_moe.all_gather")
    assert (gather.group, gather.group_size, gather.payload_bytes) == ("tp", 2, T * 4096 * 2)
    # rows per rank: all 8 tokens x top-2 over 8 ranks = 2 rows, on its one whole expert
    expert_flops = sum(graph.op(p + f"block_sparse_moe.experts.{w}").flops()[("matrix", "bf16")]
                       for w in ("w1", "w3", "w2"))
    assert expert_flops == 3 * 2 * 2 * H * inter              # 3 GEMMs x 2 FLOP x 2 rows x 4096 x 14336
    assert graph.op(p + "block_sparse_moe.experts.w1").experts_held == 1
    # the same deployment as TP8/EP8 does the same expert work per rank (8 tokens / 8 ranks x top-2)
    same = build_llm("mixtral-8x7b", "decode", batch=B, context=100, tp=8, ep=8)
    assert same.op(p + "block_sparse_moe.experts.w1").flops() == graph.op(
        p + "block_sparse_moe.experts.w1").flops()


def test_expert_parallel_wider_than_tensor_parallel_plays_on_every_rank():
    from simulator import simulate

    graph = build_llm("mixtral-8x7b", "decode", batch=8, context=100, tp=2, ep=8)
    res = simulate(graph, "hgx-h100")
    assert res.meta["devices"] == 8 and res.latency_s > 0
    with pytest.raises(InputError) as info:
        build_llm("mixtral-8x7b", "decode", batch=6, tp=2, ep=8)
    assert info.value.problems[0].path == "batch" and "4 data-parallel attention groups" in str(info.value)
    with pytest.raises(InputError) as info:
        build_llm("mixtral-8x7b", "chunked", batch=8, tp=2, ep=8, prompt_len=64)
    assert info.value.problems[0].path == "ep"


def test_context_zero_is_an_empty_cache_where_that_means_something():
    # llama-3.1-8b: 32 layers, 8 KV heads of 128, bf16 (2 bytes); K and V
    B = 3
    decode = build_llm("llama-3.1-8b", "decode", batch=B, context=0)
    attn = decode.op("model.layers.0.self_attn.attn")
    assert (attn.q_len, attn.kv_len) == (1, 1)                # the new token attends to itself only
    assert decode.summary()["kv_cache_bytes"] == B * 1 * 2 * 32 * 8 * 128 * 2
    chunked = build_llm("llama-3.1-8b", "chunked", batch=B, context=0, prompt_len=256, chunk_size=128)
    first, decodes = (chunked.op(f"model.layers.0.self_attn.attn.{j}") for j in (0, 1))
    assert (first.q_len, first.kv_len, decodes.kv_len) == (128, 128, 1)
    with pytest.raises(InputError, match="a prefill runs prompt_len tokens from an empty cache") as info:
        build_llm("llama-3.1-8b", "prefill", prompt_len=64, context=0)
    assert info.value.problems[0].path == "context"
    with pytest.raises(InputError, match="must include the shared prompt"):
        build_llm("llama-3.1-8b", "decode", best_of=2, prompt_len=64, context=0)


def test_chunk_start_places_the_chunk_in_its_prompt():
    graph = build_llm("llama-2-7b", "chunked", batch=2, prompt_len=1024, chunk_start=512, chunk_size=256,
                      context=300)
    chunk, decodes = graph.op("model.layers.0.self_attn.attn.0"), graph.op("model.layers.0.self_attn.attn.1")
    assert (chunk.q_len, chunk.kv_len) == (256, 512 + 256)
    assert (decodes.batch, decodes.kv_len) == (2, 301)
    assert graph.meta["tokens_processed"] == 256 + 2 and graph.meta["tokens"] == 2   # not the last chunk
    rest = build_llm("llama-2-7b", "chunked", batch=2, prompt_len=1024, chunk_start=768)
    assert rest.op("model.layers.0.self_attn.attn.0").q_len == 1024 - 768             # default: the rest
    assert rest.meta["tokens"] == 2 + 1                                               # ends the prompt
    with pytest.raises(InputError) as info:
        build_llm("llama-2-7b", "chunked", prompt_len=64, chunk_start=64)
    assert info.value.problems[0].path == "chunk_start"
