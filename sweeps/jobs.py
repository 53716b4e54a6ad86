"""What one point runs: the sweep jobs, in a registry (``analyze``, ``simulate``, ``serve``; more
register here).

A :class:`Job` turns a :class:`~sweeps.task.Task` (points sharing hardware and workload) into
one result row per point. Every row has ``key``, ``status`` and the job's output columns; the
status is

* ``ok``: the figures are filled in;
* ``invalid``: the point's combination is not a workload (a parallel degree that does not divide
  the model's heads, a knob that does not apply), with the reason in ``message``;
* ``does-not-fit``: weights, KV cache and activations exceed the device memory;
* ``error``: anything else went wrong, with the message; the sweep goes on.

Figures of a point that is not ``ok`` are left empty: there is no number to report.

Outputs of ``analyze`` and ``simulate``: ``latency_s`` (the step), ``throughput_tok_s`` (tokens
the step produces per second), ``energy_j`` and ``energy_j_per_token``, ``bound`` (compute,
memory, link or latency) and ``dominant`` (the resource key, e.g. ``memory:hbm``),
``cost_per_mtok`` (dollars per million tokens at the hardware's ``price_per_hour``) when prices
are given. ``serve`` reports the serving metrics instead (:data:`SERVE_OUTPUTS`).

The simulator (about a second to import) is imported by the jobs that run it, when a point runs:
validating a spec, and the workers of an ``analyze`` sweep, never need it.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwmodels.errors import InputError
from hwmodels.registry import Registry
from hwmodels.units import format_quantity
from roofline import analyze
from roofline.collectives import ALGORITHMS
from roofline.variants import analyze_variants
from workloads.footprint import stage_footprints
from workloads.loader import load_workload
from workloads.options import Axis

from .hardware import device_of, load_hw, with_overrides
from .task import Task

MESSAGE_PROBLEMS = 3    # problems quoted in a failed point's message
COMMON_OUTPUTS = {"latency_s": "float", "throughput_tok_s": "float", "energy_j": "float",
                  "energy_j_per_token": "float", "bound": "str", "dominant": "str"}


@dataclass(frozen=True)
class Job:
    """A sweep job: ``run(task) -> rows``; ``knobs``: its own knobs with defaults; ``outputs``:
    column -> "float" | "int" | "str"; ``vectorized``: rate variants of one device run as one call;
    ``workload``: the workload knobs (``StepOptions`` fields) it takes, None for all of them;
    ``check(knobs, base_dir)``: raises InputError (``path`` = the knob) for job knobs that cannot
    run (a spec is checked with it before any point runs)."""

    run: Callable[[Task], list[dict]]
    knobs: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)
    vectorized: bool = False
    workload: tuple[str, ...] | None = None
    check: Callable[[dict, Path | None], None] | None = None


JOBS: Registry[Job] = Registry("sweep job")


def job_columns(job: Job, priced: bool) -> list[str]:
    """The output columns of ``job`` (``cost_per_mtok`` when prices are given)."""
    return [*job.outputs, *(["cost_per_mtok"] if priced else [])]


def local_file(ref: str | None, base_dir: str | None) -> str | None:
    """``ref`` as a path when it names a file beside the spec, else as given (an id)."""
    if ref and base_dir and (Path(base_dir) / ref).is_file():
        return str(Path(base_dir) / ref)
    return ref


@functools.lru_cache(maxsize=8)
def _graph(model: str, knobs_json: str, base_dir: str | None):
    return load_workload(local_file(model, base_dir), **json.loads(knobs_json))


def graph_of(task: Task):
    """The task's workload graph, built once per process for every task that shares it."""
    return _graph(task.model, json.dumps(task.knobs, sort_keys=True), task.base_dir)


def price_of(task: Task, hw, used: int) -> float | None:
    """Dollars per hour of ``used`` accelerators: the price given for the hardware (a device: one
    accelerator; a system: all of them) x used / priced accelerators."""
    prices = task.prices
    price = prices.get(task.hw, prices.get(getattr(hw, "id", ""), prices.get("*")))
    if price is None:
        return None
    priced = len(hw.accelerators) if hasattr(hw, "accelerators") else 1
    return price * used / priced


def _price(task: Task, hw, graph) -> float | None:
    """Dollars per hour of the accelerators one replica of the workload uses."""
    return price_of(task, hw, int(graph.meta.get("tp") or 1) * int(graph.meta.get("pp") or 1))


