"""The serving part of ``ridgeline validate``: real serving runs replayed through ``serve``.

1. The bundled vLLM v0.19 run (RTX 4090, Llama-3.1-8B bf16, 300 ShareGPT requests at about
   10 requests/s, max_num_seqs 256, max_num_batched_tokens 2048, block size 16; data and citation
   in ``simulator/serving/data/README.md``): its requests are replayed at their measured arrival
   times, once with the 2,588 KV blocks vLLM resolved and once with the blocks Ridgeline derives;
   TTFT, TPOT and E2E (mean, median, p99) predicted vs measured, computed from the per-request
   timestamps as the run's README defines them; and the means of the run's per-second log
   (running, waiting, KV cache use, token throughputs) against the replay's.
2. The offline throughput rows (TensorRT-LLM's ``trtllm-bench throughput`` on one H100 SXM,
   Llama-3.1-8B FP8, fixed lengths, all requests at once): output tokens/s predicted vs measured.
   The engine's batch limits are not stated there; trtllm-bench derives them from the lengths and
   the memory (:func:`trtllm_bench_settings`, from its source), and the replay runs them under
   the ``trtllm`` scheduler and runtime profile with the KV cache sized as TensorRT-LLM sizes it
   (:data:`TRTLLM_BENCH`). Each row is replayed with at most :data:`OFFLINE_MAX_REQUESTS`
   requests (the steady state of an all-at-once run is reached long before the row's own count).

Only the serving-engine profile (``profiles/vllm-v1.yaml``) was fitted, on run 1; see its ``fitted``.
"""

from __future__ import annotations

import csv
import functools
import io
import json
from importlib import resources

import numpy as np

from .fit import rel_error

RUN = "vllm-rtx4090"
RUN_FILES = "vllm-rtx4090-llama-3.1-8b"
TARGETS = {"tpot_s.mean": 0.10, "e2e_s.mean": 0.15, "ttft_s.mean": 0.20}
# How trtllm-bench (TensorRT-LLM about v1.0, PyTorch backend, its defaults) runs the offline rows.
# kv_free_fraction: --kv_cache_free_gpu_mem_fraction's default 0.90 (tensorrt_llm/bench/benchmark/
# throughput.py @000a01de); block_size: KvCacheConfig.tokens_per_block's default 32
# (tensorrt_llm/llmapi/llm_args.py @fcd3f316); kv_dtype: the checkpoint's (trtllm-bench passes
# kv_cache_dtype "auto"; validate_and_set_kv_cache_quant then uses the checkpoint's KV
# quantization), FP8 for nvidia/Llama-3.1-8B-Instruct-FP8: TensorRT-LLM issue 4329 (May 2025, by
# an NVIDIA developer) names it as a model with a quantized KV cache algorithm, and ModelOpt's
# FP8 export writes kv_cache_quant_algo FP8 by default (the checkpoint's hf_quant_config.json
# itself was not read). Scheduler: GUARANTEED_NO_EVICT, no context chunking (throughput.py).
TRTLLM_BENCH = {"dtype": "fp8", "weight_dtype": "fp8", "kv_dtype": "fp8", "kv_free_fraction": 0.90,
                "block_size": 32, "scheduler": "trtllm", "profile": "trtllm", "prefix_caching": False}
OFFLINE_MAX_REQUESTS = 1000
SOURCE_RUN = "casys-kaist/LLMServingSim bench/examples/RTX4090/Llama-3.1-8B/vllm at 5daddb2 (vLLM 0.19.0)"


def _data(name: str) -> str:
    return resources.files("simulator.serving.data").joinpath(name).read_text(encoding="utf-8")


def measured_run() -> dict[str, dict[str, float]]:
    """TTFT, TPOT, E2E (mean, median, p99; s) of the bundled vLLM run from its timestamps."""
    rows = [json.loads(line) for line in _data(f"{RUN_FILES}.jsonl").splitlines() if line.strip()]
    q = np.array([r["queued_ts"] for r in rows])
    first = np.array([r["first_token_ts"] for r in rows])
    last = np.array([r["last_token_ts"] for r in rows])
    out = np.array([r["output_toks"] for r in rows])
    multi = out > 1
    values = {"ttft_s": first - q, "tpot_s": (last - first)[multi] / (out[multi] - 1), "e2e_s": last - q}
    return {k: {"mean": float(v.mean()), "median": float(np.median(v)), "p99": float(np.percentile(v, 99))}
            for k, v in values.items()}


def run_config() -> dict:
    """The engine arguments of the bundled run that ``serve`` takes."""
    meta = json.loads(_data(f"{RUN_FILES}-meta.json"))
    sched = meta["resolved_config"]["scheduler_config"]
    cache = meta["kv_cache"]
    return {"max_num_seqs": sched["max_num_seqs"], "max_num_batched_tokens": sched["max_num_batched_tokens"],
            "block_size": cache["block_size"], "gpu_memory_utilization": cache["gpu_memory_utilization"],
            "resolved_blocks": cache["num_gpu_blocks"]}


