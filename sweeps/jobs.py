"""What one point runs: the sweep jobs, in a registry (``analyze``, ``simulate``; more register here).

A :class:`Job` turns a :class:`~sweeps.points.Task` (points sharing hardware and workload) into
one result row per point. Every row has ``key``, ``status`` and the job's output columns; the
status is

* ``ok``: the figures are filled in;
* ``invalid``: the point's combination is not a workload (a parallel degree that does not divide
  the model's heads, a knob that does not apply), with the reason in ``message``;
* ``does-not-fit``: weights, KV cache and activations exceed the device memory;
* ``error``: anything else went wrong, with the message; the sweep goes on.

Figures of a point that is not ``ok`` are left empty: there is no number to report.

Outputs: ``latency_s`` (the step), ``throughput_tok_s`` (tokens the step produces per second),
``energy_j`` and ``energy_j_per_token``, ``bound`` (compute, memory, link or latency) and
``dominant`` (the resource key, e.g. ``memory:hbm``), ``cost_per_mtok`` (dollars per million
tokens at the hardware's ``price_per_hour``) when prices are given.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field

from hwmodels.errors import InputError
from hwmodels.registry import Registry

from .points import Task, device_of, load_hw, with_overrides

MESSAGE_PROBLEMS = 3    # problems quoted in a failed point's message
COMMON_OUTPUTS = {"latency_s": "float", "throughput_tok_s": "float", "energy_j": "float",
                  "energy_j_per_token": "float", "bound": "str", "dominant": "str"}


@dataclass(frozen=True)
class Job:
    """A sweep job: ``run(task) -> rows``; ``knobs``: its own knobs with defaults; ``outputs``:
    column -> "float" | "str"; ``vectorized``: rate variants of one device run as one call."""

    run: Callable[[Task], list[dict]]
    knobs: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)
    vectorized: bool = False


JOBS: Registry[Job] = Registry("sweep job")


def job_columns(job: Job, priced: bool) -> list[str]:
    """The output columns of ``job`` (``cost_per_mtok`` when prices are given)."""
    return [*job.outputs, *(["cost_per_mtok"] if priced else [])]


@functools.lru_cache(maxsize=8)
def _graph(model: str, knobs_json: str, base_dir: str | None):
    from pathlib import Path

    from workloads import load_workload

    if base_dir and (Path(base_dir) / model).is_file():
        model = str(Path(base_dir) / model)
    return load_workload(model, **json.loads(knobs_json))


def graph_of(task: Task):
    """The task's workload graph, built once per process for every task that shares it."""
    return _graph(task.model, json.dumps(task.knobs, sort_keys=True), task.base_dir)


def _price(task: Task, hw, graph) -> float | None:
    """Dollars per hour of the accelerators one replica of the workload uses: the price given for
    the hardware (a device: one accelerator; a system: all of them) x used / priced accelerators."""
    prices = task.prices
    price = prices.get(task.hw, prices.get(getattr(hw, "id", ""), prices.get("*")))
    if price is None:
        return None
    priced = len(hw.accelerators) if hasattr(hw, "accelerators") else 1
    used = int(graph.meta.get("tp") or 1) * int(graph.meta.get("pp") or 1)
    return price * used / priced


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


def _all_failed(task: Task, err: BaseException, status: str | None = None) -> list[dict]:
    return [failed(p, err, status) for p in task.points]


# -- analyze -------------------------------------------------------------------------------------
def _fits(graph, device) -> str | None:
    """Why the graph's per-device footprint exceeds ``device``'s main memory, or None."""
    from hwmodels.units import format_quantity
    from workloads.footprint import stage_footprints

    need = max((fp.total("device") for fp in stage_footprints(graph)), default=0.0)
    have = device.memory[device.main_memory].capacity_bytes
    if need > have:
        return (f"needs {format_quantity(need, 'capacity', 3)} per device; {device.main_memory} holds "
                f"{format_quantity(have, 'capacity', 3)}")
    return None


def run_analyze(task: Task) -> list[dict]:
    """Roofline analysis of the task's graph on each point's hardware; rate variants vectorized."""
    import numpy as np

    from roofline import analyze
    from roofline.variants import analyze_variants

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
    from simulator import simulate

    try:
        graph = graph_of(task)
        base = with_overrides(load_hw(task.hw, task.base_dir), task.overrides)
    except Exception as err:  # noqa: BLE001
        return _all_failed(task, err)
    rows = []
    for point in task.points:
        try:
            hw = with_overrides(base, point["overrides"])
            res = simulate(graph, hw, seed=task.job_knobs["seed"], algorithm=task.job_knobs["algorithm"],
                           spill=False)
        except InputError as err:
            rows.append(failed(point, err, "does-not-fit" if any(p.path == "memory" for p in err.problems)
                               else "invalid"))
            continue
        except Exception as err:  # noqa: BLE001
            rows.append(failed(point, err))
            continue
        b = res.bottleneck
        rows.append({"key": point["key"], "status": "ok",
                     **_figures(res.latency_s, float(res.tokens or 0.0), res.energy_j, _price(task, hw, graph)),
                     "bound": b.get("bound") or "latency", "dominant": b.get("resource") or "latency"})
    return rows


JOBS.register("analyze", Job(run_analyze, outputs=dict(COMMON_OUTPUTS), vectorized=True),
              help="roofline analysis (analytic; hardware rate variants evaluated vectorized)")
JOBS.register("simulate", Job(run_simulate, knobs={"seed": 0, "algorithm": None}, outputs=dict(COMMON_OUTPUTS)),
              help="one step through the discrete-event simulator (contention, collectives, memory)")
