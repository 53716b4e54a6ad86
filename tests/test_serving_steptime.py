"""The serving step-time model against playing the step's graph through the engine."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwmodels.errors import InputError
from simulator import simulate
from simulator.serving.steptime import StepTimeModel
from workloads.batch import PrefillChunk, build_step, decode_context, step_segments

MODEL = "llama-3.1-8b"
_MODELS: dict = {}


def _model(hw, **kw):
    key = (hw, tuple(sorted(kw.items())))
    if key not in _MODELS:
        _MODELS[key] = StepTimeModel(MODEL, hw, **kw)
    return _MODELS[key]


chunks = st.lists(st.builds(PrefillChunk, st.integers(1, 700), st.integers(0, 3000), st.booleans()),
                  max_size=2)
contexts = st.lists(st.integers(1, 5000), max_size=48)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunks, contexts, st.sampled_from([("h100-sxm", {}), ("hgx-h100", {"tp": 2})]))
def test_step_time_matches_the_engine_within_one_percent(prefills, ctx, where):
    if not prefills and not ctx:
        ctx = [17]
    hw, kw = where
    cost = _model(hw, **kw).step(prefills, len(ctx), sum(ctx))
    mean = decode_context(len(ctx), sum(ctx)) if ctx else 0
    played = simulate(build_step(MODEL, prefills, [mean] * len(ctx), **kw), hw)
    assert cost.time_s == pytest.approx(played.latency_s, rel=0.01)
    assert cost.energy_j == pytest.approx(played.energy_j, rel=0.01)


def test_pipelined_replica_takes_the_whole_graph():
    cost = _model("hgx-h100", pp=2).step([PrefillChunk(300, 100)], 4, 4 * 900)
    played = simulate(build_step(MODEL, [PrefillChunk(300, 100)], [900] * 4, pp=2), "hgx-h100")
    assert cost.time_s == pytest.approx(played.latency_s, rel=0.01)
    assert cost.energy_j == pytest.approx(played.energy_j, rel=0.01)


def test_segments_of_a_mixed_step():
    segs, rows = step_segments([PrefillChunk(256, 512, last=False)], [100, 201])
    # the chunk: 1 sequence, 256 queries over 512 + 256 keys; the decodes: 2 at their mean 150.5
    # rounded up to a multiple of 16 (160), each attending to it plus the new token (161); one
    # sampled row per request
    assert [(s.batch, s.q_len, s.kv_len) for s in segs] == [(1, 256, 768), (2, 1, 161)]
    assert rows == 3


def test_more_decodes_or_longer_contexts_never_take_less_time():
    m = _model("h100-sxm")
    assert m.step((), 64, 64 * 2000).time_s >= m.step((), 32, 32 * 2000).time_s
    assert m.step((), 32, 32 * 4000).time_s > m.step((), 32, 32 * 1000).time_s


def test_empty_step_is_refused():
    with pytest.raises(InputError):
        build_step(MODEL, [], [])


def test_kernels_and_cuda_graph_launches():
    import dataclasses

    from simulator.serving.profile import load_profile

    m = _model("h100-sxm")
    cost = m.step((), 32, 32 * 1000)
    graph = build_step(MODEL, [], [1000] * 32)
    assert cost.kernels == len(graph.ops) and cost.decode_only
    graphs = dataclasses.replace(load_profile("none"), cuda_graph_max_tokens=512)
    # one graph launch instead of one per kernel: (kernels - 1) launch overheads saved
    assert graphs.gpu_time(cost) == pytest.approx(cost.time_s - (cost.kernels - 1) * cost.launch_s)
    mixed = m.step([PrefillChunk(100, 0)], 4, 4000)
    # piecewise: each attention kernel and each of the layers + 1 pieces between them launch
    launches = mixed.attention_kernels + m.cfg.layers + 1
    assert graphs.gpu_time(mixed) == pytest.approx(mixed.time_s - (mixed.kernels - launches) * mixed.launch_s)
    big = m.step([PrefillChunk(600, 0)], 0, 0)
    assert graphs.gpu_time(big) == big.time_s          # over 512 tokens: no graph


@pytest.mark.parametrize("prefills, ctx", [([PrefillChunk(300, 0)], []), ([PrefillChunk(200, 50)], [700, 900]),
                                           ([], [1200] * 5)])
def test_mla_with_leading_dense_layer_matches_the_engine(prefills, ctx):
    model = "deepseek-v2-lite"
    m = _MODELS.setdefault(("mla",), StepTimeModel(model, "h100-sxm"))
    cost = m.step(prefills, len(ctx), sum(ctx))
    mean = decode_context(len(ctx), sum(ctx)) if ctx else 0
    played = simulate(build_step(model, prefills, [mean] * len(ctx)), "h100-sxm")
    assert cost.time_s == pytest.approx(played.latency_s, rel=0.01)
    assert cost.kernels == len(build_step(model, prefills, [mean] * len(ctx)).ops)


def test_a_step_runs_the_engines_unfused_kernels_as_simulate_does():
    from hwmodels.runtime import RuntimeProfile

    quantize = RuntimeProfile("q", unfused=("fp8_quantize",))
    bare = _model("h100-sxm", dtype="fp8").step([], 8, 8 * 1000)
    engine = StepTimeModel(MODEL, "h100-sxm", runtime=quantize, dtype="fp8").step([], 8, 8 * 1000)
    # a quantize kernel in front of every fp8 GEMM: 32 layers x 7 projections (q, k, v, o, gate,
    # up, down) + the LM head = 225 kernels more
    assert engine.kernels - bare.kernels == 32 * 7 + 1
    played = simulate(build_step(MODEL, [], [1000] * 8, dtype="fp8"), "h100-sxm", runtime=quantize)
    assert engine.time_s == pytest.approx(played.latency_s, rel=0.01)
    assert engine.time_s > bare.time_s


def test_a_step_pays_the_engines_sampling_kernels_outside_its_graph():
    from hwmodels.runtime import RuntimeProfile

    sampler = RuntimeProfile("s", sampling_kernels=1, sampling_logit_passes=1)
    bare = _model("h100-sxm").step([], 8, 8 * 1000)
    engine = StepTimeModel(MODEL, "h100-sxm", runtime=sampler).step([], 8, 8 * 1000)
    # one pass over the logits: 8 rows x 128256 bf16 read and written = 4,104,192 B; at most the
    # HBM's 3.35 TB/s (1.23 us) plus the device's 4 us launch, at least half of it (2.45 us) plus
    # the launch and 1 us of latency
    extra = engine.time_s - bare.time_s
    assert 4104192 / 3.35e12 + 4e-6 <= extra <= 4104192 / (0.5 * 3.35e12) + 5e-6
    assert engine.kernels == bare.kernels       # eager: not a kernel of the replayed graph
    played = simulate(build_step(MODEL, [], [1000] * 8), "h100-sxm", runtime=sampler)
    assert engine.time_s == pytest.approx(played.latency_s, rel=0.01)


def test_a_step_over_the_power_limit_takes_the_time_at_which_it_draws_the_limit():
    m = _model("h100-sxm")
    # H100 SXM: active 70 + 0.21 x 630 = 202.3 W, limit 700 W. 1000 J of work in 1 s would draw
    # 1202.3 W: held to 700 W it takes 1000 / (700 - 202.3) = 2.00924 s; 100 J in 1 s (302.3 W)
    # is under the limit and keeps its second.
    assert m.at_power_cap(1.0, 1000.0) == pytest.approx(1000.0 / (700.0 - 202.3))
    assert m.at_power_cap(1.0, 100.0) == 1.0
    # a dense 2048-token prefill step (about 760 W at the full clock) draws the limit, no more
    cost = m.step([PrefillChunk(2048, 0)], 0, 0)
    assert cost.energy_j / cost.time_s == pytest.approx(700.0)
