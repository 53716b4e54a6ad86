"""``serve(...)``: play a stream of requests over replicas of a model on some hardware."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from hwmodels.errors import InputError, unknown_name

from .cluster import Cluster
from .kvcache import KVCache, kv_budget
from .metrics import request_arrays, serving_metrics, steady_state_energy
from .profile import load_profile
from .replica import STEP_COLUMNS, Link, Replica
from .requests import make_requests
from .result import ServeResult
from .router import ROUTERS
from .schedulers import SCHEDULERS, SchedulerConfig
from .steptime import StepTimeModel

PREEMPTION = ("recompute", "swap")
# per-step counts kept as float32 (exact below 2^24): a long run has millions of steps
COUNT_COLUMNS = ("running", "waiting", "kv_blocks_used", "prefill_tokens", "prompt_tokens", "prefills", "decodes",
                 "tokens_out")


def _positive(name: str, value, integer: bool = True, allow_inf: bool = False):
    if value is None:
        return None
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or not (value > 0) or (math.isinf(value) and not allow_inf):
        kind = "a positive integer" if integer else "a positive number"
        raise InputError(f"{name} must be {kind}, got {value!r}", path=name)
    return value


def _link(device, kinds: tuple[str, ...], what: str) -> Link:
    for kind in kinds:
        for name, link in device.links.items():
            if link.kind == kind:
                return Link(name, link.bandwidth_bytes_s, link.latency_s)
    if "host" in kinds:
        for name, level in device.memory.items():
            if level.kind == "host":
                return Link(name, level.bandwidth_bytes_s, level.latency_s)
    raise InputError(f"{device.id} has no {' or '.join(kinds)} link for {what}", path="hw")


def serve(model, hardware, *, requests=None, num_requests: int | None = None,
          rate: float = math.inf, burstiness: float = 1.0, concurrency: int | None = None,
          input_len="512", output_len="128", tp: int = 1, pp: int = 1, replicas: int = 1,
          prefill_replicas: int | None = None, dtype: str = "bf16", weight_dtype: str | None = None,
          kv_dtype: str | None = None, scheduler: str = "vllm", router: str = "round_robin",
          max_num_seqs: int = 256, max_num_batched_tokens: int | None = None, chunk_size: int = 512,
          block_size: int = 16, gpu_memory_utilization: float = 0.9, kv_blocks: int | None = None,
          kv_free_fraction: float | None = None, preemption: str = "recompute", slo_ttft: float | None = None,
          slo_tpot: float | None = None, slo_e2e: float | None = None, seed: int = 0, profile: str = "vllm-v1",
          max_model_len: int | None = None, prefix_caching: bool = True,
          fast_forward: bool = True) -> ServeResult:
    """Simulate serving: requests (a trace, or ``num_requests`` drawn at ``rate``/``concurrency``)
    over ``replicas`` copies of ``model`` (``tp`` x ``pp`` devices each) on ``hardware``.

    See docs/serving.md for the model, the schedulers and the metrics' definitions.
    ``prefix_caching`` (vLLM v1's default): a request preempted by recompute finds what is left of
    its blocks when it resumes. ``fast_forward=False`` plays every decode step one at a time (same
    result, slower; for checking). ``kv_free_fraction`` sizes the KV cache as TensorRT-LLM does
    (that fraction of the memory left after weights, activations and the runtime reserve;
    ``gpu_memory_utilization`` is then unused).
    """
    from workloads.configs import ModelConfig, load_config

    cfg = model if isinstance(model, ModelConfig) else load_config(model)
    sched_cls = SCHEDULERS.get(scheduler, path="scheduler")
    route = ROUTERS.get(router, path="router")
    _check(preemption=preemption, replicas=replicas, block_size=block_size, max_num_seqs=max_num_seqs,
           kv_blocks=kv_blocks, concurrency=concurrency, rate=rate, slo_ttft=slo_ttft, slo_tpot=slo_tpot,
           slo_e2e=slo_e2e)
    eng = load_profile(profile)
    sconf = SchedulerConfig(max_num_seqs=max_num_seqs, max_num_batched_tokens=max_num_batched_tokens or 8192,
                            chunk_size=chunk_size, decode_run_steps=eng.scheduler_steps)
    split = getattr(sched_cls, "disaggregated", False)
    prefill_replicas = _pools(split, replicas, prefill_replicas)
    reqs = make_requests(trace=requests, num_requests=num_requests, rate=rate, burstiness=burstiness,
                         input_len=input_len, output_len=output_len, seed=seed,
                         closed_loop=concurrency is not None)
    step_model = StepTimeModel(cfg, hardware, runtime=eng, tp=tp, pp=pp, dtype=dtype,
                               weight_dtype=weight_dtype, kv_dtype=kv_dtype, kv_block=block_size)
    system = step_model.system
    if tp * pp < len(system.accelerators) < replicas * tp * pp:
        raise InputError(f"{replicas} replicas of {tp * pp} devices need {replicas * tp * pp} accelerators; "
                         f"{system.id} has {len(system.accelerators)}", path="replicas")
    budget = kv_budget(cfg, step_model.knobs, step_model.device, block_size=block_size,
                       gpu_memory_utilization=gpu_memory_utilization,
                       max_num_batched_tokens=_largest_step(sched_cls, sconf), reserve_bytes=eng.runtime_reserve_bytes,
                       free_fraction=kv_free_fraction)
    blocks = kv_blocks or budget.blocks
    cluster = Cluster(reqs, step_model=step_model, profile=eng, router=route, preemption=preemption,
                      block_bytes=budget.block_bytes, kv_bytes_per_token=budget.block_bytes / block_size,
                      max_model_len=max_model_len or cfg.max_positions, concurrency=concurrency,
                      prefix_caching=prefix_caching)
    _add_replicas(cluster, sched_cls, sconf, replicas, prefill_replicas if split else 0,
                  KVCache(blocks, block_size), preemption)
    cluster.fast_forward = fast_forward
    cluster.run()
    config = dict(model=cfg.id, hardware=hardware if isinstance(hardware, str) else system.id, tp=tp, pp=pp,
                  replicas=replicas, scheduler=scheduler, router=router, max_num_seqs=max_num_seqs,
                  max_num_batched_tokens=sconf.max_num_batched_tokens, block_size=block_size,
                  preemption=preemption, prefix_caching=prefix_caching, profile=eng.name,
                  scheduler_steps=eng.scheduler_steps, seed=seed, kv_budget=budget.to_dict())
    return _result(cluster, reqs, budget, blocks, step_model, config,
                   {"ttft_s": slo_ttft, "tpot_s": slo_tpot, "e2e_s": slo_e2e})


def _largest_step(sched_cls, sconf: SchedulerConfig) -> int:
    """Tokens of the largest step the scheduler runs (its ``step_tokens``, else the token budget)."""
    step_tokens = getattr(sched_cls, "step_tokens", None)
    return step_tokens(sconf) if step_tokens else sconf.max_num_batched_tokens


def _check(*, preemption, replicas, block_size, max_num_seqs, kv_blocks, concurrency, rate, **slos) -> None:
    """The run's numbers and names (InputError naming the argument)."""
    if preemption not in PREEMPTION:
        raise unknown_name("preemption mode", preemption, PREEMPTION, path="preemption")
    for name, value in (("replicas", replicas), ("block_size", block_size), ("max_num_seqs", max_num_seqs),
                        ("kv_blocks", kv_blocks), ("concurrency", concurrency)):
        _positive(name, value)
    _positive("rate", rate, integer=False, allow_inf=True)
    for name, value in slos.items():
        _positive(name, value, integer=False)


def _pools(split: bool, replicas: int, prefill_replicas: int | None) -> int | None:
    """Replicas in the prefill pool of a disaggregated deployment (default half)."""
    if not split:
        return None
    if replicas < 2:
        raise InputError("disaggregated serving needs at least 2 replicas (a prefill and a decode pool)",
                         path="replicas")
    prefill_replicas = prefill_replicas or max(1, replicas // 2)
    if not 1 <= prefill_replicas < replicas:
        raise InputError(f"prefill_replicas must be in 1..{replicas - 1}", path="prefill_replicas")
    return prefill_replicas


def _add_replicas(cluster, sched_cls, sconf, replicas: int, prefill: int, kv: KVCache, preemption: str) -> None:
    """``replicas`` replicas (the first ``prefill`` of them a prefill pool), each with its own
    scheduler and blocks; the links swaps and KV hand-offs take."""
    device = cluster.step_model.device
    for i in range(replicas):
        role = "both" if not prefill else "prefill" if i < prefill else "decode"
        host = _link(device, ("pcie", "cxl", "host"), "swapping KV blocks") if preemption == "swap" else None
        cluster.replicas.append(Replica(i, cluster, sched_cls(sconf), KVCache(kv.blocks_total, kv.block_size),
                                        role=role, host_link=host))
    if prefill:
        cluster.decode_pool = [r for r in cluster.replicas if r.role == "decode"]
        cluster.kv_link = _link(device, ("nvlink", "infinity_fabric", "ici", "pcie", "ethernet", "cxl"),
                                "moving the KV cache between replicas")


def _result(cluster, reqs, budget, blocks, step_model, config, slo) -> ServeResult:
    lost = [r for r in reqs if r.finish_s is None and r.rejected is None]
    if lost:      # an invariant of the simulation, not an input problem
        raise RuntimeError(f"{len(lost)} requests neither finished nor were rejected (first: {lost[0]})")
    if all(r.rejected for r in reqs):
        raise InputError(f"every request was rejected ({len(reqs)}); the first: {reqs[0].rejected}",
                         path="requests")
    arrays = request_arrays(reqs)
    metrics = serving_metrics(arrays, np.frombuffer(cluster.itl, dtype=float) if len(cluster.itl) else [],
                              slo=slo)
    frames = []
    for r in cluster.replicas:
        cols = {c: np.array(r.steps[c], dtype=np.float32 if c in COUNT_COLUMNS else float) for c in STEP_COLUMNS}
        r.steps = None          # the arrays above are the copies kept
        cols["replica"] = np.full(len(cols["start_s"]), r.index, dtype=np.int32)
        frames.append(pd.DataFrame(cols, copy=False))
    steps = frames[0] if len(frames) == 1 else (
        pd.concat(frames, ignore_index=True).sort_values("start_s", kind="stable").reset_index(drop=True))
    duration = metrics["duration_s"]
    busy = sum(r.busy_s for r in cluster.replicas)
    idle_j = step_model.static_w * max(0.0, duration * len(cluster.replicas) - busy)
    total_j = sum(r.energy_j for r in cluster.replicas) + idle_j
    out_tokens = int(arrays["output_tokens"].sum())
    peak = max(r.kv.peak_used for r in cluster.replicas)
    energy = {"total_j": total_j, "j_per_output_token": total_j / out_tokens if out_tokens else 0.0}
    seats = config["max_num_seqs"] * sum(1 for r in cluster.replicas if r.role != "prefill")
    steady = steady_state_energy(steps, arrays["first_token_s"], seats, step_model.static_w, len(cluster.replicas))
    if steady is not None:
        energy["steady_state"] = steady
    metrics.update({
        "energy": energy,
        "kv": {"blocks_total": blocks, "block_size": cluster.replicas[0].kv.block_size,
               "peak_used_fraction": peak / blocks, "blocks_derived": budget.blocks},
        "preemptions": sum(r.preemptions for r in cluster.replicas),
        "completed": int(arrays["id"].size),
        "rejected": sum(1 for r in reqs if r.rejected),
    })
    links = [lk for lk in ([cluster.kv_link] + [r.host_link for r in cluster.replicas]) if lk is not None]
    if links:
        metrics["transfers"] = {"bytes": sum(lk.bytes_moved for lk in links), "busy_s": sum(lk.busy_s for lk in links)}
    metrics["regime"] = run_regime(steps, step_model, cluster.profile, metrics["kv"]["block_size"])
    rejected = [(r.id, r.rejected) for r in reqs if r.rejected]
    return ServeResult(metrics, arrays, steps, rejected, config)


def run_regime(steps: pd.DataFrame, step_model: StepTimeModel, profile, block_size: int) -> str | None:
    """The regime of a run (what its intervals are looked up by): the steps that prefill and the
    decode-only steps each stand for their busy seconds with their duration-weighted mean step
    (prefill tokens, decodes, context of a decode from the KV blocks in use), whose regime comes
    from the cost model (:meth:`StepTimeModel.regime`); the regime holding most seconds wins.
    None when no step ran or such a step cannot be simulated (e.g. it does not fit)."""
    seconds: dict[str, float] = {}
    for part in (steps[steps["prefill_tokens"] > 0], steps[steps["prefill_tokens"] <= 0]):
        busy = float(part["duration_s"].sum()) if len(part) else 0.0
        if busy <= 0:
            continue
        w = part["duration_s"].to_numpy(dtype=float) / busy
        decodes = int(round(float(w @ part["decodes"].to_numpy(dtype=float))))
        tokens = int(round(float(w @ part["prefill_tokens"].to_numpy(dtype=float))))
        cached = part["kv_blocks_used"].to_numpy(dtype=float) * block_size / np.maximum(part["running"].to_numpy(dtype=float), 1.0)
        try:
            regime = step_model.regime(tokens, decodes if tokens or decodes else 1, int(round(float(w @ cached))),
                                       runtime=profile)
        except InputError:
            continue
        seconds[regime] = seconds.get(regime, 0.0) + busy
    return max(seconds, key=seconds.__getitem__) if seconds else None
