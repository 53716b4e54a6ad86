"""Predicting the LLM rows of the public measurements (``public_measurements.csv``) by simulation.

:func:`predict_public_row` takes one CSV row (a dict of strings, as ``csv.DictReader`` gives it)
and returns the predicted value in the row's unit, or None when the row is not an LLM row. The
calibration package's ``ridgeline validate`` calls it; nothing here is tuned to a row.

How a metric maps to simulated steps:

* ``time_to_first_token``: one prefill step of ``batch`` prompts of ``input_len`` tokens, or, where
  the row's ``framework`` states the engine's ``max_num_batched_tokens`` (vLLM V0 without chunked
  prefill takes whole prompts up to it a step), the steps that budget makes (:func:`prefill_passes`).
* ``median_inter_token_latency``: one decode step of ``batch`` sequences at the mean context a
  token sees while it is generated (prompt + half the output).
* ``output_throughput`` (static batch, ``input_len`` in / ``output_len`` out): batch x output
  tokens over one prefill (which yields the first token) plus ``output_len - 1`` decode steps at
  the mean context (a decode step's time is affine in the context, so the mean step is exact).
* ``mean_power`` (W, the same static batch): the accelerators' energy over that prefill and those
  decode steps, over their time; a source that kept sampling power for N seconds after the run
  (``workload`` says ``and N s after``) has that tail in its mean, at the devices' idle power
  (:func:`static_batch_power_w`).
Served rows (:func:`served`) are runs of the serving simulator instead (:func:`serve_config` maps
the row to ``simulator.serving.serve`` arguments, :func:`serve_row` runs it, remembered): a
request mix (``ShareGPT N prompts all at once`` or ``at R req/s``: ``serving_output_throughput``,
``serving_median_tpot``, ``serving_median_itl``: one gap per streamed chunk, as the serving
simulator's ITL counts it) and the ML.ENERGY chat rows, whose "batch" is the server's maximum batch
(``median_inter_token_latency`` and ``energy_per_output_token`` of a run that keeps it full, new
prompts prefilled as earlier requests finish: vLLM v0 runs them as steps of their own).

Each step runs under the runtime profile its row's ``framework`` names (:func:`runtime_of`:
TensorRT-LLM -> ``trtllm``, SGLang -> ``sglang``, vLLM -> ``vllm-v0.6`` or ``vllm-v1`` by version,
llama.cpp -> ``llama.cpp-b1680`` for a 2023 build (b1xxx) or ``llama.cpp``, anything else -> ``none``). Sizes the sources do not state are fixed a priori in :data:`ASSUMED`,
with where they come from.
"""

from __future__ import annotations

import functools
import math
import re

import hwmodels
from hwmodels.errors import InputError
from hwmodels.runtime import load_runtime
from workloads import build_llm, bundled_ids

from .simulate import simulate

ASSUMED = {
    # The ML.ENERGY "lm-arena-chat" rows do not state their prompt lengths. Their benchmark
    # (ml-energy/benchmark, mlenergy/llm/datasets.py, LMArenaHumanPreferenceDataset.sample) makes
    # one request of every turn of a conversation, each the whole history before its answer: turn
    # k (from 0) sends k earlier prompts and answers and its own prompt, k (p + r) + p tokens.
    # Averaged over the requests of conversations of T turns: p + (p + r) E[T(T-1)] / (2 E[T]).
    # With LMSYS-Chat-1M's per-turn means (Zheng et al., 2023, Table 1: 69.5 prompt and 214.5
    # response tokens, 2.0 turns a conversation) and turns geometric with mean 2 (our assumption:
    # E[T(T-1)] = 4), 69.5 + 284 x 4 / 4 = 353.5 tokens; Llama 3.1's chat template (~30 tokens a
    # request) is left out.
    "chat_prompt_tokens": 354,
    # ML.ENERGY leaderboard, Llama-3.1-8B-Instruct on lm-arena-chat: mean output 388.7 tokens
    # (stated on the batch-8 row; the batch-256 row is the same dataset).
    "chat_output_tokens": 388.7,
    # The spread of the chat lengths around those means is not stated: lognormal with sigma 1.0
    # (the same round a-priori spread as the bundled ShareGPT mix).
    "chat_length_sigma": 1.0,
}

