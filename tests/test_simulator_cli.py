"""`ridgeline simulate` and the public-row predictions."""

import json

import pytest
from clitools import run as run_cli

import hwmodels
import workloads
from hwmodels.errors import InputError
from simulator import simulate
from simulator.public import predict_public_row, prefill_passes


def run(capsys, *argv):
    return run_cli(capsys, "simulate", *argv)


def test_json_is_one_document_matching_the_api(capsys, tmp_path):
    trace = tmp_path / "trace.json"
    code, out, err = run(capsys, "--hw", "h100-sxm", "--tp", "2", "--model", "llama-3.1-8b", "--phase", "decode",
                         "--batch", "8", "--context", "512", "--trace", str(trace), "--format", "json")
    assert code == 0
    doc = json.loads(out)
    g = workloads.build_llm("llama-3.1-8b", "decode", batch=8, context=512, tp=2)
    res = simulate(g, hwmodels.load_device("h100-sxm"))
    assert doc["latency_s"] == pytest.approx(res.latency_s)
    assert doc["throughput_tok_s"] == pytest.approx(8 / res.latency_s)
    assert set(doc["avg_power_w"]) == {"gpu0", "gpu1"}
    assert json.loads(trace.read_text())["traceEvents"]
    # the timeline table: one row per operator and device (two TP ranks run every operator)
    assert len(doc["timeline"]) == len(res.timeline) == 2 * len(g.ops)
    first = doc["timeline"][0]
    assert {"op", "device", "resource", "bound", "start", "end"} <= set(first)
    assert first["op"] == g.ops[0].name and first["start"] == 0.0
    assert max(r["end"] for r in doc["timeline"]) == pytest.approx(doc["latency_s"])
    code, out, _ = run(capsys, "--hw", "h100-sxm", "--model", "llama-3.1-8b", "--phase", "decode", "--batch", "1",
                       "--context", "64", "--format", "json", "--no-timeline")
    assert code == 0 and "timeline" not in json.loads(out)


def test_table_output(capsys, tmp_path):
    code, out, _ = run(capsys, "--hw", "hgx-h100", "--model", "llama-3.1-8b", "--phase", "prefill",
                       "--batch", "1", "--prompt-len", "256", "--tp", "4", "--plot", str(tmp_path / "g.png"))
    assert code == 0
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"
    assert "latency" in out and "bottleneck" in out and "critical path" in out and "if 2x faster" in out
    lines = [" ".join(line.split()) for line in out.splitlines()]
    assert any(line.startswith("prompt tokens 256 processed") for line in lines)   # one prompt of 256 tokens
    assert any(line.startswith("first tokens 1 (one per prompt)") for line in lines)
    assert "time to first token" in out


def test_prefill_reports_prompt_tokens_processed_per_second(capsys):
    code, out, _ = run(capsys, "--hw", "h100-sxm", "--model", "llama-3.1-8b", "--phase", "prefill", "--batch", "2",
                       "--prompt-len", "128", "--format", "json", "--no-timeline")
    assert code == 0
    doc = json.loads(out)
    assert doc["tokens"] == 2                      # one first token per prompt
    assert doc["tokens_processed"] == 2 * 128      # every prompt token runs through the model
    assert doc["processed_tok_s"] == pytest.approx(256 / doc["latency_s"])
    assert doc["throughput_tok_s"] == pytest.approx(2 / doc["latency_s"])


@pytest.mark.parametrize("argv,needle", [
    (["--hw", "h100-sxmm", "--model", "llama-3.1-8b", "--phase", "decode", "--batch", "1"], "h100-sxm"),
    (["--hw", "h100-sxm", "--model", "llama-3.1-8x", "--phase", "decode", "--batch", "1"], "llama-3.1-8b"),
    (["--hw", "hgx-h100", "--model", "llama-3.1-8b", "--phase", "decode", "--batch", "1", "--tp", "8",
      "--pp", "2"], "needs 16 accelerators"),
    (["--hw", "h100-sxm", "--model", "llama-3.1-8b", "--phase", "decode", "--batch", "1", "--jitter", "-1"],
     "jitter"),
    # below even the H100 PCIe's static power (45 W), so below its active baseline; a limit on a system
    (["--hw", "h100-pcie", "--model", "llama-3.1-8b", "--phase", "decode", "--batch", "1", "--power-limit",
      "40W", "--format", "json"], "power_limit: power limit 40W must lie above the active baseline"),
    (["--hw", "hgx-h100", "--model", "llama-3.1-8b", "--phase", "decode", "--batch", "1", "--power-limit",
      "600W"], "applies to one device"),
])
def test_bad_input_exits_2_with_a_message(capsys, argv, needle):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert needle in err and "Traceback" not in err
    assert "<overrides>" not in err     # a flag's value is blamed on the flag, not on a file


