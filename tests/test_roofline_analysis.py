"""The analyzer: textbook roofline facts, the per-operator table, bound summary and plots."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

import hwmodels  # noqa: E402
import workloads  # noqa: E402
from roofline import analyze, plot_rooflines  # noqa: E402

# Llama-2-7B (config.json): 32 layers, hidden 4096, MLP 11008, vocab 32000, untied LM head.
LAYER_PARAMS = 4 * 4096 * 4096 + 3 * 4096 * 11008 + 2 * 4096
READ_PARAMS = 32 * LAYER_PARAMS + 4096 + 32000 * 4096   # blocks, final norm, LM head


@pytest.fixture(scope="module")
def a100():
    return hwmodels.load_device("a100-sxm-80gb")


@pytest.fixture(scope="module")
def decode(a100):
    return analyze(workloads.build_llm("llama-2-7b", "decode", batch=1, prompt_len=1024), a100)


def test_decode_batch1_is_hbm_bound(decode):
    assert decode.bound_summary()["dominant"] == "memory:hbm"


def test_decode_reads_every_weight_and_the_kv_once(decode):
    """bf16 weights (the embedding gathers one row) + K and V of 1024 cached tokens per layer."""
    weights = READ_PARAMS * 2 + 4096 * 2
    kv = 2 * 32 * 1024 * 4096 * 2
    hbm = decode.to_frame()["bytes_memory_hbm"].sum()
    assert weights + kv <= hbm <= (weights + kv) * 1.005


def test_prefill_2048_is_compute_bound(a100):
    a = analyze(workloads.build_llm("llama-2-7b", "prefill", batch=1, prompt_len=2048), a100)
    assert a.bound_summary()["dominant"] == "compute:tensor"


def test_decode_turns_compute_bound_at_the_ridge_batch(a100):
    """A decode GEMM does 2 x batch FLOPs per 2-byte weight: intensity = batch FLOP/B, so the
    weight GEMMs cross the HBM ridge at batch* = ridge x bytes_per_param / 2."""
    ridge = a100.engines["tensor"].peak_flops["bf16"] / a100.memory["hbm"].bandwidth_bytes_s
    crossover = ridge * 2 / 2
    assert 150 < crossover < 155
    below = analyze(workloads.build_llm("llama-2-7b", "decode", batch=round(crossover / 2), prompt_len=16), a100)
    above = analyze(workloads.build_llm("llama-2-7b", "decode", batch=round(crossover * 2), prompt_len=16), a100)
    assert below.bound_summary()["dominant"] == "memory:hbm"
    assert above.bound_summary()["dominant"] == "compute:tensor"


def test_frame_columns_follow_the_hierarchical_roofline(decode, a100):
    frame = decode.to_frame()
    assert len(frame) == len(decode.ops)
    for col in ("op", "kind", "time_s", "bound", "intensity_memory_hbm", "intensity_memory_l2",
                "peak_flops", "attainable_flops", "achieved_flops"):
        assert col in frame.columns
    row = frame[frame.op == "model.layers.3.mlp.up_proj"].iloc[0]
    assert row.intensity_memory_hbm == pytest.approx(row.flops / row.bytes_memory_hbm)
    # attainable = min(peak, intensity x bandwidth over every level)
    ceilings = [row.peak_flops] + [row[f"intensity_memory_{n}"] * lv.bandwidth_bytes_s
                                   for n, lv in a100.memory.items() if row[f"bytes_memory_{n}"] > 0]
    assert row.attainable_flops == pytest.approx(min(ceilings))
    assert row.achieved_flops <= row.attainable_flops <= row.peak_flops
    assert row.peak_flops == a100.engines["tensor"].peak_flops["bf16"]


def test_bound_summary_shares(decode):
    summary = decode.bound_summary()
    assert next(iter(summary)) == "dominant"
    shares = {k: v for k, v in summary.items() if k != "dominant"}
    assert sum(shares.values()) == pytest.approx(1.0)
    assert summary["dominant"] == max(shares, key=shares.get)
    assert decode.total_time_s == pytest.approx(decode.to_frame()["time_s"].sum())


def test_a_system_is_analyzed_on_its_first_accelerator(a100):
    graph = workloads.build_llm("llama-2-7b", "decode", batch=8, prompt_len=256, tp=8)
    on_system = analyze(graph, hwmodels.load_system("dgx-a100"))
    assert on_system.device.id == "a100-sxm-80gb"
    assert on_system.total_time_s == pytest.approx(analyze(graph, a100).total_time_s)
    frame = on_system.to_frame()
    collectives = frame.kind == "collective"
    assert collectives.sum() >= 2 * 32                  # two all-reduces per layer at least
    assert (frame.bytes_link_nvlink > 0).equals(collectives)


def test_identical_operators_share_a_cost_but_keep_their_names(decode):
    names = [d.op for d in decode.demands]
    assert names == [op.name for op in decode.ops]
    ups = [d for d in decode.demands if d.op.endswith("mlp.up_proj")]
    assert len(ups) == 32 and len({d.time_s for d in ups}) == 1


def test_plot_side_by_side(decode, tmp_path):
    h100 = hwmodels.load_device("h100-sxm")
    other = analyze(workloads.build_llm("llama-2-7b", "decode", batch=1, prompt_len=1024), h100)
    fig = decode.plot(other)
    assert len(fig.axes) == 2
    labels = {t.get_text().strip() for t in fig.axes[0].texts}
    assert "tensor:bf16/fp16" in labels and "hbm" in labels and "pcie" in labels
    for suffix in ("png", "svg"):
        fig.savefig(tmp_path / f"r.{suffix}")
        assert (tmp_path / f"r.{suffix}").stat().st_size > 1000
    with pytest.raises(ValueError):
        plot_rooflines([])