# How the engines of the served rows ran, from their sources (never tuned to a row). The vLLM
# rows of the SGLang benchmark ran vLLM 0.6.0 with --max_model_len 4096 (the README's commands):
# chunked prefill stays off (vLLM turns it on by itself only above 32K), so the V0 scheduler runs
# whole prompts first (``orca``) within max(max_model_len, 2048) = 4096 tokens a step and at most
# 256 sequences (max_num_seqs' default), with gpu_memory_utilization 0.9. SGLang 0.3.0 also runs
# prefill batches apart from decode batches, up to 16,384 prompt tokens (max_prefill_tokens'
# default), with as many requests as its request pool holds (2,048 at these KV sizes:
# max(tokens / context_len x 512, 2048)), mem_frac 0.88 (the README sets it at TP 1 and 4),
# radix cache off (--disable-radix-cache). Blocks of 16 tokens for both (SGLang's are 1 token;
# the difference is under one block a request; the step's attention reads its cache in blocks of
# 16 too, at the gather cost of the device's attention kernel family, which describes
# FlashAttention and not SGLang's FlashInfer kernels).
#
# ML.ENERGY's v3.0 chat rows ran vLLM 0.11.1 (ml.energy blog, "LLM Inference Energy: A Longitudinal
# Analysis") with the V1 engine's token-budget scheduler (chunked prefill), async scheduling and
# max_num_batched_tokens 8192 (ml-energy/benchmark configs/vllm/lm-arena-chat/
# meta-llama/Llama-3.1-8B-Instruct/H100/monolithic.config.yaml), 1024 requests once, or twice for
# max_num_seqs 256 (sweeps.yaml of the same folder), gpu_memory_utilization at vLLM's 0.9.
SERVING_ENGINES = {
    "vllm-v1": {"scheduler": "vllm", "max_num_seqs": 256, "max_num_batched_tokens": 8192,
                "gpu_memory_utilization": 0.9},
    "vllm-v0.6": {"scheduler": "orca", "max_num_seqs": 256, "gpu_memory_utilization": 0.9},
    "sglang": {"scheduler": "orca", "max_num_seqs": 2048, "max_num_batched_tokens": 16384,
               "gpu_memory_utilization": 0.88},
}
SERVED_METRICS = ("serving_output_throughput", "serving_median_tpot", "serving_median_itl")
CHAT_SERVED_METRICS = ("median_inter_token_latency", "energy_per_output_token")

# The runtime profile (hwmodels/runtimes) each row's ``framework`` column names, first match wins;
# llama.cpp builds of 2023 (b1xxx) run the December 2023 profile, later ones ``llama.cpp``;
# a framework without a profile (bare kernels) runs with ``none``.
FRAMEWORK_RUNTIMES = ((r"gpt-fast", "gpt-fast"), (r"TensorRT-LLM|trtllm", "trtllm"), (r"SGLang", "sglang"),
                      (r"vLLM (0\.[89]|0\.1\d|1\.)|vLLM v1", "vllm-v1"), (r"vLLM", "vllm-v0.6"),
                      (r"llama\.cpp.* b1\d{3}\b", "llama.cpp-b1680"), (r"llama\.cpp", "llama.cpp"))


def runtime_of(row: dict) -> str:
    """The runtime profile a public row ran under, from its ``framework`` column."""
    framework = row.get("framework") or ""
    for pattern, name in FRAMEWORK_RUNTIMES:
        if re.search(pattern, framework):
            return name
    return "none"


UNITS = {"ms": 1e-3, "s": 1.0, "tok/s": 1.0, "J/tok": 1.0, "W": 1.0}
LLM_METRICS = ("time_to_first_token", "median_inter_token_latency", "output_throughput",
               "energy_per_output_token", "mean_power", *SERVED_METRICS)


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
        stated = stated_figure(row, "workload", r"mean output ([\d.]+) tokens")
        output = float(stated) if stated else ASSUMED["chat_output_tokens"] if chat else 1
    return prompt, float(output)


def stated_figure(row: dict, column: str, pattern: str) -> str | None:
    """The figure (``pattern``'s first group) a row's ``column`` states, e.g. the power limit in
    its ``framework`` text; None when the column does not state one."""
    stated = re.search(pattern, row.get(column) or "")
    return stated.group(1) if stated else None


def _power_limit(row: dict) -> str | None:
    """The board power limit a row's run held its card to, when its ``framework`` column states one
    (``power limit 310 W``, from the source's own nvidia-smi output); None: the card's TDP."""
    stated = stated_figure(row, "framework", r"power limit (\d+(?:\.\d+)?) ?W\b")
    return f"{stated} W" if stated else None