def _row(**kw):
    base = {"id": "x", "hardware": "h100-sxm", "devices": "1", "workload": "llama-3.1-8b decode", "dtype": "bf16",
            "batch": "8", "input_len": "", "output_len": "", "metric": "", "value": "1", "unit": "ms",
            "framework": "", "source": ""}
    return {**base, **kw}


def test_ttft_is_the_prefill_step():
    row = _row(metric="time_to_first_token", input_len="128", batch="1", workload="llama-2-7b prefill",
               dtype="fp16", hardware="a100-sxm-80gb")
    g = workloads.build_llm("llama-2-7b", "prefill", batch=1, prompt_len=128, dtype="fp16")
    expected = simulate(g, "a100-sxm-80gb").latency_s * 1e3
    assert predict_public_row(row) == pytest.approx(expected)


def test_prefill_passes_take_whole_prompts_up_to_the_token_budget():
    assert prefill_passes(16, 1024, 4096) == [4, 4, 4, 4]      # 4 x 1024 tokens a step
    assert prefill_passes(16, 1024, 8192) == [8, 8]
    assert prefill_passes(16, 1024, 32768) == [16]             # the batch fits one step
    assert prefill_passes(5, 1024, 2048) == [2, 2, 1]
    assert prefill_passes(2, 4096, 2048) == [1, 1]             # a longer prompt still runs whole
    assert prefill_passes(16, 1024, None) == [16]


def test_a_ttft_row_with_a_token_budget_is_the_sum_of_its_steps():
    row = _row(metric="time_to_first_token", input_len="1024", batch="6", workload="llama-2-7b prefill",
               dtype="fp16", hardware="a100-sxm-80gb", framework="vLLM V0; max_num_batched_tokens 2048")
    # 6 prompts of 1024 tokens, 2048 tokens a step: three steps of 2 prompts, each under the
    # runtime the framework names (vLLM V0: the vllm-v0.6 profile)
    g = workloads.build_llm("llama-2-7b", "prefill", batch=2, prompt_len=1024, dtype="fp16")
    expected = 3 * simulate(g, "a100-sxm-80gb", runtime="vllm-v0.6").latency_s * 1e3
    assert predict_public_row(row) == pytest.approx(expected)


def test_itl_of_a_static_decode_row_is_the_step_at_the_mean_context():
    # 128 prompt tokens, 64 out: a token sees 128 + 64 / 2 = 160 tokens on average
    row = _row(metric="median_inter_token_latency", workload="llama-3.1-8b decode", input_len="128",
               output_len="64")
    g = workloads.build_llm("llama-3.1-8b", "decode", batch=8, prompt_len=128, context=160)
    assert predict_public_row(row) == pytest.approx(simulate(g, "h100-sxm").latency_s * 1e3)


def test_static_batch_throughput():
    row = _row(metric="output_throughput", unit="tok/s", input_len="128", output_len="128", batch="4",
               workload="llama-2-7b serve", dtype="fp16", hardware="a100-sxm-80gb")
    pre = simulate(workloads.build_llm("llama-2-7b", "prefill", batch=4, prompt_len=128, dtype="fp16"),
                   "a100-sxm-80gb").latency_s
    dec = simulate(workloads.build_llm("llama-2-7b", "decode", batch=4, prompt_len=128, context=192,
                                       dtype="fp16"), "a100-sxm-80gb").latency_s
    assert predict_public_row(row) == pytest.approx(4 * 128 / (pre + 127 * dec))


def test_rows_that_are_not_llm_rows_or_are_bad():
    assert predict_public_row(_row(metric="throughput", unit="TFLOP/s")) is None
    with pytest.raises(InputError):
        predict_public_row(_row(metric="time_to_first_token", workload="nosuchmodel prefill", input_len="8"))
    with pytest.raises(InputError):
        predict_public_row(_row(metric="time_to_first_token", workload="llama-2-7b prefill"))  # no input_len


def test_power_limit_holds_the_device_to_it_in_json(capsys):
    code, out, _ = run(capsys, "--hw", "h100-pcie", "--model", "llama-3.1-8b", "--phase", "prefill", "--prompt-len",
                       "512", "--dtype", "fp16", "--power-limit", "250W", "--format", "json", "--no-timeline")
    doc = json.loads(out)
    assert code == 0 and doc["tdp_w"] == {"gpu0": 250.0}
    # the prefill would draw more than 250 W: capped, at most 1% above the limit
    assert doc["power_cap"]["gpu0"]["uncapped_power_w"] > 250.0 >= doc["avg_power_w"]["gpu0"] / 1.01
