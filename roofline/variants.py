"""The analytic cost of a graph on N variants of one device at once (numpy arrays of rates).

A design sweep asks "what if HBM were 2, 3, ... 8 TB/s" thousands of times. The variants differ
only in *rates* (a memory level's or link's bandwidth, an engine's peak at one dtype), so the work
of every operator is the same on all of them except where the kernel's choice of tile depends on
the rates (:func:`roofline.costs.gemm_into` picks the fastest candidate). :func:`analyze_variants`
runs the cost functions once per distinct operator on a *view* of the device whose varied rates
are numpy arrays (one element per variant): GEMMs through the vectorized tile search
(``xp=VECTOR``, the candidate picked per variant), every other operator through its ordinary cost
function, whose rates then come out as arrays. Time per operator and variant is
``max(work / rate) + fixed`` as in :class:`~roofline.demands.Demands`, so the totals equal
:func:`roofline.analyze` on ``device.with_overrides(...)`` of each variant (a test says so).

Rate paths (the YAML form of :meth:`hwmodels.Device.with_overrides`): ``memory.<level>.bandwidth``,
``links.<link>.bandwidth``, ``engines.<engine>.peak.<dtype>``. :func:`rate_path` says whether a
path is one; anything else (a capacity, a unit count, a latency) changes the work, so a sweep
costs such variants one device at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwmodels.errors import InputError

from .builder import DemandsBuilder
from .costs import COSTS, conv2d_into, cost_conv2d, cost_matmul, cost_streaming, matmul_into, op_signature
from .demands import LATENCY_BOUND
from .hardware import DeviceInfo, EngineChoice, device_info, register_info
from .mathns import VECTOR

# Operator kinds whose cost depends on the rates through a tile choice: vectorized tile search.
_TILED = {"matmul": (cost_matmul, matmul_into), "conv2d": (cost_conv2d, conv2d_into)}


def rate_path(device, path: str) -> bool:
    """Whether dotted ``path`` names a rate of ``device`` that :func:`analyze_variants` can vary."""
    parts = path.split(".")
    if len(parts) == 3 and parts[2] == "bandwidth":
        return (parts[0] == "memory" and parts[1] in device.memory) or (
            parts[0] == "links" and parts[1] in device.links)
    if len(parts) == 4 and parts[0] == "engines" and parts[2] == "peak":
        engine = device.engines.get(parts[1])
        spec = device.raw.get("engines", {}).get(parts[1], {})
        # a derived peak (systolic array, DSP fabric) is not a free rate; two engines of one kind
        # could swap which one runs a dtype as their peaks vary
        return (engine is not None and parts[3] in engine.peak_flops and "systolic" not in spec
                and "dsp" not in spec
                and sum(e.kind == engine.kind for e in device.engines.values()) == 1)
    return False


@dataclass
class VariantAnalysis:
    """Totals of one graph on N device variants (arrays of N values)."""

    device: object
    total_time_s: np.ndarray
    total_energy_j: np.ndarray       # dynamic energy of the operators, as Analysis.total_energy_j
    time_by_bound: dict[str, np.ndarray]

    @property
    def dominant(self) -> np.ndarray:
        """The resource key with the most operator time, per variant (Analysis.bound_summary)."""
        keys = list(self.time_by_bound)
        if not keys:
            return np.full(self.total_time_s.shape, LATENCY_BOUND, dtype=object)
        stacked = np.vstack([self.time_by_bound[k] for k in keys])
        return np.array(keys, dtype=object)[stacked.argmax(axis=0)]


def _view(device, rates: dict[str, np.ndarray]):
    """A copy of ``device`` whose varied rates are arrays (pydantic's model_copy skips validation)."""
    memory, links, engines = dict(device.memory), dict(device.links), dict(device.engines)
    for path, values in rates.items():
        parts = path.split(".")
        if parts[0] == "memory":
            memory[parts[1]] = memory[parts[1]].model_copy(update={"bandwidth_bytes_s": values})
        elif parts[0] == "links":
            links[parts[1]] = links[parts[1]].model_copy(update={"bandwidth_bytes_s": values})
        else:
            eng = engines[parts[1]]
            engines[parts[1]] = eng.model_copy(update={"peak_flops": {**eng.peak_flops, parts[3]: values}})
    return device.model_copy(update={"memory": memory, "links": links, "engines": engines})


class _ViewInfo(DeviceInfo):
    """The base device's choices (engines, placements, scale-up link) over the view's resources."""

    base: DeviceInfo | None = None

    def engine_for(self, flop_class: str, dtype: str) -> EngineChoice:
        choice = self.base.engine_for(flop_class, dtype)
        return EngineChoice(choice.name, choice.dtype, self.device.engines[choice.name], choice.key)


def _view_info(device, view) -> _ViewInfo:
    base = device_info(device)
    info = _ViewInfo(**{f: getattr(base, f) for f in ("main_memory", "on_chip", "matrix_granule",
                                                      "scale_up_link", "memory_key", "link_key")},
                     device=view)
    info.base = base
    info.resource = {**{f"memory:{n}": lv for n, lv in view.memory.items()},
                     **{f"link:{n}": lk for n, lk in view.links.items()}}
    return info


def _check(device, rates: dict) -> tuple[dict[str, np.ndarray], int]:
    arrays = {p: np.atleast_1d(np.asarray(v, dtype=float)) for p, v in rates.items()}
    sizes = {a.size for a in arrays.values()}
    if len(sizes) != 1 or any(a.ndim != 1 for a in arrays.values()):
        raise InputError("every varied rate needs one value per variant (1-D arrays of one length)")
    for path, values in arrays.items():
        if not rate_path(device, path):
            raise InputError(f"'{path}' is not a rate of device '{device.id}' that can be varied "
                             "(memory.<level>.bandwidth, links.<link>.bandwidth, engines.<engine>.peak.<dtype>)",
                             path=path)
        if not np.all(np.isfinite(values)) or np.any(values <= 0):
            raise InputError("rates must be positive finite numbers", path=path)
    peers = [n for n, lk in device.links.items() if lk.kind != "cxl"]
    if len(peers) > 1 and any(p.startswith("links.") for p in arrays):
        n = sizes.pop()
        stacked = np.vstack([np.broadcast_to(arrays.get(f"links.{p}.bandwidth", device.links[p].bandwidth_bytes_s), n)
                             for p in peers])
        if np.any(stacked.argmax(axis=0) != peers.index(device_info(device).scale_up_link)):
            raise InputError("the varied link bandwidths change which link is the scale-up link; "
                             "cost these variants one device at a time", path="links")
        sizes = {n}
    return arrays, sizes.pop()


def _op_times(op, view, info, n: int):
    """(time_s, bound key, dynamic energy) of ``op`` per variant."""
    kind_cost = COSTS.get(op.kind, cost_streaming)
    tiled = _TILED.get(op.kind)
    if tiled is not None and kind_cost is tiled[0]:
        b = DemandsBuilder(op.name, op.kind, view, xp=VECTOR, info=info)
        tiled[1](b, op, VECTOR)
        work, rates, fixed_s, energy = b.build_arrays()
    else:
        d = kind_cost(op, view)
        work, rates, fixed_s, energy = d.work, d.rates, d.fixed_s, d.energy_j
    keys = [k for k in work if np.any(np.asarray(work[k]) > 0)]
    if not keys:
        return np.full(n, fixed_s), np.full(n, LATENCY_BOUND, dtype=object), np.broadcast_to(energy, n)
    stacked = np.vstack([np.broadcast_to(np.asarray(work[k]) / rates[k], n) for k in keys])
    busy = stacked.max(axis=0)
    names = np.array([*keys, LATENCY_BOUND], dtype=object)
    bound = names[np.where(busy >= fixed_s, stacked.argmax(axis=0), len(keys))]
    return busy + fixed_s, bound, np.broadcast_to(np.asarray(energy, dtype=float), n)


def analyze_variants(graph, device, rates: dict[str, object]) -> VariantAnalysis:
    """:func:`roofline.analyze` of ``graph`` on N variants of ``device`` (a System: its first
    accelerator) that differ in the rates ``rates``: dotted path -> N values in SI units
    (B/s, FLOP/s). Distinct operators are costed once, each over all variants at once."""
    if hasattr(device, "accelerators"):
        device = device.first_accelerator()
    arrays, n = _check(device, rates)
    view = _view(device, arrays)
    info = _view_info(device, view)
    ops = graph.ops if hasattr(graph, "ops") else list(graph)
    counts: dict = {}
    first: dict = {}
    for op in ops:
        sig = op_signature(op)
        counts[sig] = counts.get(sig, 0) + 1
        first.setdefault(sig, op)
    total = np.zeros(n)
    energy = np.zeros(n)
    by_bound: dict[str, np.ndarray] = {}
    with register_info(view, info):
        for sig, op in first.items():
            time_s, bound, op_energy = _op_times(op, view, info, n)
            total += counts[sig] * time_s
            energy += counts[sig] * op_energy
            for key in dict.fromkeys(bound):
                by_bound[key] = by_bound.get(key, np.zeros(n)) + np.where(bound == key, counts[sig] * time_s, 0.0)
    order = sorted(by_bound, key=lambda k: -float(by_bound[k].sum()))
    return VariantAnalysis(device, total, energy, {k: by_bound[k] for k in order})


__all__ = ["VariantAnalysis", "analyze_variants", "rate_path"]