def replay_rows() -> list[dict]:
    """Rows of part 1 (see the module docstring)."""
    from simulator.serving import serve

    conf = run_config()
    measured = measured_run()
    rows = []
    for label, blocks in (("vLLM's blocks", conf["resolved_blocks"]), ("derived blocks", None)):
        res = serve("llama-3.1-8b", "rtx-4090", requests=RUN, max_num_seqs=conf["max_num_seqs"],
                    max_num_batched_tokens=conf["max_num_batched_tokens"], block_size=conf["block_size"],
                    gpu_memory_utilization=conf["gpu_memory_utilization"], kv_blocks=blocks, profile="vllm-v1")
        m = res.metrics
        if blocks is not None:
            rows += timeseries_rows(res, label)
        for metric in ("ttft_s", "tpot_s", "e2e_s"):
            for stat in ("mean", "median", "p99"):
                predicted, truth = m[metric][stat], measured[metric][stat]
                rows.append({"section": "serving", "name": f"{metric.removesuffix('_s')} {stat} ({label}: "
                                                          f"{m['kv']['blocks_total']})",
                             "family": f"{metric}.{stat}", "measured": truth, "predicted": predicted,
                             "unit": "s", "error": rel_error(predicted, truth), "source": SOURCE_RUN,
                             "preemptions": m["preemptions"]})
    return rows


def timeseries_rows(res, label: str) -> list[dict]:
    """The run's per-second log (vLLM's own: running, waiting, KV cache %, generation and prompt
    tokens/s) averaged over the run, measured vs the replay's :meth:`ServeResult.timeseries`.
    vLLM counts the re-prefill of a preempted request as prompt tokens, at prefix-cache speed
    (its blocks are often still cached); the replay recomputes them."""
    import pandas as pd

    measured = pd.read_csv(io.StringIO(_data(f"{RUN_FILES}-timeseries.csv")))
    predicted = res.timeseries()
    rows = []
    for col, unit in (("running", "requests"), ("waiting", "requests"), ("kv_cache_pct", "%"),
                      ("gen_throughput", "tok/s"), ("prompt_throughput", "tok/s")):
        truth, value = float(measured[col].mean()), float(predicted[col].mean())
        rows.append({"section": "serving", "name": f"per-second {col}, mean ({label})", "family": f"timeseries.{col}",
                     "measured": truth, "predicted": value, "unit": unit, "error": rel_error(value, truth),
                     "source": SOURCE_RUN})
    return rows


def _round_up(value: float, step: int) -> int:
    return step * int(np.ceil(value / step))


def trtllm_bench_settings(weights_bytes: float, memory_bytes: float, kv_bytes_per_token: float, isl: int,
                          osl: int, kv_fraction: float = 0.90) -> tuple[int, int]:
    """(max_batch_size, max_num_tokens) that ``trtllm-bench throughput`` picks when the user sets
    neither, for one device (TensorRT-LLM tensorrt_llm/bench/build/tuning.py @04cba882:
    calc_engine_setting sizes the KV cache as ``kv_fraction`` of the device memory less the
    weights and counts the requests of ISL + OSL tokens it holds; finetune_setting rounds that
    count, at most 4096, up to a multiple of 32 (at least 64) below 256, of 128 below 1024, else
    of 256, and the token budget, count x (1 + ISL/OSL) at most 32768, up to a multiple of 256 (at
    least 2048) below 4096, of 512 below 8192, else of 1024; bench/benchmark/utils/general.py
    @01712656 get_settings then raises the budget to ISL + max_batch_size so that a whole prompt
    fits beside a full batch, context chunking being off)."""
    requests = kv_fraction * (memory_bytes - weights_bytes) / (kv_bytes_per_token * (isl + osl))
    batch = min(requests, 4096.0)
    tokens = min(batch * (1.0 + isl / osl), 32768.0)
    if batch < 256:
        batch = max(64, _round_up(batch, 32))
    else:
        batch = _round_up(batch, 128 if batch < 1024 else 256)
    if tokens < 4096:
        tokens = max(2048, _round_up(tokens, 256))
    else:
        tokens = _round_up(tokens, 512 if tokens < 8192 else 1024)
    return batch, max(tokens, isl + batch)


def offline_settings(row: dict) -> dict:
    """The serve arguments that replay offline row ``row`` as trtllm-bench ran it (:data:`TRTLLM_BENCH`,
    :func:`trtllm_bench_settings`), the weights and memory as the serving simulator counts them."""
    from hwmodels.dtypes import DTYPE_BYTES
    from simulator.serving.kvcache import kv_budget
    from simulator.serving.steptime import StepTimeModel
    from workloads.configs import load_config

    cfg = load_config("llama-3.1-8b")
    knobs = {k: TRTLLM_BENCH[k] for k in ("dtype", "weight_dtype", "kv_dtype")}
    step_model = StepTimeModel(cfg, row["hardware"], runtime=TRTLLM_BENCH["profile"], tp=int(row["tp"]),
                               kv_block=TRTLLM_BENCH["block_size"], **knobs)
    budget = kv_budget(cfg, step_model.knobs, step_model.device, block_size=TRTLLM_BENCH["block_size"],
                       gpu_memory_utilization=1.0, max_num_batched_tokens=1, reserve_bytes=0.0)
    isl, osl = int(row["input_len"]), int(row["output_len"])
    batch, tokens = trtllm_bench_settings(budget.weights_bytes, budget.memory_bytes,
                                          cfg.kv_bytes_per_token(DTYPE_BYTES[TRTLLM_BENCH["kv_dtype"]]), isl, osl,
                                          TRTLLM_BENCH["kv_free_fraction"])
    return {**TRTLLM_BENCH, "max_num_seqs": batch, "max_num_batched_tokens": tokens}


