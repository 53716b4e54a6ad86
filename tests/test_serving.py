"""Serving simulation: requests, KV blocks, schedulers, metrics, and the paper claims they reproduce."""

import dataclasses
import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwmodels.errors import InputError
from reports.cli import main
from simulator.serving import SCHEDULERS, serve
from simulator.serving.kvcache import KVCache
from simulator.serving.metrics import serving_metrics, stats, steady_state_energy
from simulator.serving.profile import load_profile
from simulator.serving.requests import Request, arrival_times, draw_lengths, load_trace

MODEL, HW = "llama-3.1-8b", "h100-sxm"


# -- requests --------------------------------------------------------------------------------------
def test_gamma_arrivals_have_the_rate_and_start_at_zero():
    t = arrival_times(20_000, rate=4.0, burstiness=0.5, seed=1)
    assert t[0] == 0.0
    gaps = np.diff(t)
    # gamma(k=0.5, theta=1/(4*0.5)) has mean k*theta = 0.25 s and variance k*theta^2 = 0.125 s^2
    assert gaps.mean() == pytest.approx(0.25, rel=0.03)
    assert gaps.var() == pytest.approx(0.125, rel=0.08)
    assert not arrival_times(5, math.inf).any()


def test_length_distributions():
    rng = np.random.default_rng(0)
    assert list(draw_lengths("7", 3, rng)) == [7, 7, 7]
    u = draw_lengths("uniform:10,20", 2000, rng)
    assert u.min() >= 10 and u.max() <= 20
    assert draw_lengths("normal:5,50", 2000, rng).min() >= 1          # clipped to a whole token
    ln = draw_lengths("lognormal:100,0.5", 20000, rng)
    assert np.median(ln) == pytest.approx(100, rel=0.05)
    with pytest.raises(InputError, match="did you mean 'uniform'"):
        draw_lengths("unifrom:1,2", 1, rng)
    with pytest.raises(InputError):
        draw_lengths("0", 1, rng)


def test_trace_formats(tmp_path):
    j = tmp_path / "t.jsonl"
    j.write_text('{"input_toks": 5, "output_toks": 2, "queued_ts": 100.5}\n'
                 '{"input_toks": 7, "output_toks": 3, "queued_ts": 100.0}\n')
    assert load_trace(str(j)) == [(0.0, 7, 3), (0.5, 5, 2)]
    a = tmp_path / "azure.csv"
    a.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n"
                 "2023-11-16 18:15:50.9951690,396,109\n")
    rows = load_trace(str(a))
    assert rows[1][0] == pytest.approx(50.995169 - 46.68059) and rows[1][1:] == (396, 109)
    conv = load_trace("azure-conv")
    assert len(conv) == 19366 and conv[0] == (0.0, 374, 44)


@pytest.mark.parametrize("text, line, field", [
    ('{"input_toks": 5, "output_toks": 2, "arrival_s": 0}\n{"input_toks": 0, "output_toks": 2, "arrival_s": 1}\n',
     2, "input_toks"),
    ('{"input_toks": 5, "output_toks": 2}\n', 1, "queued_ts"),
    ('{"input_toks": 5, "output_toks": "x", "arrival_s": 0}\n', 1, "output_toks"),
])
def test_malformed_trace_lines_name_file_line_and_field(tmp_path, text, line, field):
    f = tmp_path / "bad.jsonl"
    f.write_text(text)
    with pytest.raises(InputError) as err:
        load_trace(str(f))
    p = err.value.problems[0]
    assert (p.file, p.line, p.path) == (str(f), line, field)


