"""What a simulation says: latency, throughput, energy, utilisation, timeline, critical path,
bottleneck, what-if sensitivity and power/rate counters, as data (a DataFrame, a dict for JSON);
``reports/`` draws it (Gantt chart, HTML) and writes it (Perfetto trace)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from roofline.demands import regime_of

from .memory import tiers

LATENCY = "latency"
# How many of the resources owning most of the critical path get a 2x what-if.
SENSITIVITY_TOP = 3


def _split(resource: str) -> tuple[str, str]:
    """(owner node, generic key) of an engine resource: ``gpu0|memory:hbm`` -> (gpu0, memory:hbm);
    a topology link ``gpu0>nvswitch|link:nvlink`` -> (gpu0, link:nvlink)."""
    where, key = resource.split("|", 1)
    return where.split(">", 1)[0], key


def _bound_class(key: str) -> str:
    return key.split(":", 1)[0] if ":" in key else key


@dataclass
class SimResult:
    """The result of :func:`simulator.simulate`. Times in s, energy in J, power in W.

    ``timeline`` has one row per operator instance and device (a collective has a row on each
    member): op, kind, device, stage, microbatch, stream, resource (what limited it: a resource
    key, or ``latency`` when its fixed time dominated), bound (compute/memory/link/latency),
    start, end, duration. ``critical_path`` lists the chain of operators that set the makespan
    (each with its time and share); ``bottleneck`` the resource and bound class owning most of
    it; ``sensitivity()`` the re-simulated makespan with each top resource 2x faster. ``memory``
    (:class:`simulator.memory.MemoryReport`) gives each device's capacity, footprint by role
    (weights, KV cache, state, peak activations), whether it fitted and what spilled where.
    """

    latency_s: float
    tokens: float | None
    throughput_tok_s: float | None
    energy_j: float
    dynamic_energy_j: float
    static_energy_j: float
    active_energy_j: float
    busy_s: dict[str, float]
    avg_power_w: dict[str, float]
    tdp_w: dict[str, float]        # the power each device may draw: its TDP, or its board limit (power.limit)
    over_tdp: list[str]
    utilisation: dict[str, dict[str, float]]
    timeline: pd.DataFrame
    critical_path: list[dict]
    bottleneck: dict
    events: int
    meta: dict = field(default_factory=dict)
    memory: object = None   # simulator.memory.MemoryReport: footprint, capacity and spills per device
    runtime: str = "none"   # the runtime profile the step ran under (hwmodels.runtime)
    power_cap: dict = field(default_factory=dict)   # node -> clock_fraction, uncapped_power_w (capped devices)
    collectives: dict = field(default_factory=dict)  # collective -> {algorithm it ran: operators}
    _plan: object = field(default=None, repr=False)
    _infos: list = field(default_factory=list, repr=False)
    _sensitivity: dict | None = field(default=None, repr=False)
    _run: dict = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return f"<SimResult {self.title()}; {len(self.timeline)} timeline rows, {self.energy_j:.4g} J>"

    def _repr_html_(self) -> str:
        from reports.views import summary_html  # Jupyter's summary is drawn by reports/

        return summary_html(self)

    # ------------------------------------------------------------------ building
    @classmethod
    def build(cls, plan, res, infos, *, seed: int, jitter: float, scale: dict, clock: dict | None = None) -> SimResult:
        makespan = res.makespan_s
        system = plan.system
        # Energy per device: idle (static) power x makespan, + the active baseline above idle x the
        # time the device runs any operator (union of its operators' spans), + dynamic energy per
        # operator instance (per node doing its work). Only the accelerators the workload is
        # placed on count (a system may have idle ones).
        used = plan.used_nodes()
        dyn: dict[str, float] = dict.fromkeys(used, 0.0)
        for info in infos:
            for n in info.workers:
                dyn[n] = dyn.get(n, 0.0) + info.energy_j
        busy_spans = _busy_intervals(res, infos, used)
        busy = {n: sum(b - a for a, b in busy_spans[n]) for n in used}
        pw = {n: system.devices[n].power for n in used}
        tdp = {n: pw[n].cap_w for n in used}     # what each device may draw: its TDP or board limit
        static = {n: pw[n].static_w * makespan for n in used}
        active = {n: (pw[n].active_w - pw[n].static_w) * busy[n] for n in used}
        static_e = sum(static.values())
        active_e = sum(active.values())
        dyn_e = sum(dyn.values())
        power = {n: (dyn.get(n, 0.0) + static[n] + active[n]) / makespan if makespan > 0 else pw[n].static_w
                 for n in used}
        over = [n for n, p in power.items() if p > tdp[n] > 0]
        # Utilisation of every resource, grouped by device.
        util: dict[str, dict[str, float]] = {}
        for r, u in res.utilisation().items():
            node, key = _split(r)
            if ">" in r.split("|", 1)[0]:
                key = f"{key}->{r.split('|', 1)[0].split('>', 1)[1]}"
            util.setdefault(node, {})[key] = u
        timeline = _timeline(res, infos)
        path = _critical_path(res, infos)
        meta = dict(getattr(plan.graph, "meta", {}) or {})
        tokens = meta.get("tokens")
        tokens = float(tokens) if tokens is not None else None
        out = cls(
            latency_s=makespan, tokens=tokens,
            throughput_tok_s=(tokens / makespan) if tokens and makespan > 0 else None,
            energy_j=static_e + active_e + dyn_e, dynamic_energy_j=dyn_e, static_energy_j=static_e,
            active_energy_j=active_e, busy_s=busy,
            avg_power_w=power, tdp_w=tdp, over_tdp=over, utilisation=util, timeline=timeline,
            critical_path=path, bottleneck=_bottleneck(path), events=res.events,
            collectives=_algorithm_counts(plan),
            meta={**meta, "system": system.id, "seed": seed, "jitter": jitter, "scale": scale,
                  "devices": len(used)},
            _plan=plan, _infos=infos,
            _run={"seed": seed, "jitter": jitter, "scale": scale, "clock": dict(clock or {}),
                  "spans": list(zip(res.start_s, res.end_s, res.flow_start_s)), "busy": busy_spans,
                  "dynamic": dyn})
        return out

    # ------------------------------------------------------------------ derived
    @property
    def regime(self) -> str:
        """``compute-bound``, ``memory-bound`` or ``overhead-bound``: the class of resources owning
        most of the critical path (:func:`roofline.demands.regime_of`)."""
        return regime_of(_owners(self.critical_path))

    @property
    def used_nodes(self) -> list[str]:
        """The accelerators the workload ran on."""
        return list(self.avg_power_w)

    def dynamic_w(self, node: str) -> float:
        """``node``'s dynamic energy (per FLOP and byte) over the makespan, in W."""
        return self._run["dynamic"][node] / self.latency_s if self.latency_s > 0 else 0.0

    @property
    def energy_breakdown_j(self) -> dict[str, float]:
        """Energy (J) by cause: ``idle`` (static power x makespan on every device), ``active``
        (baseline above idle x busy time), ``dynamic`` (per FLOP and per byte moved)."""
        return {"idle": self.static_energy_j, "active": self.active_energy_j, "dynamic": self.dynamic_energy_j}

    @property
    def tokens_processed(self) -> float | None:
        """Tokens run through the model in the step (a prefill's prompt tokens, a decode step's
        one per sequence), from the workload's ``meta``; ``tokens`` counts the tokens produced."""
        value = self.meta.get("tokens_processed")
        return float(value) if value is not None else None

    @property
    def processed_tok_s(self) -> float | None:
        """``tokens_processed`` per second of makespan (prefill throughput in prompt tokens/s)."""
        n = self.tokens_processed
        return n / self.latency_s if n and self.latency_s > 0 else None

    @property
    def samples(self) -> float | None:
        """Samples (images, items) a step of a graph that is not a language model completes,
        from the workload's ``meta``; such a graph reports samples/s instead of tokens/s."""
        value = self.meta.get("samples")
        return float(value) if value else None

    @property
    def throughput_samples_s(self) -> float | None:
        return self.samples / self.latency_s if self.samples and self.latency_s > 0 else None

    @property
    def energy_per_token_j(self) -> float | None:
        return self.energy_j / self.tokens if self.tokens else None

    def sensitivity(self) -> dict[str, dict]:
        """Makespan if each resource owning most of the critical path were 2x faster
        (re-simulated on every device and link of that kind, with the same seed); ``latency``
        stands for every fixed time (kernel launches, link latencies) halved.

        Resources in series form paths: a memory tier behind a link (host memory over PCIe, a
        CXL expander over its link) is only as fast as the slower of the two, so doubling one
        alone gains little. Each path with a member among those resources is tried too, both
        members doubled (key ``memory:host+link:pcie``, ``resources`` its members). Entries are
        ranked by the makespan they give, shortest first: the first names what to make faster.

        An explicit call because it re-runs the simulation once per resource and path; the answer
        is kept, so the table and the JSON ask once."""
        if self._sensitivity is None:
            owners = _owners(self.critical_path)
            top = sorted(owners, key=owners.get, reverse=True)[:SENSITIVITY_TOP]
            trials = {key: (key,) for key in top}
            for name, members in tier_paths(self._plan).items():
                if any(m in trials for m in members):
                    trials[name] = members
            out = {}
            for name, members in trials.items():
                scale = dict(self._run["scale"])
                for key in members:
                    scale[key] = scale.get(key, 1.0) * 2.0
                res, _ = self._plan.play(scale, self._run["seed"], self._run["jitter"], clock=self._run["clock"])
                share = sum(owners.get(k, 0.0) for k in members)
                out[name] = {"latency_s": res.makespan_s, "resources": list(members),
                             "change": res.makespan_s / self.latency_s - 1.0 if self.latency_s else 0.0,
                             "critical_path_share": share / self.latency_s if self.latency_s else 0.0}
            self._sensitivity = dict(sorted(out.items(), key=lambda kv: kv[1]["latency_s"]))
        return self._sensitivity

    def to_frame(self) -> pd.DataFrame:
        """The timeline (one row per operator instance and device)."""
        return self.timeline.copy()

    def summary(self) -> dict:
        """Headline numbers (no timeline)."""
        return {
            "latency_s": self.latency_s, "tokens": self.tokens, "throughput_tok_s": self.throughput_tok_s,
            "samples": self.samples, "throughput_samples_s": self.throughput_samples_s,
            "tokens_processed": self.tokens_processed, "processed_tok_s": self.processed_tok_s,
            "energy_j": self.energy_j, "dynamic_energy_j": self.dynamic_energy_j,
            "static_energy_j": self.static_energy_j, "active_energy_j": self.active_energy_j,
            "energy_breakdown_j": self.energy_breakdown_j, "busy_s": self.busy_s,
            "energy_per_token_j": self.energy_per_token_j,
            "avg_power_w": self.avg_power_w, "tdp_w": self.tdp_w, "over_tdp": self.over_tdp,
            "power_cap": self.power_cap, "regime": self.regime,
            "bottleneck": self.bottleneck,
        }

    def to_dict(self, timeline: bool = False) -> dict:
        """Everything as JSON-ready data (the timeline only when asked: it can be large)."""
        out = {
            **self.summary(),
            "utilisation": self.utilisation,
            "critical_path": self.critical_path,
            "sensitivity": self.sensitivity(),
            "events": self.events,
            "memory": self.memory.to_dict() if self.memory is not None else None,
            "runtime": self.runtime,
            "collectives": self.collectives,
            "meta": self.meta,
        }
        if timeline:
            out["timeline"] = self.timeline.to_dict(orient="records")
        return out

    # ------------------------------------------------------------------ pictures and traces
    def plot(self, ax=None, max_rows: int = 24):
        """A Gantt chart: one row per device stream, operators coloured by bound (drawn by
        :func:`reports.figures.timeline_figure`, through :mod:`reports.views`)."""
        from reports.views import gantt

        return gantt(self, max_lanes=max_rows, ax=ax)

    def title(self) -> str:
        """What was run, with its headline figures: ``llama-2-7b decode, batch 8, context 1024,
        bf16 on h100-sxm: 7.85 ms, bottleneck memory:hbm``."""
        from roofline.plot import run_label

        return (f"{run_label(self.meta)} on {self.meta.get('system', '')}: {self.latency_s * 1e3:.4g} ms, "
                f"bottleneck {self.bottleneck.get('resource')}")

    def counters(self) -> dict[tuple[str, str], list[tuple[float, float]]]:
        """Piecewise-constant series per (device, name), as ``[(t_s, value from t_s on), ...]``:
        ``power_w`` (idle, + the active baseline while busy, + each operator's dynamic energy
        spread over its span; starts at t = 0 at idle power), and the rate in use of every engine
        (``compute:tensor FLOP/s``), memory level and link (``... B/s``): each operator's work
        spread evenly over its flow time. Only the devices the workload ran on."""
        changes: dict[tuple[str, str], dict[float, float]] = {}

        def add(dev: str, name: str, t0: float, t1: float, value: float) -> None:
            if t1 <= t0 or value == 0:
                return
            c = changes.setdefault((dev, name), {})
            c[t0] = c.get(t0, 0.0) + value
            c[t1] = c.get(t1, 0.0) - value

        for info, (t0, t1, f0) in zip(self._infos, self._run["spans"]):
            for n in info.workers:
                add(n, "power_w", t0, t1, info.energy_j / (t1 - t0) if t1 > t0 else 0.0)
            if info.demands is not None and t1 > f0:
                for k, w in info.demands.work.items():
                    if w <= 0 or (k.startswith("link:") and info.link_bytes):
                        continue  # a collective's link bytes are counted on the routes it took
                    unit = "FLOP/s" if k.startswith("compute:") else "B/s"
                    for n in info.workers:
                        add(n, f"{k} {unit}", f0, t1, w / (t1 - f0))
                for rk, nbytes in info.link_bytes:
                    node, key = _split(rk)
                    add(node, f"{key} out B/s", f0, t1, nbytes / (t1 - f0))
        devs = self._plan.system.devices
        for n, spans in self._run.get("busy", {}).items():
            for a, b in spans:
                add(n, "power_w", a, b, devs[n].power.active_w - devs[n].power.static_w)
        out = {}
        for (dev, name), c in sorted(changes.items()):
            if dev not in self.avg_power_w:
                continue
            level = devs[dev].power.static_w if name == "power_w" else 0.0
            series = [(0.0, level)] if name == "power_w" else []
            for t in sorted(c):
                level += c[t]
                series.append((t, max(level, 0.0)))
            out[(dev, name)] = series
        return out

    def trace(self) -> dict:
        """Chrome/Perfetto trace events (see :func:`reports.trace.perfetto_trace`)."""
        from reports.views import perfetto

        return perfetto(self)

    def write_trace(self, path: str | Path) -> Path:
        """Write the Chrome/Perfetto trace JSON (opens in ui.perfetto.dev); returns the path."""
        from reports.views import write_perfetto

        return write_perfetto(self, path)