def _figures(latency_s: float, tokens: float, energy_j: float, price: float | None) -> dict:
    throughput = tokens / latency_s if latency_s > 0 and tokens else 0.0
    out = {"latency_s": latency_s, "throughput_tok_s": throughput, "energy_j": energy_j,
           "energy_j_per_token": energy_j / tokens if tokens else 0.0}
    if price is not None:
        out["cost_per_mtok"] = price / 3600.0 / throughput * 1e6 if throughput > 0 else None
    return out


def failed(point: dict, err: BaseException, status: str | None = None) -> dict:
    """The row of a point that produced no figures."""
    if status is None:
        status = "invalid" if isinstance(err, InputError) else "error"
    if isinstance(err, InputError):
        shown = err.problems[:MESSAGE_PROBLEMS]
        more = len(err.problems) - len(shown)
        message = "; ".join(map(str, shown)) + (f" (and {more} more)" if more else "")
    else:
        message = f"{type(err).__name__}: {err}"
    return {"key": point["key"], "status": status, "message": message.replace("\n", "; ")}


def attempt(point: dict, call: Callable[[], object]) -> tuple[object, dict | None]:
    """``(call(), None)``, or ``(None, the point's failed row)``: an input error is the point's
    (``does-not-fit`` where memory is the problem, else ``invalid``), anything else an ``error``;
    one point's failure never stops the sweep."""
    try:
        return call(), None
    except InputError as err:
        return None, failed(point, err, "does-not-fit" if any(p.path == "memory" for p in err.problems)
                            else "invalid")
    except Exception as err:  # noqa: BLE001
        return None, failed(point, err)


def _all_failed(task: Task, err: BaseException, status: str | None = None) -> list[dict]:
    return [failed(p, err, status) for p in task.points]


# -- analyze -------------------------------------------------------------------------------------
def _fits(graph, device) -> str | None:
    """Why the graph's per-device footprint exceeds ``device``'s main memory, or None."""
    need = max((fp.total("device") for fp in stage_footprints(graph)), default=0.0)
    have = device.memory[device.main_memory].capacity_bytes
    if need > have:
        return (f"needs {format_quantity(need, 'capacity', 3)} per device; {device.main_memory} holds "
                f"{format_quantity(have, 'capacity', 3)}")
    return None


def run_analyze(task: Task) -> list[dict]:
    """Roofline analysis of the task's graph on each point's hardware; rate variants vectorized."""
    try:
        graph = graph_of(task)
    except InputError as err:
        return _all_failed(task, err)
    except Exception as err:  # noqa: BLE001 - one point's error never stops the sweep
        return _all_failed(task, err)
    try:
        hw = with_overrides(load_hw(task.hw, task.base_dir), task.overrides)
        device = device_of(hw)
        too_big = _fits(graph, device)
        if too_big:
            return _all_failed(task, InputError(too_big), "does-not-fit")
        varied = sorted({p for point in task.points for p in point["overrides"]})
        rates = {p: np.array([point["rates"][p] for point in task.points]) for p in varied}
        try:
            va = analyze_variants(graph, device, rates) if varied else None
        except InputError:      # e.g. the variants disagree on the scale-up link: one at a time
            va = None
        if va is not None:
            times, energies, dominant = va.total_time_s, va.total_energy_j, va.dominant
        else:
            each = [analyze(graph, device_of(with_overrides(hw, p["overrides"]))) for p in task.points]
            times = [a.total_time_s for a in each]
            energies = [a.total_energy_j for a in each]
            dominant = [a.bound_summary()["dominant"] for a in each]
    except Exception as err:  # noqa: BLE001
        return _all_failed(task, err)
    tp = int(graph.meta.get("tp") or 1)
    tokens = float(graph.meta.get("tokens") or 0.0)
    price = _price(task, hw, graph)
    rows = []
    for i, point in enumerate(task.points):
        latency = float(times[i])
        # the devices of a tensor-parallel group each run the whole step: active power + dynamic energy
        energy = tp * (float(energies[i]) + device.power.active_w * latency)
        rows.append({"key": point["key"], "status": "ok", **_figures(latency, tokens, energy, price),
                     "bound": str(dominant[i]).split(":", 1)[0], "dominant": str(dominant[i])})
    return rows