@pytest.mark.parametrize("name, data, line, message", [
    # found by the fuzz suite: a UnicodeDecodeError escaped; the bad byte is on line 2
    ("bad.csv", b"arrived_at,num_prefill_tokens,num_decode_tokens\n0.0,1\xff0,2\n", 2, "not UTF-8 text (byte 0xff"),
    # found by the fuzz suite: an EOFError (cut gzip) and a BadGzipFile escaped
    ("cut.csv.gz", b"\x1f\x8b\x08\x00garbage", None, "not a readable gzip file"),
    ("plain.csv.gz", b"arrived_at,num_prefill_tokens,num_decode_tokens\n", None, "not a readable gzip file"),
])
def test_unreadable_trace_bytes_are_an_input_error(tmp_path, name, data, line, message):
    f = tmp_path / name
    f.write_bytes(data)
    with pytest.raises(InputError) as err:
        load_trace(str(f))
    p = err.value.problems[0]
    assert (p.file, p.line, p.path) == (str(f), line, "requests") and p.message.startswith(message)


def test_cli_exits_2_on_a_trace_that_is_not_utf8(tmp_path, capsys):
    f = tmp_path / "t.jsonl"
    f.write_bytes(b'{"input_toks": 5, "output_toks": 2, "arrival_s": 0}\n{"input_toks": \xc3}\n')
    assert main(["serve", "--hw", HW, "--model", MODEL, "--requests", str(f), "--format", "json"]) == 2
    assert f"{f}:2: requests: not UTF-8 text" in capsys.readouterr().err


# -- KV blocks -------------------------------------------------------------------------------------
def test_kv_blocks_grow_and_release():
    kv = KVCache(10, 16)
    r = Request(0, 0.0, 40, 5)
    assert kv.grow(r, 40) and r.blocks == 3          # ceil(40 / 16)
    assert kv.grow(r, 48) and r.blocks == 3          # still 3 blocks
    assert kv.grow(r, 49) and r.blocks == 4
    assert not kv.grow(Request(1, 0.0, 200, 1), 200)  # 13 blocks > 6 free
    kv.release(r)
    assert kv.free == 10 and kv.peak_used == 4