def _busy_intervals(res, infos, nodes) -> dict[str, list[tuple[float, float]]]:
    """Per node, the disjoint sorted intervals during which it runs any operator (a collective
    counts on every member it holds): the union of the operators' [start, end] spans, launch
    overhead included (clocks stay up across back-to-back kernels, and across a runtime's host
    work between them: a millisecond is far shorter than a GPU's clock governor reacts)."""
    spans: dict[str, list[tuple[float, float]]] = {n: [] for n in nodes}
    for i, info in enumerate(infos):
        a, b = res.start_s[i], res.end_s[i]
        if b > a:
            for n in info.nodes:
                if n in spans:
                    spans[n].append((a, b))
    out: dict[str, list[tuple[float, float]]] = {}
    for n, iv in spans.items():
        merged: list[tuple[float, float]] = []
        for a, b in sorted(iv):
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        out[n] = merged
    return out


def _timeline(res, infos) -> pd.DataFrame:
    cols = {k: [] for k in ("op", "kind", "device", "stage", "microbatch", "stream", "resource", "bound",
                            "start", "end", "duration", "energy_j")}
    for i, info in enumerate(infos):
        start, end, f0 = res.start_s[i], res.end_s[i], res.flow_start_s[i]
        lim = res.limit[i]
        if lim is None or (end - f0) < info.fixed_s:
            resource = LATENCY
        else:
            resource = _split(lim)[1] if "|" in lim else lim
        for n in info.nodes:
            cols["op"].append(info.op)
            cols["kind"].append(info.kind)
            cols["device"].append(n)
            cols["stage"].append(info.stage)
            cols["microbatch"].append(info.microbatch)
            cols["stream"].append(info.stream)
            cols["resource"].append(resource)
            cols["bound"].append(_bound_class(resource))
            cols["start"].append(start)
            cols["end"].append(end)
            cols["duration"].append(end - start)
            cols["energy_j"].append(info.energy_j)
    return pd.DataFrame(cols)


