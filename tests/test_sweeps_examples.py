"""The bundled sweeps in examples/sweeps/, each run on a small slice, checked by hand."""

from pathlib import Path

import pytest

from hwmodels.yamlio import load
from sweeps import Sweep
from sweeps.spec import parse_spec

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "sweeps"


def _slice(name: str, base: dict | None = None, **axes) -> Sweep:
    """The example spec with its axes narrowed and ``base`` knobs changed (relative paths still
    resolve next to it)."""
    doc = load(EXAMPLES / name)
    doc.data["axes"] = {**doc.data["axes"], **axes}
    doc.data["base"] = {**doc.data["base"], **(base or {})}
    return Sweep(spec=parse_spec(doc.data, doc))


@pytest.mark.parametrize("name", ["hbm-vs-batch.yaml", "deploy-70b.yaml", "npu-sram.yaml", "serve-rate.yaml"])
def test_examples_are_valid_specs(name):
    assert Sweep.from_yaml(EXAMPLES / name).spec.planned_size() > 10


def test_hbm_vs_batch_turns_compute_bound_where_the_ridge_point_says():
    # Llama-3.1-8B decode: a batch of B tokens multiplies each bf16 weight (2 bytes) with B tokens,
    # 2 FLOPs each, so the GEMMs' intensity is ~B FLOP per HBM byte. The H100's ridge point at
    # 8 TB/s: 989e12 / 8e12 = 124 FLOP/B nominal; with the catalog's efficiencies (tensor 0.8, HBM
    # 0.9) 989e12 x 0.8 / (8e12 x 0.9) = 110 FLOP/B. So B = 64 is memory-bound and B = 128
    # compute-bound; at 2 TB/s the ridge is 4x higher (440), so B = 128 stays memory-bound.
    # The KV cache (B x 512 tokens x 128 KiB) stays below the GEMM time: at B = 128 it is
    # 128 x 512 x 131072 B / 7.2e12 B/s = 1.2 ms < 2 x 7.5e9 x 128 / 791e12 = 2.4 ms of GEMM FLOPs.
    ridge_8tb = 989e12 * 0.8 / (8e12 * 0.9)
    assert 64 < ridge_8tb < 128 < 989e12 * 0.8 / (2e12 * 0.9)
    frame = _slice("hbm-vs-batch.yaml", **{"hw.memory.hbm.bandwidth": ["2 TB/s", "8 TB/s"],
                                           "batch": [64, 128]}).run(workers=1)
    bound = {(r[0], r[1]): r[2] for r in frame[["hw.memory.hbm.bandwidth", "batch", "bound"]].to_numpy()}
    assert bound == {(8e12, 64): "memory", (8e12, 128): "compute", (2e12, 64): "memory", (2e12, 128): "memory"}
    assert set(frame.loc[frame.bound == "compute", "dominant"]) == {"compute:tensor"}


def test_deploy_70b_statuses_and_cost_per_million_tokens():
    # Llama-3.1-70B: 64 heads, so tp=3 is invalid; one H200 (141 GB) cannot hold 141 GB of bf16
    # weights plus a KV cache; one MI300X (192 GB) can
    sweep = _slice("deploy-70b.yaml", hw=["hgx-h200", "mi300x-8.yaml"], tp=[1, 3], batch=[8])
    frame = sweep.run(workers=1)
    status = {(r.hw, r.tp): r.status for r in frame.itertuples()}
    assert status == {("hgx-h200", 1): "does-not-fit", ("hgx-h200", 3): "invalid",
                      ("mi300x-8.yaml", 1): "ok", ("mi300x-8.yaml", 3): "invalid"}
    ok = frame[frame.status == "ok"].iloc[0]
    # one replica uses 1 of the platform's 8 GPUs at $20/h: $2.5/h over throughput tokens/s
    assert ok.cost_per_mtok == pytest.approx(20.0 / 8 / 3600 / ok.throughput_tok_s * 1e6)
    assert ok.throughput_tok_s == pytest.approx(8 / ok.latency_s)
    assert sweep.pareto().key.tolist() == [ok.key]     # fits_memory leaves only the ok point