def _hardware(row: dict):
    hw = hwmodels.load_hardware(row["hardware"], power_limit=_power_limit(row))
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
    if metric == "time_to_first_token":
        passes = prefill_passes(batch, prompt, _token_budget(row))
        by_size = {n: simulate(build_llm(model, "prefill", batch=n, prompt_len=prompt, **knobs), hw, runtime=runtime)
                   for n in set(passes)}
        steps["prefill_passes"] = [by_size[n] for n in passes]
        steps["prefill"] = steps["prefill_passes"][0]
    elif metric in ("output_throughput", "mean_power"):
        steps["prefill"] = simulate(build_llm(model, "prefill", batch=batch, prompt_len=prompt, **knobs), hw,
                                    runtime=runtime)
    if metric != "time_to_first_token":
        context = max(1, round(prompt + output / 2))
        steps["decode"] = simulate(build_llm(model, "decode", batch=batch, prompt_len=prompt, context=context,
                                             **knobs), hw, runtime=runtime)
    return steps, output


def _token_budget(row: dict) -> int | None:
    """The engine's most prompt tokens a step when the row's ``framework`` states it
    (``max_num_batched_tokens N``: vLLM V0 without chunked prefill schedules whole prompts up to
    it), else None (the whole batch in one step)."""
    stated = stated_figure(row, "framework", r"max_num_batched_tokens (\d+)")
    return int(stated) if stated else None


