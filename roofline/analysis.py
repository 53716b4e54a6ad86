"""The roofline analyzer: every operator of a graph costed on one device, bounds and intensities.

:func:`analyze` costs each operator with :func:`roofline.cost` (identical operators, such as the
same projection in 80 layers, are costed once per device) and returns an :class:`Analysis`:

* ``to_frame()``: one row per operator: time, bound, FLOPs, bytes and arithmetic intensity at
  every memory level and link, peak / attainable / achieved FLOP/s;
* ``bound_summary()``: the share of time bound by each resource, first key ``dominant``;
* ``plot()``: the hierarchical roofline (see :mod:`roofline.plot`).

Definitions, per operator (:class:`~roofline.demands.Demands`). Intensity at level L = FLOPs /
bytes moved at L. The nominal roofline time is ``max over resources of work / peak rate`` (engines
at their peak, memory levels and links at their nominal bandwidth), so ``attainable_flops = FLOPs
/ nominal time`` = min(peak FLOP/s, intensity_L x bandwidth_L over every level L and link): the
textbook hierarchical roofline. ``achieved_flops = FLOPs / time_s`` uses the effective rates and
fixed latencies of the cost model.
The ridge point of a level is ``peak FLOP/s / bandwidth`` (:func:`ridge_points`). Operators run
back to back here (the analyzer's total is the serial sum); overlap and contention are the
simulator's business.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .costs import shared_cost
from .demands import LATENCY_BOUND, Demands
from .hardware import device_info
from .plot import plot_rooflines


def ridge_points(device) -> dict[str, dict[str, float]]:
    """Ridge point (FLOP per byte) of every memory level and link for every engine/dtype peak:
    ``{"tensor:bf16": {"hbm": 153.0, "l2": ..., "link:nvlink": ...}, ...}``."""
    out: dict[str, dict[str, float]] = {}
    for ename, engine in device.engines.items():
        for dtype, peak in engine.peak_flops.items():
            row = {name: peak / lv.bandwidth_bytes_s for name, lv in device.memory.items()}
            row.update({f"link:{name}": peak / lk.bandwidth_bytes_s for name, lk in device.links.items()})
            out[f"{ename}:{dtype}"] = row
    return out


def _row(d: Demands, time_s: float, keys: list[str]) -> dict:
    """The columns of an operator's row that depend only on its demands."""
    flops = d.flops
    row = {"bound": d.bound, "flops": flops, "fixed_s": d.fixed_s, "energy_j": d.energy_j}
    for key in keys:
        nbytes = d.work.get(key, 0.0)
        label = key.replace(":", "_")
        row[f"bytes_{label}"] = nbytes
        row[f"intensity_{label}"] = flops / nbytes if nbytes > 0 else None
    row["peak_flops"] = d.peak_flops
    row["attainable_flops"] = d.attainable_flops
    row["achieved_flops"] = flops / time_s if time_s > 0 else 0.0
    return row