# -- simulate ------------------------------------------------------------------------------------
def run_simulate(task: Task) -> list[dict]:
    """One step of the task's graph through the simulator on each point's hardware."""
    from simulator import simulate  # when a point runs (module docstring)

    try:
        graph = graph_of(task)
        base = with_overrides(load_hw(task.hw, task.base_dir), task.overrides)
    except Exception as err:  # noqa: BLE001
        return _all_failed(task, err)
    rows = []
    for point in task.points:
        def run(point=point):
            hw = with_overrides(base, point["overrides"])
            return hw, simulate(graph, hw, seed=task.job_knobs["seed"], algorithm=task.job_knobs["algorithm"],
                                spill=False)

        ran, failure = attempt(point, run)
        if failure:
            rows.append(failure)
            continue
        hw, res = ran
        b = res.bottleneck
        rows.append({"key": point["key"], "status": "ok",
                     **_figures(res.latency_s, float(res.tokens or 0.0), res.energy_j, _price(task, hw, graph)),
                     "bound": b.get("bound") or "latency", "dominant": b.get("resource") or "latency"})
    return rows


JOBS.register("analyze", Job(run_analyze, outputs=dict(COMMON_OUTPUTS), vectorized=True),
              help="roofline analysis (analytic; hardware rate variants evaluated vectorized)")
