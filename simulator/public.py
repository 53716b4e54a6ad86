"""Predicting the LLM rows of the public measurements (``public_measurements.csv``) by simulation.

:func:`predict_public_row` takes one CSV row (a dict of strings, as ``csv.DictReader`` gives it)
and returns the predicted value in the row's unit, or None when the row is not an LLM row. The
calibration package's ``ridgeline validate`` calls it; nothing here is tuned to a row.

How a metric maps to simulated steps:

* ``time_to_first_token``: one prefill step of ``batch`` prompts of ``input_len`` tokens.
* ``median_inter_token_latency``: one decode step of ``batch`` sequences at the mean context a
  token sees while it is generated (prompt + half the output).
* ``output_throughput`` (static batch, ``input_len`` in / ``output_len`` out): batch x output
  tokens over one prefill (which yields the first token) plus ``output_len - 1`` decode steps at
  the mean context (a decode step's time is affine in the context, so the mean step is exact).
* ``energy_per_output_token``: the decode step's energy (idle + active baseline + dynamic) over its tokens.

Each step runs under the runtime profile its row's ``framework`` names (:func:`runtime_of`:
TensorRT-LLM -> ``trtllm``, SGLang -> ``sglang``, vLLM -> ``vllm-v0.6`` or ``vllm-v1`` by version,
llama.cpp -> ``llama.cpp-b1680`` for a 2023 build (b1xxx) or ``llama.cpp``, anything else -> ``none``). Sizes the sources do not state are fixed a priori in :data:`ASSUMED`,
with where they come from.
"""

from __future__ import annotations

import re

import hwmodels
from hwmodels.errors import InputError
from workloads import build_llm, bundled_ids

from .simulate import simulate

ASSUMED = {
    # LMSYS-Chat-1M (Zheng et al., 2023, Table 1): 69.5 prompt tokens per turn on average; the
    # ML.ENERGY "lm-arena-chat" rows do not state their prompt lengths.
    "chat_prompt_tokens": 70,
    # ML.ENERGY leaderboard, Llama-3.1-8B-Instruct on lm-arena-chat: mean output 388.7 tokens
    # (stated on the batch-8 row; the batch-256 row is the same dataset).
    "chat_output_tokens": 388.7,
}

# The runtime profile (hwmodels/runtimes) each row's ``framework`` column names, first match wins;
# llama.cpp builds of 2023 (b1xxx) run the December 2023 profile, later ones ``llama.cpp``;
# a framework without a profile (bare kernels) runs with ``none``.
FRAMEWORK_RUNTIMES = ((r"TensorRT-LLM|trtllm", "trtllm"), (r"SGLang", "sglang"),
                      (r"vLLM (0\.[89]|0\.1\d|1\.)|vLLM v1", "vllm-v1"), (r"vLLM", "vllm-v0.6"),
                      (r"llama\.cpp.* b1\d{3}\b", "llama.cpp-b1680"), (r"llama\.cpp", "llama.cpp"))


def runtime_of(row: dict) -> str:
    """The runtime profile a public row ran under, from its ``framework`` column."""
    framework = row.get("framework") or ""
    for pattern, name in FRAMEWORK_RUNTIMES:
        if re.search(pattern, framework):
            return name
    return "none"


UNITS = {"ms": 1e-3, "s": 1.0, "tok/s": 1.0, "J/tok": 1.0}
LLM_METRICS = ("time_to_first_token", "median_inter_token_latency", "output_throughput",
               "energy_per_output_token")


def _int(row: dict, key: str) -> int | None:
    value = (row.get(key) or "").strip()
    return int(float(value)) if value else None


def _model(row: dict) -> str:
    first = row["workload"].split()[0].lower()
    if first not in bundled_ids():
        raise InputError(f"unknown model '{first}' in workload '{row['workload']}'", path="workload")
    return first


def _lengths(row: dict) -> tuple[int, float]:
    """(prompt tokens, output tokens) of the row, with the chat defaults where unstated."""
    prompt = _int(row, "input_len")
    output = _int(row, "output_len")
    chat = "chat" in row["workload"]
    if prompt is None:
        if not chat:
            raise InputError(f"row {row.get('id')}: no input_len", path="input_len")
        prompt = ASSUMED["chat_prompt_tokens"]
    if output is None:
        stated = re.search(r"mean output ([\d.]+) tokens", row["workload"])
        output = float(stated.group(1)) if stated else ASSUMED["chat_output_tokens"] if chat else 1
    return prompt, float(output)


def _hardware(row: dict):
    hw = hwmodels.load_hardware(row["hardware"])
    devices = _int(row, "devices") or 1
    if hasattr(hw, "accelerators"):
        return hw
    return hw if devices == 1 else hwmodels.system_from_device(hw, devices)


def simulate_row(row: dict):
    """The simulations behind one LLM row: a dict of step name -> SimResult."""
    metric = row["metric"]
    if metric not in LLM_METRICS:
        raise InputError(f"not an LLM metric: {metric}", path="metric")
    model, hw = _model(row), _hardware(row)
    batch = _int(row, "batch") or 1
    tp = _int(row, "devices") or 1
    dtype = (row.get("dtype") or "bf16").strip()
    knobs = {"dtype": dtype, "tp": tp}
    if dtype in ("fp8", "int8", "int4"):
        # A quantized deployment keeps activations' accumulations and the KV cache in 16 bits
        # unless the source says otherwise (TensorRT-LLM's fp8 recipe quantizes GEMMs only).
        knobs = {"dtype": dtype, "weight_dtype": dtype, "kv_dtype": "bf16", "tp": tp}
    prompt, output = _lengths(row)
    runtime = runtime_of(row)
    steps = {}
    if metric in ("time_to_first_token", "output_throughput"):
        steps["prefill"] = simulate(build_llm(model, "prefill", batch=batch, prompt_len=prompt, **knobs), hw,
                                    runtime=runtime)
    if metric != "time_to_first_token":
        context = max(1, round(prompt + output / 2))
        steps["decode"] = simulate(build_llm(model, "decode", batch=batch, prompt_len=prompt, context=context,
                                             **knobs), hw, runtime=runtime)
    return steps, output


def predict_public_row(row: dict, regimes: list | None = None) -> float | None:
    """The predicted value of an LLM row of the public CSV in the row's unit (None otherwise);
    the regime of the step the metric rests on is appended to ``regimes`` when given."""
    metric = row.get("metric", "")
    if metric not in LLM_METRICS:
        return None
    unit = row.get("unit", "")
    if unit not in UNITS:
        raise InputError(f"unexpected unit '{unit}' for {metric}", path="unit")
    steps, output = simulate_row(row)
    if regimes is not None:
        regimes.append((steps.get("decode") or steps["prefill"]).regime)
    batch = _int(row, "batch") or 1
    if metric == "time_to_first_token":
        value = steps["prefill"].latency_s
    elif metric == "median_inter_token_latency":
        value = steps["decode"].latency_s
    elif metric == "output_throughput":
        total = steps["prefill"].latency_s + (output - 1) * steps["decode"].latency_s
        value = batch * output / total
    else:
        value = steps["decode"].energy_per_token_j
    return value / UNITS[unit]