def _critical_path(res, infos) -> list[dict]:
    """The chain of tasks that gated one another back from the last one to end, merged per
    operator name: time on the path, share of the makespan, and time per limiting resource."""
    if not infos:
        return []
    t = max(range(len(infos)), key=res.end_s.__getitem__)
    makespan = res.makespan_s
    per_op: dict[str, dict] = {}
    order: list[str] = []
    while t >= 0:
        info = infos[t]
        dur = res.end_s[t] - res.start_s[t]
        fixed = res.flow_start_s[t] - res.start_s[t]
        flow = dur - fixed
        row = per_op.get(info.op)
        if row is None:
            row = per_op[info.op] = {"op": info.op, "kind": info.kind, "count": 0, "time_s": 0.0,
                                     "by_resource": {}}
            order.append(info.op)
        row["count"] += 1
        row["time_s"] += dur
        br = row["by_resource"]
        if fixed > 0:
            br[LATENCY] = br.get(LATENCY, 0.0) + fixed
        if flow > 0 and res.limit[t] is not None:
            key = _split(res.limit[t])[1]
            br[key] = br.get(key, 0.0) + flow
        t = res.gate[t]
    rows = [per_op[o] for o in reversed(order)]
    for row in rows:
        row["share"] = row["time_s"] / makespan if makespan > 0 else 0.0
    return rows