def test_kv_blocks_are_derived_the_vllm_way():
    res = serve(MODEL, HW, num_requests=1, input_len=16, output_len=2, max_num_batched_tokens=2048,
                profile="none")
    b = res.config["kv_budget"]
    # one block: 16 tokens x 2 (K, V) x 32 layers x 8 KV heads x 128 dims x 2 B = 2,097,152 B
    assert b["block_bytes"] == 16 * 2 * 32 * 8 * 128 * 2
    # Llama-3.1-8B: 8,030,261,248 parameters x 2 B
    assert b["weights_bytes"] == 8_030_261_248 * 2
    left = 85_045_477_376 * 0.9 - b["weights_bytes"] - b["activations_bytes"] - 0
    assert res.metrics["kv"]["blocks_total"] == int(left // b["block_bytes"])


def test_model_that_does_not_fit_says_by_how_much():
    with pytest.raises(InputError, match=r"does not fit on rtx-4090.*GiB short"):
        serve("llama-3.1-70b", "rtx-4090", num_requests=1)


# -- metrics ---------------------------------------------------------------------------------------
def test_metrics_follow_vllm_definitions():
    arrays = {"arrival_s": np.array([0.0, 1.0]), "first_token_s": np.array([0.5, 1.2]),
              "finish_s": np.array([2.5, 1.2]), "output_tokens": np.array([5, 1]),
              "input_tokens": np.array([10, 20])}
    m = serving_metrics(arrays, [0.5, 0.5, 0.5, 0.5], slo={"ttft_s": 0.3, "tpot_s": None, "e2e_s": None})
    # TTFT 0.5 and 0.2; TPOT only for >1 output token: (2.5 - 0.5) / (5 - 1) = 0.5
    assert m["ttft_s"]["mean"] == pytest.approx(0.35)
    assert m["tpot_s"]["mean"] == pytest.approx(0.5) and m["tpot_s"]["p99"] == pytest.approx(0.5)
    # duration: first arrival 0 to last finish 2.5 s; 2 requests, 6 output, 36 total tokens
    assert m["duration_s"] == 2.5
    assert m["throughput"] == pytest.approx({"requests_per_s": 0.8, "output_tokens_per_s": 2.4,
                                            "total_tokens_per_s": 14.4})
    assert m["goodput"]["requests_per_s"] == pytest.approx(0.4)   # only the second meets TTFT <= 0.3 s
    assert stats([]) == dict.fromkeys(("mean", "median", "p90", "p95", "p99"), 0.0)


def test_steady_state_energy_is_ml_energys_window():
    import pandas as pd

    # 2 seats, 6 requests: the window runs from the 2nd first token (t = 1.0) to the 4th (t = 3.0)
    first = np.array([0.5, 1.0, 2.0, 3.0, 4.0, 5.0])
    steps = pd.DataFrame({"start_s": [0.0, 0.8, 1.5, 2.5, 3.5], "duration_s": [0.8, 0.5, 0.5, 1.0, 1.0],
                          "tokens_out": [1, 2, 2, 2, 2], "energy_j": [8.0, 10.0, 10.0, 20.0, 20.0]})
    s = steady_state_energy(steps, first, seats=2, static_w=4.0, replicas=1)
    # inside [1, 3]: step 2 from 1.0 to 1.3 (0.3 of 0.5 s: 6 J), step 3 whole (10 J), step 4 from
    # 2.5 to 3.0 (half: 10 J); the idle 1.3-1.5 and 2.0-2.5 (0.7 s) draw 4 W x 0.7 s = 2.8 J.
    # Tokens: steps ending in (1, 3]: step 2 (1.3 s) and step 3 (2.0 s), 4 tokens. 28.8 J / 4.
    assert (s["start_s"], s["end_s"], s["output_tokens"]) == (1.0, 3.0, 4.0)
    assert s["j_per_output_token"] == pytest.approx(28.8 / 4)
    assert s["avg_power_w"] == pytest.approx(28.8 / 2.0)
    # no steady state when the run never holds more requests than twice its seats
    assert steady_state_energy(steps, first, seats=3, static_w=4.0, replicas=1) is None


# -- properties ------------------------------------------------------------------------------------
trace_rows = st.lists(st.tuples(st.floats(0, 5), st.integers(1, 400), st.integers(1, 60)), min_size=1, max_size=25)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trace_rows, st.sampled_from(["vllm", "sarathi", "orca", "static", "disaggregated", "trtllm"]),
       st.sampled_from(["recompute", "swap"]), st.integers(4, 40), st.integers(1, 2),
       st.sampled_from(["round_robin", "least_outstanding"]), st.sampled_from([16, 256]), st.booleans())
def test_random_traces_never_lose_a_request(rows, scheduler, preemption, kv_blocks, replicas, router, budget,
                                            prefix_caching):
    replicas = 2 if scheduler == "disaggregated" else replicas
    try:
        res = serve(MODEL, HW, requests=rows, scheduler=scheduler, preemption=preemption, kv_blocks=kv_blocks,
                    max_num_seqs=8, max_num_batched_tokens=budget, chunk_size=budget, profile="none",
                    replicas=replicas, router=router, prefix_caching=prefix_caching)
    except InputError as err:      # every request too long for this KV cache
        assert "every request was rejected" in str(err)
        return
    m = res.metrics
    assert m["completed"] + m["rejected"] == len(rows)
    df = res.to_frame()
    for col in ("ttft_s", "e2e_s", "tpot_s"):
        assert (df[col] >= 0).all() and np.isfinite(df[col]).all()
    assert (df["ttft_s"] <= df["e2e_s"] + 1e-12).all()
    json.dumps(res.to_dict(), allow_nan=False)