def prefill_passes(batch: int, prompt: int, budget: int | None) -> list[int]:
    """The prompts of each prefill step when ``batch`` prompts of ``prompt`` tokens go through an
    engine that takes whole prompts up to ``budget`` tokens a step (at least one prompt a step):
    a time to first token of the whole batch is the sum of these steps."""
    if not budget or batch * prompt <= budget:
        return [batch]
    per_step = max(1, budget // prompt)
    full, rest = divmod(batch, per_step)
    return [per_step] * full + ([rest] if rest else [])


def _sampled_after_s(row: dict) -> float:
    """Seconds a row's power sampling went on after its run ended (``and N s after`` in its
    workload), 0 when it does not say so."""
    stated = stated_figure(row, "workload", r"\band ([\d.]+) s after\b")
    return float(stated) if stated else 0.0


def static_batch_power_w(prefill, decode, output_tokens: float, after_s: float = 0.0) -> float:
    """Mean power (W) of the accelerators over one static batch: a prefill, then
    ``output_tokens - 1`` decode steps (at the mean context), then ``after_s`` seconds idle, at the
    devices' static power (their static energy over a step's time)."""
    steps = output_tokens - 1
    idle_w = decode.static_energy_j / decode.latency_s
    energy = prefill.energy_j + steps * decode.energy_j + idle_w * after_s
    return energy / (prefill.latency_s + steps * decode.latency_s + after_s)


# -- served rows ----------------------------------------------------------------------------------
def served(row: dict) -> bool:
    """Whether a row is predicted by a serving run: a request mix, energy per output token (a
    served run's energy over its tokens), or a chat row's ITL."""
    metric = row.get("metric", "")
    return (metric in SERVED_METRICS or metric == "energy_per_output_token"
            or ("chat" in row.get("workload", "") and metric in CHAT_SERVED_METRICS))


def _lognormal(mean: float, sigma: float) -> str:
    """A ``lognormal:MEDIAN,SIGMA`` length spec with mean ``mean`` (median = mean / e^(sigma^2/2))."""
    return f"lognormal:{mean * math.exp(-sigma * sigma / 2):.6g},{sigma:g}"


def _requests(row: dict) -> dict:
    """The requests of a served row: a mix drawn N times (at R req/s, or all at once), or the
    chat lengths of :data:`ASSUMED`, as many as the workload states ("N requests"), all at once."""
    workload = row["workload"]
    mix = re.search(r"ShareGPT (\d+) prompts (?:all at once|at ([\d.]+) req/s)", workload)
    if mix:
        rate = float(mix.group(2)) if mix.group(2) else math.inf
        return {"requests": "sharegpt", "num_requests": int(mix.group(1)), "rate": rate}
    if "chat" not in workload:
        raise InputError(f"row {row.get('id')}: a served row names a request mix (ShareGPT N prompts ...) "
                         "or chat prompts", path="workload")
    count = re.search(r"(\d+) requests", workload)
    if not count:
        raise InputError(f"row {row.get('id')}: a chat row states its number of requests (N requests)",
                         path="workload")
    prompt, output = _lengths(row)
    sigma = ASSUMED["chat_length_sigma"]
    return {"num_requests": int(count.group(1)), "rate": math.inf, "input_len": _lognormal(prompt, sigma),
            "output_len": _lognormal(output, sigma)}


def serve_config(row: dict) -> dict:
    """The ``simulator.serving.serve`` arguments of a served row (see :data:`SERVING_ENGINES`):
    its model, hardware and TP, its requests, the engine's scheduler and limits, and the runtime
    profile its framework names, with ``--num-scheduler-steps N`` when the framework says so.
    A chat row's "batch" is the server's maximum batch (``max_num_seqs``)."""
    runtime = runtime_of(row)
    if runtime not in SERVING_ENGINES:
        raise InputError(f"row {row.get('id')}: no serving engine settings for runtime '{runtime}'",
                         path="framework")
    profile = load_runtime(runtime)
    steps = stated_figure(row, "framework", r"--num-scheduler-steps (\d+)")
    if steps:
        profile = profile.with_scheduler_steps(int(steps), path="framework")
    config = {"model": _model(row), "hardware": row["hardware"], "tp": _int(row, "devices") or 1,
              "dtype": (row.get("dtype") or "bf16").strip(), "profile": profile, "prefix_caching": False,
              "seed": 0, **SERVING_ENGINES[runtime], **_requests(row)}
    if "ShareGPT" in row["workload"]:
        config["max_model_len"] = 4096          # the README's --max_model_len for vLLM
        if runtime == "vllm-v0.6":
            config["max_num_batched_tokens"] = 4096     # max(max_model_len, 2048)
    if "chat" in row["workload"]:
        config["max_num_seqs"] = _int(row, "batch") or 1
    return config


def _key(config: dict) -> tuple:
    return tuple(sorted((k, v) for k, v in config.items()))


@functools.lru_cache(maxsize=32)
def _serve_cached(key: tuple) -> dict:
    from .serving import serve

    config = dict(key)
    res = serve(config.pop("model"), config.pop("hardware"), **config)
    m = res.metrics
    # ML.ENERGY's energy per token and mean power are its steady state's (metrics.steady_state_energy)
    steady = m["energy"].get("steady_state")
    whole_w = m["energy"]["total_j"] / m["duration_s"] if m["duration_s"] > 0 else 0.0
    return {"output_tokens_per_s": m["throughput"]["output_tokens_per_s"], "median_tpot_s": m["tpot_s"]["median"],
            "median_itl_s": m["itl_s"]["median"],
            "j_per_output_token": steady["j_per_output_token"] if steady else m["energy"]["j_per_output_token"],
            "avg_power_w": steady["avg_power_w"] if steady else whole_w,
            "regime": m.get("regime") or "memory-bound"}


def serve_row(row: dict) -> dict:
    """The serving run of a served row (remembered: the ITL and energy rows of one chat run share
    it): output tok/s, median TPOT and ITL (s), J per output token, average power (W) and the
    run's regime (:func:`simulator.serving.serve.run_regime`)."""
    return dict(_serve_cached(_key(serve_config(row))))


# The figure of a serving run (:func:`serve_row`) each served metric reads.
SERVED_VALUES = {"serving_output_throughput": "output_tokens_per_s", "serving_median_tpot": "median_tpot_s",
                 "serving_median_itl": "median_itl_s", "median_inter_token_latency": "median_itl_s",
                 "energy_per_output_token": "j_per_output_token"}


def predict_served_row(row: dict, regimes: list | None = None) -> float:
    """A served row's predicted value in its unit (:func:`serve_row`)."""
    run = serve_row(row)
    if regimes is not None:
        regimes.append(run["regime"])   # the run's regime, as `serve` looks up its intervals
    return run[SERVED_VALUES[row["metric"]]] / UNITS[row["unit"]]


def predict_public_row(row: dict, regimes: list | None = None) -> float | None:
    """The predicted value of an LLM row of the public CSV in the row's unit (None otherwise);
    the regime of the step the metric rests on is appended to ``regimes`` when given."""
    metric = row.get("metric", "")
    if metric not in LLM_METRICS:
        return None
    unit = row.get("unit", "")
    if unit not in UNITS:
        raise InputError(f"unexpected unit '{unit}' for {metric}", path="unit")
    if served(row):
        return predict_served_row(row, regimes)
    steps, output = simulate_row(row)
    if regimes is not None:
        regimes.append((steps.get("decode") or steps["prefill"]).regime)
    batch = _int(row, "batch") or 1
    if metric == "time_to_first_token":
        value = sum(step.latency_s for step in steps["prefill_passes"])
    elif metric == "median_inter_token_latency":
        value = steps["decode"].latency_s
    elif metric == "mean_power":
        value = static_batch_power_w(steps["prefill"], steps["decode"], output, _sampled_after_s(row))
    else:
        total = steps["prefill"].latency_s + (output - 1) * steps["decode"].latency_s
        value = batch * output / total
    return value / UNITS[unit]