def test_npu_sram_size_decides_the_bound():
    # 24 blocks x (4096 x 1024 x (3072 + 1024 + 4096) + 4096 x 4096 x 1024) MACs x 2 FLOP = 2.47e12 FLOP;
    # eight 128 x 256 arrays at 1 GHz: 8 x 128 x 256 x 2 x 1e9 = 5.2e14 FLOP/s
    flops = 24 * 2 * (4096 * 1024 * (3072 + 1024 + 4096) + 4096 * 4096 * 1024)
    peak = 8 * 128 * 256 * 2 * 1e9
    frame = _slice("npu-sram.yaml", **{"hw.memory.sram.capacity": ["1 MiB", "64 MiB"],
                                       "hw.engines.mxu.systolic.rows": [128],
                                       "hw.engines.mxu.systolic.cols": [256]}).run(workers=1)
    small, large = (frame[frame["hw.memory.sram.capacity"] == c].iloc[0] for c in (2**20, 64 * 2**20))
    assert small.bound == "memory" and large.bound == "compute"
    assert large.latency_s >= flops / peak
    assert small.latency_s > large.latency_s


def test_serve_rate_throughput_follows_the_rate_until_saturation():
    # 200 requests of 1024 prompt + 128 output tokens (fixed lengths) drawn at 2 and 80 requests/s.
    frame = _slice("serve-rate.yaml", rate=[2, 80], scheduler=["vllm"]).run(workers=1)
    assert list(frame.status) == ["ok", "ok"]
    low, high = (frame[frame.rate == r].iloc[0] for r in (2, 80))
    for row in (low, high):
        # every request completes and makes exactly 128 output tokens: throughput = 128 x req/s,
        # total = (1024 + 128) x req/s, and req/s = 200 / duration; no SLO: goodput = req/s
        assert row.completed == 200 and row.rejected == 0
        assert row.requests_per_s == pytest.approx(200 / row.duration_s, rel=1e-12)
        assert row.throughput_tok_s == pytest.approx(128 * row.requests_per_s, rel=1e-12)
        assert row.total_tok_s == pytest.approx(1152 * row.requests_per_s, rel=1e-12)
        assert row.goodput_req_s == row.requests_per_s
        assert row.j_per_output_token == pytest.approx(row.energy_j / (200 * 128), rel=1e-12)
        assert row.ttft_mean_s <= row.ttft_p99_s and row.e2e_mean_s <= row.e2e_p99_s
    # below saturation the server keeps up: 200 arrivals at 2/s span ~100 s (sd sqrt(200)/2 = 7 s),
    # and each request then takes about TTFT + 127 x TPOT < 1 s, so req/s is within ~20% of 2
    assert 1.6 < low.requests_per_s < 2.4
    # at 80/s the arrivals come in ~2.5 s, far faster than one H100 serves them: throughput rises
    # with the rate but saturates well below 80 req/s, and queueing pushes TTFT p99 past 0.5 s
    assert low.requests_per_s < high.requests_per_s < 80 / 2
    assert low.ttft_p99_s < 0.5 < high.ttft_p99_s


def test_serve_sweep_constraints_determinism_and_statuses():
    sweep = _slice("serve-rate.yaml", {"num_requests": 60}, rate=[5, 80], scheduler=["vllm", "sarathi"])
    frame = sweep.run(workers=1)
    again = sweep.run(workers=1)
    figures = ["ttft_p99_s", "tpot_mean_s", "throughput_tok_s", "energy_j", "preemptions"]
    assert frame.sort_values("key")[figures].to_numpy().tolist() == again.sort_values("key")[figures].to_numpy().tolist()
    # the spec's constraint ttft_p99_s <= 0.5 keeps the front to points that meet it
    front = sweep.pareto()
    assert len(front) >= 1 and (front.ttft_p99_s <= 0.5).all()
    assert set(front.key) <= set(frame.loc[frame.ttft_p99_s <= 0.5, "key"])
    # Llama-3.1-70B at tp=2: 141e9 B of bf16 weights / 2 = 70.5e9 B per device; 0.9 x 40 GB = 36e9 B
    # usable cannot hold them, 0.9 x 160 GB = 144e9 B can (with ~70 GB left for KV blocks)
    big = _slice("serve-rate.yaml", {"model": "llama-3.1-70b", "num_requests": 4, "tp": 2}, rate=[5],
                 scheduler=["vllm"], **{"hw.memory.hbm.capacity": ["40 GB", "160 GB"]}).run(workers=1)
    assert dict(zip(big["hw.memory.hbm.capacity"], big.status)) == {40e9: "does-not-fit", 160e9: "ok"}
    assert "does not fit on h100-sxm" in big.loc[big.status == "does-not-fit", "message"].iloc[0]
