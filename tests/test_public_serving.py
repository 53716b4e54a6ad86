"""The served public rows: the ShareGPT length mix against its sources' numbers, the row -> serve
configuration mapping by hand, multi-step scheduling's share of the step CPU, and the energy of
a served step."""

import dataclasses
import json
import math

import numpy as np
import pytest

from calibration.public import load_rows
from hwmodels.errors import InputError
from hwmodels.runtime import RuntimeProfile, load_runtime
from reports.cli import main
from simulator.public import predict_public_row, serve_config, served
from simulator.serving import SCHEDULERS, serve
from simulator.serving.mixes import REQUEST_MIXES, load_mix
from simulator.serving.requests import make_requests
from simulator.serving.schedulers import SchedulerConfig
from simulator.serving.steptime import StepCost, StepTimeModel

ROWS = {r["id"]: r for r in load_rows()}
US = 1e-6


# -- the ShareGPT mix ----------------------------------------------------------------------------
def test_sharegpt_mix_states_its_sources_means():
    mix = load_mix("sharegpt")
    # sglang issue 1639: 453,502 input tokens over 2,000 requests = 226.751
    assert mix.prompt_mean == pytest.approx(453502 / 2000, abs=0.01)
    # SGLang's benchmark_vllm_060 README, offline SGLang row: 4,281.51 tok/s / 22.03 req/s = 194.35
    assert mix.output_mean == pytest.approx(4281.51 / 22.03, abs=0.01)
    # the benchmarks' filters: 4 <= prompt <= 1024, output >= 4, prompt + output <= 2048
    assert (mix.min_prompt, mix.min_output, mix.max_prompt, mix.max_total) == (4, 4, 1024, 2048)


def test_sharegpt_draws_have_the_sources_means_and_pass_the_filters():
    prompts, outputs = load_mix("sharegpt").draw(200_000, np.random.default_rng(1))
    assert prompts.size == outputs.size == 200_000
    assert prompts.min() >= 4 and outputs.min() >= 4 and prompts.max() <= 1024
    assert (prompts + outputs).max() <= 2048
    # the medians were solved for these means; 200k draws hold them to well under 1%
    assert prompts.mean() == pytest.approx(453502 / 2000, rel=0.01)
    assert outputs.mean() == pytest.approx(4281.51 / 22.03, rel=0.01)


def test_a_mix_takes_its_lengths_and_the_rate_its_arrivals():
    reqs = make_requests(trace="sharegpt", num_requests=400, rate=4.0, seed=3)
    assert len(reqs) == 400 and reqs[0].arrival_s == 0.0
    # Poisson at 4 req/s: 399 gaps of mean 0.25 s (loose: the mean of 399 exponentials)
    assert reqs[-1].arrival_s / 399 == pytest.approx(0.25, rel=0.2)
    assert all(4 <= r.prompt <= 1024 and r.output >= 4 and r.prompt + r.output <= 2048 for r in reqs)
    with pytest.raises(InputError, match="num_requests"):
        make_requests(trace="sharegpt")
    assert "sharegpt" in REQUEST_MIXES.names()