def offline_rows(max_requests: int = OFFLINE_MAX_REQUESTS) -> list[dict]:
    """Rows of part 2 (see the module docstring)."""
    from simulator.serving import serve

    rows = []
    source = ""
    for row in csv.DictReader(io.StringIO(_data("offline_throughput.csv"))):
        source = source if row["source"].strip() == "same" else row["source"]
        n = min(int(row["num_requests"]), max_requests)
        res = serve("llama-3.1-8b", row["hardware"], num_requests=n, rate=float("inf"),
                    input_len=int(row["input_len"]), output_len=int(row["output_len"]), tp=int(row["tp"]),
                    **offline_settings(row))
        predicted = res.metrics["throughput"]["output_tokens_per_s"]
        truth = float(row["value"])
        rows.append({"section": "serving", "name": f"offline {row['id']} ({n} requests)",
                     "family": "offline output_tokens_per_s", "measured": truth, "predicted": predicted,
                     "unit": "tok/s", "error": rel_error(predicted, truth), "source": source})
    return rows


def validate_serving(quick: bool = False) -> list[dict]:
    """Both parts (``quick``: offline rows with at most 200 requests each); a run is deterministic,
    so one process computes it once."""
    return [dict(row) for row in _validate_serving(quick)]


@functools.lru_cache(maxsize=2)
def _validate_serving(quick: bool) -> tuple[dict, ...]:
    return tuple(replay_rows() + offline_rows(200 if quick else OFFLINE_MAX_REQUESTS))


def serving_targets(rows: list[dict]) -> dict:
    """The issue's aims on the replay with vLLM's block count: TPOT, E2E, TTFT means."""
    out = {}
    for row in rows:
        key = row["family"]
        if key in TARGETS and "vLLM's blocks" in row["name"] and row["error"] is not None:
            out[f"serving_{key.replace('.', '_')}"] = {"value": abs(row["error"]), "target": TARGETS[key],
                                                      "met": abs(row["error"]) <= TARGETS[key]}
    return out


# -- fitting the engine profile on run 1 (how profiles/vllm-v1.yaml got its numbers) ---------------
def fitted_reserve_bytes() -> float:
    """The runtime reserve that makes vLLM's own derivation give the blocks it resolved:
    device memory the run reported x gpu_memory_utilization - weights - activation peak - blocks."""
    import hwmodels
    from simulator.serving.kvcache import kv_budget
    from workloads.batch import step_knobs
    from workloads.configs import load_config

    meta = json.loads(_data(f"{RUN_FILES}-meta.json"))
    conf = run_config()
    cfg = load_config("llama-3.1-8b")
    b = kv_budget(cfg, step_knobs(cfg), hwmodels.load_device("rtx-4090"), block_size=conf["block_size"],
                  gpu_memory_utilization=conf["gpu_memory_utilization"],
                  max_num_batched_tokens=conf["max_num_batched_tokens"], reserve_bytes=0.0)
    usable = meta["hardware"]["device_total_memory_bytes"] * conf["gpu_memory_utilization"]
    return usable - b.weights_bytes - b.activations_bytes - conf["resolved_blocks"] * b.block_bytes


def fit_gpu_time_scale(grid=None) -> tuple[float, dict]:
    """The ``gpu_time_scale`` (grid search) that minimizes the worst of |error| / aim over the
    TTFT, TPOT and E2E means of the replay with vLLM's blocks; (scale, errors at it)."""
    import dataclasses

    from simulator.serving import profile as prof
    from simulator.serving import serve

    conf = run_config()
    measured = measured_run()
    base = prof.load_profile("vllm-v1")
    best = (float("inf"), 1.0, {})
    for scale in grid if grid is not None else np.round(np.arange(0.80, 1.2001, 0.01), 2):
        p = dataclasses.replace(base, gpu_time_scale=float(scale))
        m = serve("llama-3.1-8b", "rtx-4090", requests=RUN, max_num_seqs=conf["max_num_seqs"],
                  max_num_batched_tokens=conf["max_num_batched_tokens"], kv_blocks=conf["resolved_blocks"],
                  profile=p).metrics
        errs = {k: m[k]["mean"] / measured[k]["mean"] - 1 for k in ("ttft_s", "tpot_s", "e2e_s")}
        worst = max(abs(errs[k]) / TARGETS[f"{k}.mean"] for k in errs)
        if worst < best[0]:
            best = (worst, float(scale), errs)
    return best[1], best[2]