def check_simulate(knobs: dict, base_dir: Path | None = None) -> None:
    """A seed is an integer >= 0; an algorithm, a registered collective algorithm."""
    seed = knobs["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"seed must be an integer >= 0, got {seed!r}", path="seed")
    if knobs["algorithm"] is not None:
        ALGORITHMS.get(knobs["algorithm"], path="algorithm")


JOBS.register("simulate", Job(run_simulate, knobs={"seed": 0, "algorithm": None}, outputs=dict(COMMON_OUTPUTS),
                              check=check_simulate),
              help="one step through the discrete-event simulator (contention, collectives, memory)")


# -- serve ---------------------------------------------------------------------------------------
# the knobs of simulator.serving.serve a point may set, with serve()'s defaults (a test compares them)
SERVE_KNOBS = {"requests": None, "num_requests": None, "rate": math.inf, "burstiness": 1.0, "concurrency": None,
               "input_len": "512", "output_len": "128", "replicas": 1, "prefill_replicas": None,
               "scheduler": "vllm", "router": "round_robin", "max_num_seqs": 256, "max_num_batched_tokens": None,
               "chunk_size": 512, "block_size": 16, "gpu_memory_utilization": 0.9, "kv_blocks": None,
               "kv_free_fraction": None, "preemption": "recompute", "prefix_caching": True, "slo_ttft": None, "slo_tpot": None,
               "slo_e2e": None, "seed": 0, "profile": "vllm-v1"}
SERVE_WORKLOAD = ("tp", "pp", "dtype", "weight_dtype", "kv_dtype")
SERVE_OUTPUTS = {
    **{f"{m}_{stat}_s": "float" for m in ("ttft", "tpot", "itl", "e2e") for stat in ("mean", "p99")},
    "requests_per_s": "float", "throughput_tok_s": "float", "total_tok_s": "float", "goodput_req_s": "float",
    "duration_s": "float", "energy_j": "float", "j_per_output_token": "float", "kv_peak_fraction": "float",
    "preemptions": "int", "completed": "int", "rejected": "int"}
_DRAWN = ("rate", "burstiness", "input_len", "output_len")     # knobs a trace brings itself
_SERVE_AXES = {  # the numeric knobs' types and ranges (workloads.options.Axis words the messages)
    **{n: Axis(n, int, "", min=1) for n in ("num_requests", "concurrency", "replicas", "prefill_replicas",
                                            "max_num_seqs", "max_num_batched_tokens", "chunk_size",
                                            "block_size", "kv_blocks")},
    **{n: Axis(n, float, "", min=0, min_open=True) for n in ("rate", "burstiness", "slo_ttft", "slo_tpot",
                                                             "slo_e2e")},
    **{n: Axis(n, float, "", min=0, max=1, min_open=True) for n in ("gpu_memory_utilization", "kv_free_fraction")},
    "seed": Axis("seed", int, "", min=0), "prefix_caching": Axis("prefix_caching", bool, ""),
    "preemption": Axis("preemption", str, "", choices=("recompute", "swap")),
}


def check_serve(knobs: dict, base_dir: Path | None = None) -> None:
    """The serving knobs of a point: types and ranges, registered names, a source of requests."""
    from simulator.serving import ROUTERS, SCHEDULERS  # when a serve spec is checked
    from simulator.serving.profile import load_profile
    from simulator.serving.requests import draw_lengths

    for name, axis in _SERVE_AXES.items():
        if knobs[name] is not None:
            axis.check(knobs[name])
    SCHEDULERS.get(knobs["scheduler"], path="scheduler")
    ROUTERS.get(knobs["router"], path="router")
    load_profile(local_file(knobs["profile"], base_dir))
    if knobs["requests"] is None:
        if knobs["num_requests"] is None:
            raise InputError("the serve job needs num_requests (requests drawn at rate) or requests (a trace: "
                             "a bundled id or a file)", path="num_requests")
        for name in ("input_len", "output_len"):
            draw_lengths(knobs[name], 1, np.random.default_rng(0), name)
    else:
        given = [k for k in _DRAWN if knobs[k] != SERVE_KNOBS[k]]
        if given:
            raise InputError(f"{', '.join(given)}: for drawn requests only; the trace {knobs['requests']} has its "
                             "own arrivals and lengths", path=given[0])
    if knobs["concurrency"] is not None and knobs["rate"] != SERVE_KNOBS["rate"]:
        raise InputError("rate (open loop) and concurrency (closed loop) exclude each other", path="concurrency")


def serve_figures(metrics: dict, price: float | None) -> dict:
    """The output columns of a serving run from its ``metrics`` block (:data:`SERVE_OUTPUTS`)."""
    out = {f"{m}_{stat}_s": float(metrics[f"{m}_s"][stat]) for m in ("ttft", "tpot", "itl", "e2e")
           for stat in ("mean", "p99")}
    tput = metrics["throughput"]
    out.update({"requests_per_s": tput["requests_per_s"], "throughput_tok_s": tput["output_tokens_per_s"],
                "total_tok_s": tput["total_tokens_per_s"], "goodput_req_s": metrics["goodput"]["requests_per_s"],
                "duration_s": metrics["duration_s"], "energy_j": metrics["energy"]["total_j"],
                "j_per_output_token": metrics["energy"]["j_per_output_token"],
                "kv_peak_fraction": metrics["kv"]["peak_used_fraction"], "preemptions": int(metrics["preemptions"]),
                "completed": int(metrics["completed"]), "rejected": int(metrics["rejected"])})
    if price is not None:
        tokens_s = out["throughput_tok_s"]
        out["cost_per_mtok"] = price / 3600.0 / tokens_s * 1e6 if tokens_s > 0 else None
    return out


def run_serve(task: Task) -> list[dict]:
    """A serving run (:func:`simulator.serving.serve`) per point: requests over replicas of the
    task's model on each point's hardware, seeded (the same point gives the same figures)."""
    from simulator.serving import serve  # when a point runs (module docstring)

    try:
        base = with_overrides(load_hw(task.hw, task.base_dir), task.overrides)
    except Exception as err:  # noqa: BLE001
        return _all_failed(task, err)
    knobs = dict(task.job_knobs)
    for name in ("requests", "profile"):
        knobs[name] = local_file(knobs[name], task.base_dir)
    model = local_file(task.model, task.base_dir)
    rows = []
    for point in task.points:
        def run(point=point):
            hw = with_overrides(base, point["overrides"])
            return hw, serve(model, hw, **knobs, **task.knobs)

        ran, failure = attempt(point, run)
        if failure:
            rows.append(failure)
            continue
        hw, res = ran
        used = knobs["replicas"] * int(task.knobs.get("tp") or 1) * int(task.knobs.get("pp") or 1)
        rows.append({"key": point["key"], "status": "ok", **serve_figures(res.metrics, price_of(task, hw, used))})
    return rows


JOBS.register("serve", Job(run_serve, knobs=dict(SERVE_KNOBS), outputs=dict(SERVE_OUTPUTS), workload=SERVE_WORKLOAD,
                           check=check_serve),
              help="the serving simulator: requests over time on replicas (TTFT/TPOT/ITL/E2E mean and p99, "
                   "throughput, goodput, energy, preemptions)")