# -- what the papers claim -------------------------------------------------------------------------
def test_littles_law_on_a_steady_window():
    res = serve(MODEL, HW, num_requests=1500, rate=20, input_len="uniform:100,900", output_len="uniform:20,200",
                seed=3, max_num_batched_tokens=2048)
    df = res.to_frame()
    t1, t2 = 20.0, 60.0
    # time-average number in system over [t1, t2]: the overlap of each request's [arrival, finish]
    overlap = (np.minimum(df.finish_s, t2) - np.maximum(df.arrival_s, t1)).clip(lower=0).sum()
    in_system = overlap / (t2 - t1)
    arrived = df[(df.arrival_s >= t1) & (df.arrival_s < t2)]
    lam = len(arrived) / (t2 - t1)
    assert in_system == pytest.approx(lam * arrived.e2e_s.mean(), rel=0.05)


def test_kv_blocks_cap_the_batch_and_preemptions_appear():
    res = serve(MODEL, HW, num_requests=100, rate=math.inf, input_len=1000, output_len=200, kv_blocks=1000,
                max_num_seqs=256, max_num_batched_tokens=8192, profile="none")
    # a request holds ceil(1000 / 16) = 63 blocks after its prompt, growing to ceil(1200 / 16) = 75:
    # at most floor(1000 / 63) = 15 fit, far fewer than max_num_seqs
    assert res.steps["running"].max() <= 15
    assert res.metrics["preemptions"] > 0
    assert res.metrics["completed"] == 100
    # the log counts each prompt once (100 x 1000 tokens); the preempted ones were prefilled again
    assert res.steps["prompt_tokens"].sum() == 100 * 1000
    assert res.steps["prefill_tokens"].sum() > 100 * 1000
    assert res.timeseries()["prompt_throughput"].sum() == 100 * 1000      # 1 s intervals


def test_prefix_caching_saves_recompute():
    kw = dict(num_requests=100, rate=math.inf, input_len=1000, output_len=200, kv_blocks=1000, profile="none")
    cached, plain = serve(MODEL, HW, **kw), serve(MODEL, HW, prefix_caching=False, **kw)
    assert cached.steps["prefill_tokens"].sum() < plain.steps["prefill_tokens"].sum()
    assert cached.metrics["duration_s"] < plain.metrics["duration_s"]


def test_kv_blocks_kept_after_preemption_come_back_as_a_prefix():
    kv = KVCache(10, 16)
    a, b = Request(0, 0.0, 64, 5), Request(1, 0.0, 64, 5)
    kv.grow(a, 64)                       # 4 blocks
    kv.release(a, keep=True)             # kept, queued after the 6 never used
    kv.grow(b, 112)                      # 7 blocks: the 6 unused, then a's last block is evicted
    assert kv.free == 3
    assert kv.reclaim(a, 63) == 3 * 16   # 3 of a's 4 blocks survive: its first 48 tokens
    assert a.blocks == 3 and kv.free == 0


def test_chunked_prefill_lowers_p99_itl_and_raises_ttft():
    kw = dict(num_requests=150, rate=8, input_len="lognormal:1500,0.6", output_len="uniform:50,300", seed=2,
              max_num_batched_tokens=8192, profile="none")
    whole = serve(MODEL, HW, scheduler="orca", **kw).metrics
    chunked = serve(MODEL, HW, scheduler="sarathi", chunk_size=512, **kw).metrics
    assert chunked["itl_s"]["p99"] < 0.5 * whole["itl_s"]["p99"]
    assert chunked["ttft_s"]["mean"] > whole["ttft_s"]["mean"]


def test_disaggregation_removes_prefill_interference_and_moves_the_kv():
    kw = dict(num_requests=120, rate=8, input_len="lognormal:1500,0.6", output_len="uniform:50,300", seed=2,
              replicas=2, max_num_batched_tokens=8192, profile="none")
    colocated = serve(MODEL, "hgx-h100", scheduler="vllm", **kw)
    split = serve(MODEL, "hgx-h100", scheduler="disaggregated", **kw)
    assert split.metrics["itl_s"]["p99"] < 0.5 * colocated.metrics["itl_s"]["p99"]
    # every prompt's KV crosses NVLink once: prompt tokens x 131,072 B per token (32 x 2 x 8 x 128 x 2 B)
    prompts = split.to_frame()["input_tokens"].sum()
    assert split.metrics["transfers"]["bytes"] == pytest.approx(prompts * 131_072)
    # ... over a link of 450 GB/s per direction, queued one after the other
    assert split.metrics["transfers"]["busy_s"] >= prompts * 131_072 / 450e9