def test_cli_serves_a_mix_and_refuses_lengths_for_it(capsys):
    args = ["serve", "--hw", "h100-sxm", "--model", "llama-3.1-8b", "--requests", "sharegpt"]
    assert main([*args, "--num-requests", "20", "--rate", "4", "--format", "json", "--no-requests"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["metrics"]["completed"] == 20
    assert main([*args, "--num-requests", "20", "--input-len", "100"]) == 2
    assert "has its own lengths" in capsys.readouterr().err
    assert main(args) == 2
    assert "needs --num-requests" in capsys.readouterr().err


# -- rows -> serving runs ------------------------------------------------------------------------
def test_offline_vllm_row_maps_to_the_readme_run():
    row = ROWS["serve-a100-llama31-8b-vllm-tput"]
    assert served(row)
    c = serve_config(row)
    # 5,000 ShareGPT prompts all at once; vLLM 0.6.0 with --max_model_len 4096 and no chunked
    # prefill: prompts first, max(4096, 2048) tokens a step, 256 sequences, 0.9 of the memory
    assert (c["requests"], c["num_requests"], c["rate"]) == ("sharegpt", 5000, math.inf)
    assert (c["model"], c["hardware"], c["tp"]) == ("llama-3.1-8b", "a100-sxm-80gb", 1)
    assert (c["scheduler"], c["max_num_seqs"], c["max_num_batched_tokens"]) == ("orca", 256, 4096)
    assert c["gpu_memory_utilization"] == 0.9 and c["max_model_len"] == 4096
    # --num-scheduler-steps 10 on the bundled vllm-v0.6 profile
    assert c["profile"].name == "vllm-v0.6" and c["profile"].scheduler_steps == 10
    assert load_runtime("vllm-v0.6").scheduler_steps == 1


def test_online_sglang_row_maps_to_the_readme_run():
    c = serve_config(ROWS["serve-h100x4-llama31-70b-sglang-tpot"])
    # 1,200 prompts at 4 req/s on 4 H100s (TP 4); SGLang: prefill batches up to 16,384 tokens,
    # its request pool (2,048), mem_frac 0.88, no multi-step
    assert (c["num_requests"], c["rate"], c["tp"], c["model"]) == (1200, 4.0, 4, "llama-3.1-70b")
    assert (c["max_num_seqs"], c["max_num_batched_tokens"], c["gpu_memory_utilization"]) == (2048, 16384, 0.88)
    assert c["profile"].name == "sglang" and c["profile"].scheduler_steps == 1
    assert c["prefix_caching"] is False        # --disable-radix-cache


def test_chat_row_is_the_ml_energy_v1_run():
    row = ROWS["itl-h100-llama31-8b-b256"]
    assert served(row) and served(ROWS["energy-h100-llama31-8b-b8"])
    c = serve_config(row)
    # "batch" is the server's maximum batch; ML.ENERGY's sweep sends its 1,024 requests twice at
    # max_num_seqs 256, all at once, to vLLM 0.11 (V1: token-budget scheduler, 8,192 tokens a step)
    assert c["max_num_seqs"] == 256 and c["num_requests"] == 2048 and c["rate"] == math.inf
    assert (c["scheduler"], c["max_num_batched_tokens"]) == ("vllm", 8192)
    assert c["profile"].name == "vllm-v1" and c["profile"].async_scheduling
    # lognormal sigma 1 with mean 354 in (turns with their history) and 388.7 out: median = mean / e^0.5
    kind, args = c["input_len"].split(":")
    median, sigma = map(float, args.split(","))
    assert kind == "lognormal" and sigma == 1.0 and median == pytest.approx(354 / math.exp(0.5), rel=1e-5)
    assert float(c["output_len"].split(":")[1].split(",")[0]) == pytest.approx(388.7 / 1.6487213, rel=1e-5)
    assert serve_config(ROWS["itl-h100-llama31-8b-b8"])["num_requests"] == 1024


def test_a_chat_row_without_its_request_count_is_an_input_error():
    row = {**ROWS["itl-h100-llama31-8b-b8"], "workload": "llama-3.1-8b decode (chat prompts)"}
    with pytest.raises(InputError, match="number of requests"):
        serve_config(row)


def test_a_served_row_is_its_run_metric():
    row = {**ROWS["serve-a100-llama31-8b-sglang-tpot"],
           "workload": "llama-3.1-8b serve (ShareGPT 40 prompts at 4 req/s)"}
    c = serve_config(row)
    res = serve(c.pop("model"), c.pop("hardware"), **c)
    assert predict_public_row(row) == pytest.approx(res.metrics["tpot_s"]["median"] * 1e3)   # ms
    tput = {**row, "metric": "serving_output_throughput", "unit": "tok/s"}
    assert predict_public_row(tput) == pytest.approx(res.metrics["throughput"]["output_tokens_per_s"])


def test_a_served_row_without_a_request_mix_is_an_input_error():
    with pytest.raises(InputError, match="request mix"):
        serve_config({**ROWS["serve-a100-llama31-8b-vllm-tput"], "workload": "llama-3.1-8b serve"})


# -- multi-step scheduling -----------------------------------------------------------------------
def test_multi_step_scheduling_shares_the_step_cpu():
    one = RuntimeProfile("v", step_cpu_s=1.5e-3, per_sequence_cpu_s=25 * US)
    ten = RuntimeProfile("v", step_cpu_s=1.5e-3, per_sequence_cpu_s=25 * US, scheduler_steps=10)
    # one pass for 256 sequences: 1.5 ms + 256 x 25 us = 7.9 ms; over 10 steps 0.79 ms each
    assert one.step_cpu_total_s(256) == pytest.approx(7.9e-3)
    assert ten.step_cpu_total_s(256) == pytest.approx(0.79e-3)
    # serial with 10 ms of GPU work: 10.79 ms a step
    assert ten.step_time(10e-3, 256) == pytest.approx(10.79e-3)


def test_cli_scheduler_steps_reaches_the_profile(capsys):
    args = ["serve", "--hw", "h100-sxm", "--model", "llama-3.1-8b", "--num-requests", "4", "--output-len", "8",
            "--runtime", "vllm-v0.6", "--format", "json", "--no-requests"]
    assert main([*args, "--scheduler-steps", "10"]) == 0
    assert json.loads(capsys.readouterr().out)["config"]["scheduler_steps"] == 10
    assert main([*args, "--scheduler-steps", "0"]) == 2
    assert "--scheduler-steps: expected a whole number of steps >= 1, got 0" in capsys.readouterr().err


def test_multi_step_runs_move_by_hand():
    sched = SCHEDULERS.get("orca")(SchedulerConfig(decode_run_steps=10))
    sched.locked = 3
    sched.advance(3)        # the run's last 3 steps
    assert sched.locked == 0
    sched.locked = 3
    sched.advance(4)        # 3 steps end the run, the 4th starts one of 10: 9 left
    assert sched.locked == 9
    sched.locked = 3
    sched.advance(13)       # 3 + 10: a whole run after this one, nothing left
    assert sched.locked == 0
    sched.locked = 3
    sched.advance(14)       # 3 + 10 + 1: a third run started, 9 left
    assert sched.locked == 9


def test_multi_step_admits_waiting_prompts_only_between_runs():
    profile = dataclasses.replace(load_runtime("vllm-v0.6"), scheduler_steps=4)
    res = serve("llama-3.1-8b", "h100-sxm", num_requests=80, rate=40.0, input_len="uniform:20,200",
                output_len="uniform:20,120", scheduler="orca", profile=profile, seed=2)
    prefills = res.steps["prefills"].to_numpy() > 0
    run = 0
    for is_prefill in prefills:      # decode steps between two prefill steps: whole runs of 4
        if is_prefill:
            assert run % 4 == 0, run
            run = 0
        else:
            run += 1
    assert prefills.sum() > 10 and res.metrics["completed"] == 80


@pytest.mark.parametrize("value, match", [("0", "scheduler_steps: expected a whole number of steps >= 1"),
                                          ("'10'", "scheduler_steps: expected a whole number")])
def test_bad_scheduler_steps_is_an_input_error(tmp_path, value, match):
    path = tmp_path / "rt.yaml"
    path.write_text(f"scheduler_steps: {value}\n")
    with pytest.raises(InputError, match=match):
        load_runtime(str(path))


# -- energy of a served step ---------------------------------------------------------------------
def test_a_step_draws_the_active_baseline_through_its_host_work():
    m = StepTimeModel("llama-3.1-8b", "h100-sxm")
    cost = StepCost(time_s=10e-3, energy_j=0.0, dynamic_j=1.0)
    # 10 ms of kernels in a 12 ms step: 1 J dynamic + active power x 12 ms (not idle for 2 ms)
    assert m.energy_j(cost, 10e-3, 12e-3) == pytest.approx(1.0 + m.active_w * 12e-3)
    assert m.active_w > m.static_w