@dataclass
class Analysis:
    """Operators of a graph with their demands on one device (see module docstring)."""

    device: object
    name: str
    ops: list
    _shared: list[Demands]
    _times: list[float]
    _bounds: list[str]
    meta: dict = field(default_factory=dict)
    _demands: list[Demands] | None = None

    @property
    def demands(self) -> list[Demands]:
        """One :class:`Demands` per operator, named after it (copies: free to modify)."""
        if self._demands is None:
            self._demands = [d.copy(op.name) for op, d in zip(self.ops, self._shared)]
        return self._demands

    @property
    def total_time_s(self) -> float:
        """Sum of the operators' analytic times (run back to back)."""
        return sum(self._times)

    @property
    def total_energy_j(self) -> float:
        """Dynamic energy of all operators."""
        return sum(d.energy_j for d in self._shared)

    @property
    def total_flops(self) -> float:
        return sum(d.flops for d in self._shared)

    def time_by_bound(self) -> dict[str, float]:
        """Seconds of operator time per bounding resource, largest first."""
        out: dict[str, float] = {}
        for bound, t in zip(self._bounds, self._times):
            out[bound] = out.get(bound, 0.0) + t
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def bound_summary(self) -> dict:
        """``{"dominant": key, key: share of time, ...}``; shares sum to 1 (largest first)."""
        by_bound = self.time_by_bound()
        total = sum(by_bound.values())
        if total <= 0:
            return {"dominant": LATENCY_BOUND}
        return {"dominant": next(iter(by_bound)), **{k: v / total for k, v in by_bound.items()}}

    def resource_keys(self) -> list[str]:
        """Every memory level and link of the device, as resource keys, nearest first."""
        return ([f"memory:{n}" for n in self.device.memory]
                + [f"link:{n}" for n in self.device.links])

    def rows(self) -> list[dict]:
        """One dict per operator (what :meth:`to_frame` tabulates)."""
        total = self.total_time_s or 1.0
        keys = self.resource_keys()
        per_demands: dict[int, dict] = {}
        rows = []
        for op, d, t in zip(self.ops, self._shared, self._times):
            base = per_demands.get(id(d))
            if base is None:
                base = per_demands[id(d)] = _row(d, t, keys)
            rows.append({"op": op.name, "kind": op.kind, "stage": op.stage, "time_s": t,
                         "bound": base["bound"], "time_share": t / total, **base})
        return rows

    def to_frame(self):
        """A pandas DataFrame, one row per operator (see module docstring for the columns)."""
        import pandas as pd  # on first use: pandas would add ~0.4 s to every CLI start

        return pd.DataFrame(self.rows())

    def to_dict(self, ops: bool = True) -> dict:
        """A JSON-ready summary: device, totals, bound summary and (optionally) the operator rows."""
        out = {"device": self.device.id, "workload": self.name, "meta": self.meta,
               "total_time_s": self.total_time_s, "total_energy_j": self.total_energy_j,
               "total_flops": self.total_flops, "bound_summary": self.bound_summary(),
               "ridge_points": ridge_points(self.device)}
        if ops:
            out["ops"] = self.rows()
        return out

    def __repr__(self) -> str:
        summary = self.bound_summary()
        dominant = summary["dominant"]
        return (f"<Analysis {self.name or 'workload'} on {self.device.id}: {len(self.ops)} operators, "
                f"{self.total_time_s * 1e3:.4g} ms back to back, {dominant}-bound "
                f"{summary.get(dominant, 0.0):.0%} of the time>")

    def _repr_html_(self) -> str:
        from reports.views import summary_html  # Jupyter's summary is drawn by reports/

        return summary_html(self)

    def plot_data(self) -> dict:
        """What the hierarchical roofline draws, as JSON-ready data: the device's ceilings (one per
        engine and distinct peak, naming its dtypes) and slopes (bandwidth of every memory level and
        link), and one point per distinct operator cost (identical operators, e.g. a projection
        in every layer, are one point with their ``count`` and summed time ``share``)."""
        ceilings: dict[tuple[str, float], list[str]] = {}
        for en, e in self.device.engines.items():
            for dt, p in e.peak_flops.items():
                ceilings.setdefault((en, p), []).append(dt)
        resource = device_info(self.device).resource
        total = self.total_time_s or 1.0
        groups: dict[int, dict] = {}
        for op, d, t in zip(self.ops, self._shared, self._times):
            point = groups.get(id(d))
            if point is None:
                point = groups[id(d)] = {
                    "op": op.name, "kind": op.kind, "count": 0, "share": 0.0, "flops": d.flops,
                    "time_s": d.time_s, "bound": d.bound,
                    "bytes": {k: v for k, v in d.work.items() if not k.startswith("compute") and v > 0}}
            point["count"] += 1
            point["share"] += t / total
        return {"device": self.device.id, "device_name": self.device.name, "workload": self.name,
                "meta": {k: v for k, v in self.meta.items() if isinstance(v, (str, int, float, type(None)))},
                "total_time_s": self.total_time_s, "main_memory": f"memory:{self.device.main_memory}",
                "ceilings": sorted(({"label": f"{en}:{'/'.join(dts)}", "flops_s": p}
                                    for (en, p), dts in ceilings.items()), key=lambda c: -c["flops_s"]),
                "slopes": [{"key": k, "bytes_s": resource[k].bandwidth_bytes_s} for k in self.resource_keys()],
                "points": sorted(groups.values(), key=lambda p: -p["share"])}

    def plot(self, *others: Analysis, **kwargs):
        """The hierarchical roofline of this analysis (and ``others``, side by side)."""
        return plot_rooflines([self, *others], **kwargs)


def analyze(graph, device) -> Analysis:
    """Cost every operator of ``graph`` (a :class:`workloads.Graph` or a list of operators) on
    ``device`` (a System: on its first accelerator, as one tensor-parallel rank)."""
    if hasattr(device, "accelerators"):
        device = device.first_accelerator()
    ops = graph.ops if hasattr(graph, "ops") else list(graph)
    memo = device_info(device).memo
    shared, times, bounds = [], [], []
    for op in ops:
        entry = shared_cost(op, device, memo)
        shared.append(entry[0])
        times.append(entry[1])
        bounds.append(entry[2])
    return Analysis(device, getattr(graph, "name", ""), ops, shared, times, bounds,
                    dict(getattr(graph, "meta", {}) or {}))