def test_offline_throughput_rises_with_max_num_seqs_and_saturates():
    tput = [serve(MODEL, HW, num_requests=256, rate=math.inf, input_len=128, output_len=128, max_num_seqs=n,
                  profile="none").metrics["throughput"]["output_tokens_per_s"] for n in (4, 16, 64, 256)]
    assert tput == sorted(tput)
    assert tput[1] / tput[0] > 2.5          # small batches: decode is weight-bound, 4x batch ~ 4x tokens
    assert tput[3] / tput[2] < tput[1] / tput[0]


def test_profile_yaml_errors_name_the_line(tmp_path):
    from simulator.serving.profile import load_profile

    f = tmp_path / "p.yaml"
    f.write_text("name: mine\nstep_cpu: '1 ms'\nstep_gpu: 2\n")
    with pytest.raises(InputError) as err:
        load_profile(str(f))
    p = err.value.problems[0]
    assert (p.line, p.path) == (3, "step_gpu")


def test_schedulers_are_a_registry():
    assert {"static", "orca", "vllm", "sarathi", "disaggregated"} <= set(SCHEDULERS.names())
    with pytest.raises(InputError, match="did you mean 'sarathi'"):
        serve(MODEL, HW, num_requests=1, scheduler="sarathy")


# -- the CLI ---------------------------------------------------------------------------------------
def test_cli_json_keys(capsys):
    assert main(["serve", "--hw", HW, "--model", MODEL, "--num-requests", "4", "--rate", "2",
                 "--input-len", "64", "--output-len", "4", "--format", "json", "--slo-ttft", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    m = out["metrics"]
    stats = {"mean", "median", "p90", "p95", "p99"}
    for key in ("ttft_s", "tpot_s", "itl_s", "e2e_s"):   # each figure with its 80% interval
        assert set(m[key]) == stats | {f"{s}_interval" for s in stats}
    rates = {"requests_per_s", "output_tokens_per_s", "total_tokens_per_s"}
    assert set(m["throughput"]) == rates | {f"{r}_interval" for r in rates}
    assert {"goodput", "preemptions", "duration_s"} <= set(m)
    assert {"total_j", "j_per_output_token"} <= set(m["energy"])
    assert {"blocks_total", "block_size", "peak_used_fraction"} <= set(m["kv"])
    assert len(out["requests"]) == 4
    assert {"arrival_s", "first_token_s", "finish_s", "input_tokens", "output_tokens", "preemptions"} <= set(
        out["requests"][0])


@pytest.mark.parametrize("args, message", [
    (["--num-requests", "2", "--rate", "0"], "rate must be > 0"),
    (["--num-requests", "2", "--input-len", "0"], "input_len"),
    (["--num-requests", "2", "--scheduler", "vlm"], "did you mean 'vllm'"),
    (["--num-requests", "2", "--input-len", "200000"], "every request was rejected"),
    (["--num-requests", "2", "--requests", "sharegp"], "no such trace file (bundled traces: azure-conv"),
    (["--num-requests", "2", "--requests", "sharegp"], "did you mean 'sharegpt'"),
    (["--num-requests", "2", "--kv-free-fraction", "1.5"], "kv_free_fraction must be in (0, 1]"),
    (["--num-requests", "2", "--scheduler", "trtllm", "--max-num-batched-tokens", "64", "--input-len", "100"],
     "every request was rejected"),
])
def test_cli_bad_input_exits_2(capsys, args, message):
    assert main(["serve", "--hw", HW, "--model", MODEL, *args]) == 2
    assert message in capsys.readouterr().err


def test_cli_rejects_long_requests_and_counts_them(tmp_path, capsys):
    f = tmp_path / "t.jsonl"
    f.write_text('{"input_toks": 10, "output_toks": 2, "arrival_s": 0}\n'
                 '{"input_toks": 140000, "output_toks": 2, "arrival_s": 1}\n')
    assert main(["serve", "--hw", HW, "--model", MODEL, "--requests", str(f), "--format", "json"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["metrics"]["rejected"] == 1 and out["rejected"][0]["id"] == 1
    assert "131072" in captured.err


def test_cli_trace_line_error(tmp_path, capsys):
    f = tmp_path / "t.csv"
    f.write_text("arrived_at,num_prefill_tokens,num_decode_tokens\n0.0,10,2\n0.5,ten,2\n")
    assert main(["serve", "--hw", HW, "--model", MODEL, "--requests", str(f)]) == 2
    assert f"{f}:3: num_prefill_tokens" in capsys.readouterr().err


def test_perfetto_trace(tmp_path):
    res = serve(MODEL, HW, num_requests=3, rate=10, input_len=64, output_len=3)
    trace = json.loads(res.write_trace(tmp_path / "t.json").read_text())["traceEvents"]
    names = {e["name"] for e in trace}
    assert {"queued", "prefill", "decode", "kv_blocks_used", "requests"} <= names
    steps = [e for e in trace if e["ph"] == "X"]
    assert len(steps) == len(res.steps)


@pytest.mark.parametrize("scheduler, kv_blocks, budget, rate, seqs, steps", [
    ("vllm", 400, 8192, 4, 256, 1), ("static", None, 8192, 4, 256, 1), ("orca", 600, 8192, 4, 256, 1),
    ("sarathi", 300, 16, 4, 256, 1),
    # offline, requests waiting: runs played at once while no place (orca: max_num_seqs; static: a
    # batch running) or no blocks (orca without prefix caching) let a waiting one in
    ("orca", None, 8192, math.inf, 8, 1), ("orca", 300, 8192, math.inf, 64, 1), ("static", None, 8192, math.inf, 8, 1),
    # multi-step scheduling: waiting requests join only at the end of a 7-step decode run
    ("orca", None, 8192, 4, 256, 7), ("orca", 300, 8192, math.inf, 16, 7)])
def test_decode_runs_played_at_once_match_one_step_at_a_time(scheduler, kv_blocks, budget, rate, seqs, steps):
    profile = dataclasses.replace(load_profile("vllm-v0.6"), scheduler_steps=steps)
    kw = dict(num_requests=60, rate=rate, input_len="uniform:100,900", output_len="uniform:20,200", seed=5,
              scheduler=scheduler, kv_blocks=kv_blocks, max_num_batched_tokens=budget, chunk_size=budget,
              max_num_seqs=seqs, prefix_caching=math.isfinite(rate), profile=profile)
    fast, slow = serve(MODEL, HW, **kw), serve(MODEL, HW, fast_forward=False, **kw)
    assert len(fast.steps) == len(slow.steps)
    for key in ("ttft_s", "tpot_s", "itl_s", "e2e_s"):
        assert fast.metrics[key] == pytest.approx(slow.metrics[key], rel=1e-9)
    assert fast.metrics["preemptions"] == slow.metrics["preemptions"]
    assert fast.metrics["energy"]["total_j"] == pytest.approx(slow.metrics["energy"]["total_j"], rel=1e-9)


def test_cli_refuses_options_a_trace_would_ignore(capsys):
    assert main(["serve", "--hw", HW, "--model", MODEL, "--requests", "azure-code", "--rate", "3"]) == 2
    assert "--rate apply to drawn requests" in capsys.readouterr().err
    assert main(["serve", "--hw", HW, "--model", MODEL, "--num-requests", "3", "--rate", "3",
                 "--concurrency", "2"]) == 2


# -- TensorRT-LLM's batch manager ------------------------------------------------------------------
def test_trtllm_scheduler_holds_whole_requests_and_never_preempts():
    # prompt 64 + output 64 = 128 tokens = 8 blocks of 16, taken at admission: 24 blocks hold 3
    res = serve(MODEL, HW, num_requests=10, rate=math.inf, input_len=64, output_len=64, kv_blocks=24,
                scheduler="trtllm", max_num_seqs=8, max_num_batched_tokens=1024, profile="none",
                prefix_caching=False)
    assert res.steps["running"].max() == 3
    assert res.metrics["preemptions"] == 0 and res.metrics["completed"] == 10
    # a step's tokens: every running request's next one, then whole prompts within the budget
    res = serve(MODEL, HW, num_requests=6, rate=math.inf, input_len=64, output_len=8, scheduler="trtllm",
                max_num_seqs=8, max_num_batched_tokens=100, profile="none")
    steps = res.steps
    assert (steps["prefill_tokens"] + steps["decodes"] <= 100).all()
    assert set(steps["prefill_tokens"]) <= {0, 64}          # one 64-token prompt fits beside <= 36 decodes


def test_trtllm_scheduler_rejects_a_prompt_it_could_never_run():
    res = serve(MODEL, HW, requests=[(0.0, 300, 4), (0.0, 50, 4)], scheduler="trtllm", max_num_batched_tokens=256,
                profile="none")
    assert res.metrics["completed"] == 1 and res.metrics["rejected"] == 1
    assert "300 prompt tokens exceed the step's 256" in res.rejected[0][1]


def test_kv_free_fraction_sizes_the_cache_from_what_is_left():
    kw = dict(num_requests=1, input_len=16, output_len=2, max_num_batched_tokens=2048, profile="none")
    whole = serve(MODEL, HW, gpu_memory_utilization=1.0, **kw).config["kv_budget"]
    half = serve(MODEL, HW, kv_free_fraction=0.5, **kw)
    b = half.config["kv_budget"]
    left = b["memory_bytes"] - b["weights_bytes"] - b["activations_bytes"] - b["reserve_bytes"]
    assert half.metrics["kv"]["blocks_total"] == int(0.5 * left // b["block_bytes"])
    # all of what is left is what gpu_memory_utilization 1.0 leaves
    assert serve(MODEL, HW, kv_free_fraction=1.0, **kw).metrics["kv"]["blocks_total"] == whole["blocks"]
    with pytest.raises(InputError, match=r"kv_free_fraction must be in \(0, 1\]"):
        serve(MODEL, HW, kv_free_fraction=1.5, **kw)


def test_cli_trtllm_run(capsys):
    assert main(["serve", "--hw", HW, "--model", MODEL, "--num-requests", "8", "--scheduler", "trtllm",
                 "--runtime", "trtllm", "--kv-free-fraction", "0.9", "--block-size", "32", "--format", "json",
                 "--no-requests"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["metrics"]["completed"] == 8 and out["config"]["scheduler"] == "trtllm"


def test_trtllm_bench_settings_by_hand():
    from calibration.serving_validation import trtllm_bench_settings

    gib = 2**30
    # 0.9 x (80 - 8) GiB of 64 KiB tokens: 530.8 requests of 2000 tokens -> 640 (a multiple of 128
    # below 1024); budget 530.8 x 2 = 1062 -> 2048 (at least), above 1000 + 640
    assert trtllm_bench_settings(8 * gib, 80 * gib, 65536, 1000, 1000) == (640, 2048)
    # 4147 requests of 256 tokens -> 4096 at most (a multiple of 256); 4096 x 2 = 8192 tokens
    assert trtllm_bench_settings(8 * gib, 80 * gib, 65536, 128, 128) == (4096, 8192)
    # 193.0 requests of 5500 tokens -> 224 (multiple of 32); 193.0 x 11 = 2123 -> 2304, then
    # raised so a whole 5000-token prompt fits beside the batch: 5000 + 224
    assert trtllm_bench_settings(8 * gib, 80 * gib, 65536, 5000, 500) == (224, 5224)