def tier_paths(plan) -> dict[str, tuple[str, ...]]:
    """The resource paths of the devices ``plan`` uses: each lower memory tier (host, CXL) with the
    link in front of it, as ``{"memory:host+link:pcie": ("memory:host", "link:pcie")}``."""
    out: dict[str, tuple[str, ...]] = {}
    for node in plan.used_nodes():
        for tier in tiers(plan.device(node)):
            if tier.link:
                members = (f"memory:{tier.level}", f"link:{tier.link}")
                out["+".join(members)] = members
    return out


def _owners(path: list[dict]) -> dict[str, float]:
    """Seconds of the critical path each resource (or ``latency``) owns."""
    owners: dict[str, float] = {}
    for row in path:
        for key, t in row["by_resource"].items():
            owners[key] = owners.get(key, 0.0) + t
    return owners


def _bottleneck(path: list[dict]) -> dict:
    """The resource (and its bound class) that owns most of the critical path."""
    owners = _owners(path)
    total = sum(t for row in path for t in row["by_resource"].values())
    if not owners:
        return {"resource": None, "bound": None, "share": 0.0}
    key = max(owners, key=owners.get)
    return {"resource": key, "bound": _bound_class(key), "share": owners[key] / total if total else 0.0,
            "by_resource": {k: v / total for k, v in sorted(owners.items(), key=lambda kv: -kv[1])}}


def _algorithm_counts(plan) -> dict[str, dict[str, int]]:
    """collective -> {algorithm: how many of the graph's operators ran it} (NCCL's ring or
    in-switch, or a runtime's own one-shot / two-shot kernel)."""
    out: dict[str, dict[str, int]] = {}
    for collective, algorithm in getattr(plan, "algorithm_of", {}).values():
        counts = out.setdefault(collective, {})
        counts[algorithm] = counts.get(algorithm, 0) + 1
    return out
