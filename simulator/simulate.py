"""``simulate(graph, hardware)``: play an operator graph over a device or a system.

Everything an operator costs comes from the cost model (``roofline.cost(op, device)``: work per
resource, the rate each resource gives it alone, fixed latency, dynamic energy). This module
turns the graph into engine tasks and adds only what time adds:

* **Resources.** Every device contributes its compute engines, memory levels and links as
  ``"<node>|<key>"`` (e.g. ``gpu3|memory:hbm``); every edge of the system graph contributes one
  resource per direction (``gpu0>nvswitch|link:nvlink``). Work is expressed in *seconds of the
  resource at the rate the cost model gives this operator* (capacity 1), so operators with
  different efficiencies share a resource by time, and one operator alone takes exactly
  ``Demands.time_s``.
* **Streams.** Each device has a compute, a communication and a copy stream (in-order, like
  CUDA streams): collectives overlap compute only across streams.
* **Placement.** Stage ``s``, rank ``r`` runs on accelerator ``s * width + r`` (width = tp, or
  ep where wider). Every rank of every stage is simulated, so collectives of different groups
  contend for the links they share.
* **Collectives** are gang tasks over their group (holding every member's communication
  stream): the cost model's algorithm steps (:mod:`roofline.collectives`) are routed over the
  topology by :mod:`simulator.topology`; their memory/compute work stays on each member.
* **Micro-batches.** A pipelined graph describes one micro-batch; it is issued
  ``meta["microbatches"]`` times, in order, so stage ``s`` takes micro-batch ``i`` once stage
  ``s-1`` has sent it, and pipeline bubbles emerge.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from hwmodels.errors import InputError, unknown_name

from .engine import FluidEngine
from .topology import Topology, group_members, link_kind_of, peer_pattern

STREAM_OF_KIND = {"collective": "comm", "memcopy": "copy", "runtime": "host"}
STREAMS = ("compute", "comm", "copy", "host")


@dataclass(frozen=True)
class TaskInfo:
    """What an engine task stands for: one operator on one rank (or one collective over a group)
    in one micro-batch. ``demands`` is the cost model's answer for the operator on that device."""

    op: str
    kind: str
    nodes: tuple[str, ...]
    stage: int
    microbatch: int
    stream: str
    demands: object
    fixed_s: float
    energy_j: float           # dynamic energy spent on each node of ``workers``
    workers: tuple[str, ...]  # nodes doing the work (a send's sender; every member of a group)
    link_bytes: tuple = ()    # ((resource, bytes), ...) carried over the topology


def _cost_fn():
    """``roofline.cost`` without the defensive copy: the simulator never modifies Demands, so
    identical operators (the layers of a model) share one object (bounded memory)."""
    from roofline.costs import shared_cost

    return lambda op, device: shared_cost(op, device)[0]


def _as_system(hardware, ranks: int):
    """A System for ``hardware`` (a Device is replicated to ``ranks`` copies on the fly)."""
    import hwmodels

    if isinstance(hardware, (str, bytes)) or hasattr(hardware, "__fspath__"):
        hardware = hwmodels.load_hardware(hardware)
    if hasattr(hardware, "accelerators"):
        if len(hardware.accelerators) < ranks:
            raise InputError(f"the workload needs {ranks} accelerators but system '{hardware.id}' has "
                             f"{len(hardware.accelerators)}", path="hw")
        return hardware
    return hwmodels.system_from_device(hardware, ranks)


def _meta_int(meta: Mapping, key: str, default: int = 1) -> int:
    value = meta.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not float(value).is_integer() or value < 1:
        raise InputError(f"graph meta '{key}' must be a positive integer, got {value!r}", path=f"meta.{key}")
    return int(value)


class Plan:
    """A graph placed on a system: builds and plays engine tasks (re-playable for what-ifs)."""

    def __init__(self, graph, hardware, *, cost_fn: Callable | None = None, merge_steps: bool = True,
                 algorithm: str | None = None):
        self.graph = graph
        meta = getattr(graph, "meta", {}) or {}
        self.tp = _meta_int(meta, "tp")
        self.pp = _meta_int(meta, "pp")
        self.ep = _meta_int(meta, "ep")
        self.microbatches = _meta_int(meta, "microbatches")
        self.width = max(self.tp, self.ep)
        if algorithm is not None:
            from roofline.collectives import ALGORITHMS

            if algorithm not in ALGORITHMS:
                raise unknown_name("collective algorithm", algorithm, ALGORITHMS, path="algorithm")
        self.algorithm = algorithm
        self.ops = [self._pinned(op) for op in graph.ops]
        if not self.ops:
            raise InputError("the workload graph has no operators", path="graph")
        stages = {op.stage for op in self.ops}
        if max(stages) >= self.pp:
            raise InputError(f"an operator runs on stage {max(stages)} but the graph has pp={self.pp}",
                             path="meta.pp")
        self.system = _as_system(hardware, self.pp * self.width)
        self.cost = cost_fn or _cost_fn()
        self.merge_steps = merge_steps
        self.topology = Topology(self.system.graph)
        self._demands: dict[tuple[str, int], object] = {}
        self._collectives: dict[tuple, tuple] = {}
        self.deps = {op.name: graph.deps(op.name) for op in self.ops}
        self.op_index = {op.name: i for i, op in enumerate(self.ops)}

    def _pinned(self, op):
        """``op``, or for a collective that the plan's ``algorithm`` implements (not pinned by the
        graph; a send/recv is always one transfer) a copy pinned to it, so that the cost model
        charges that algorithm's memory traffic and reduction FLOPs along with its link steps.
        Collectives the algorithm does not implement (a tree all-gather) keep the default."""
        from roofline.collectives import ALGORITHMS

        if (op.kind != "collective" or not self.algorithm or getattr(op, "algorithm", None)
                or op.collective == "send_recv" or op.collective not in ALGORITHMS[self.algorithm].collectives):
            return op
        pinned = copy.copy(op)
        pinned.algorithm = self.algorithm
        return pinned

    # ------------------------------------------------------------------ placement
    def node(self, stage: int, rank: int) -> str:
        return self.system.accelerators[stage * self.width + rank]

    def used_nodes(self) -> list[str]:
        """The accelerators the graph is placed on, in rank order."""
        return [self.node(s, r) for s in range(self.pp) for r in range(self.width)]

    def device(self, node: str):
        return self.system.devices[node]

    def _as_played(self, op, members: list[str]):
        """Collective ``op`` pinned to the algorithm the topology lets it play over ``members``
        (in-switch where a reducing switch joins them, else the ring), so that the cost model
        charges that algorithm's memory traffic, reduction FLOPs and latency even where a system
        declares its switch and its devices' links differently. Pinned operators stay as they are."""
        from roofline.collectives import choose_algorithm

        if getattr(op, "algorithm", None) or op.collective == "send_recv":
            return op
        switch = self.topology.reduction_switch(members)
        pinned = copy.copy(op)
        pinned.algorithm = choose_algorithm(op.collective, switch is not None)
        return pinned

    def demands(self, op, node: str):
        """The cost model's demands of ``op`` on ``node``'s device, asked once per operator,
        algorithm and device model (the cost model itself shares them between identical operators)."""
        dev = self.device(node)
        key = (op.name, getattr(op, "algorithm", None), id(dev))
        d = self._demands.get(key)
        if d is None:
            d = self._demands[key] = self.cost(op, dev)
        return d

    def _collective_phases(self, op, members: list[str], d) -> tuple[list, float, float]:
        """(phases over the topology, fixed latency, the link efficiency the cost model gives it)
        of collective ``op`` over ``members``, remembered: asked once per group and micro-batch."""
        from roofline import collectives as coll
        from roofline.costs import collective_steps

        dev = self.device(members[0])
        # The phases depend on the operator's pinned algorithm and on its demands (efficiency,
        # fixed time), which identical operators share (one Demands object per signature).
        key = (op.collective, float(op.payload_bytes), tuple(members), id(dev), getattr(op, "algorithm", None),
               id(d))
        if key in self._collectives:
            return self._collectives[key]
        link_keys = [k for k in d.work if k.startswith("link:")]
        fixed = d.fixed_s
        eff = 1.0
        switch = self.topology.reduction_switch(members)
        if link_keys:
            name = link_keys[0].split(":", 1)[1]
            link = dev.links[name]
            peak = getattr(d, "peak_rates", {}).get(link_keys[0]) or link.bandwidth_bytes_s
            eff = d.rates[link_keys[0]] / peak
            # Replace the cost model's per-hop latency with the latency of the routes taken.
            fixed -= coll.latency_s(collective_steps(op, link)[1], link.latency_s)
        algorithm = getattr(op, "algorithm", None) or coll.choose_algorithm(op.collective, switch is not None)
        if op.collective == "send_recv":
            algorithm = "ring"
        if algorithm == "in_switch" and switch is None:
            raise InputError(f"{op.name}: in-switch reduction needs a switch with in_network_reduction "
                             "joining the group", path="algorithm")
        steps = coll.steps(op.collective, op.payload_bytes, op.group_size, algorithm)
        phases = self.topology.phases(steps, peer_pattern(algorithm, op.collective), members, switch,
                                      merge=self.merge_steps)
        out = (phases, max(fixed, 0.0), eff)
        self._collectives[key] = out
        return out

    # ------------------------------------------------------------------ building and playing
    def play(self, scale: Mapping[str, float] | None = None, seed: int = 0, jitter: float = 0.0,
             clock: Mapping[str, float] | None = None):
        """Build the engine tasks and run them. ``scale`` multiplies the rate of resource keys
        (``"memory:hbm"``, ``"compute:tensor"``, ``"link:nvlink"``) on every device and link, and
        ``"latency"`` divides every fixed time (launch overheads, latencies);
        ``jitter`` (relative standard deviation) perturbs each task's work, seeded; ``clock``
        (node -> fraction of the nominal clock, from a power cap) scales that node's compute rates."""
        clock = dict(clock or {})
        scale = dict(scale or {})
        for k, v in scale.items():
            if not (v > 0 and math.isfinite(v)):
                raise InputError(f"rate scale for '{k}' must be positive and finite, got {v!r}", path="scale")
        lat_scale = scale.get("latency", 1.0)   # "latency": fixed times (launch, link latency) shrink
        rng = np.random.default_rng(seed)
        eng = FluidEngine()
        infos: list[TaskInfo] = []
        declared: set[str] = set()

        seen: set[str] = {"latency"}

        def res(key: str) -> str:
            if key not in declared:
                eng.add_resource(key, 1.0)
                declared.add(key)
                seen.add(key.split("|", 1)[1])
            return key

        def local_work(node: str, d, skip_links: bool = False) -> dict[str, float]:
            out = {}
            slow = clock.get(node, 1.0)
            for k, w in d.work.items():
                if w <= 0 or (skip_links and k.startswith("link:")):
                    continue
                rate = d.rates[k] * scale.get(k, 1.0) * (slow if k.startswith("compute:") else 1.0)
                out[res(f"{node}|{k}")] = w / rate
            return out

        def noise() -> float:
            return float(rng.lognormal(0.0, jitter)) if jitter > 0 else 1.0

        for mb in range(self.microbatches):
            ids: dict[str, list[int]] = {}
            for op in self.ops:
                deps = self.deps[op.name]
                stream = STREAM_OF_KIND.get(op.kind, "compute")
                s = op.stage
                per_rank: list[int] = [0] * self.width
                if op.kind == "collective":
                    if op.collective == "send_recv":
                        peer = op.peer_stage if op.peer_stage is not None else s + 1
                        if not 0 <= peer < self.pp:
                            raise InputError(f"{op.name}: peer stage {peer} is outside 0..{self.pp - 1}",
                                             path="peer_stage")
                        # Rank r of this stage sends to rank r of the peer stage.
                        groups = [([r], [self.node(s, r), self.node(peer, r)]) for r in range(self.width)]
                    else:
                        groups = []
                        for first in range(0, self.width, op.group_size):
                            ranks = group_members(first, op.group_size, self.width)
                            groups.append((ranks, [self.node(s, r) for r in ranks]))
                    for ranks, members in groups:
                        played = self._as_played(op, members)
                        d = self.demands(played, members[0])
                        phases, fixed, eff = self._collective_phases(played, members, d)
                        dep_ids = {ids[x][r] for x in deps for r in ranks}
                        streams = [("comm", m) for m in members]
                        local = {}
                        for m in members[:len(ranks)]:
                            local.update(local_work(m, d, skip_links=True))
                        prev = None
                        for i, ph in enumerate(phases or [None]):
                            work = dict(local) if i == 0 else {}
                            lb = []
                            if ph is not None:
                                for rk, nbytes in ph.work.items():
                                    k = link_kind_of(rk)
                                    work[res(rk)] = nbytes / (self.topology.capacity[rk] * eff
                                                              * scale.get(k, 1.0))
                                    lb.append((rk, nbytes))
                            f = ((fixed if i == 0 else 0.0) + (ph.latency_s if ph is not None else 0.0)) / lat_scale
                            tid = eng.add({k: v * noise() for k, v in work.items()}, f,
                                          dep_ids if prev is None else {prev}, streams)
                            infos.append(TaskInfo(op.name, op.kind, tuple(members), s, mb, "comm", d, f,
                                                  d.energy_j if i == 0 else 0.0,
                                                  tuple(members[:len(ranks)]), tuple(lb)))
                            prev = tid
                        for r in ranks:
                            per_rank[r] = prev
                else:
                    for r in range(self.width):
                        node = self.node(s, r)
                        d = self.demands(op, node)
                        work = local_work(node, d)
                        dep_ids = {ids[x][r] for x in deps}
                        fixed = d.fixed_s / lat_scale
                        tid = eng.add({k: v * noise() for k, v in work.items()}, fixed, dep_ids,
                                      [(stream, node)])
                        infos.append(TaskInfo(op.name, op.kind, (node,), s, mb, stream, d, fixed,
                                              d.energy_j, (node,)))
                        per_rank[r] = tid
                ids[op.name] = per_rank
        for k in scale:
            if k not in seen:
                raise unknown_name("resource to scale", k, seen, path="scale")
        result = eng.run()
        return result, infos


POWER_CAP_ROUNDS = 30       # clock updates at most (each replays the plan); converges in a few
POWER_CAP_TOLERANCE = 1e-3  # a capped device's average power within 0.1% above its TDP


def _capped(plan, result, seed: int, jitter: float, scale: dict):
    """``result`` with every device whose average power exceeds its TDP slowed to draw it.

    A device at its power limit lowers its clock (DVFS): its compute engines run at a fraction
    ``c`` of their rate, its memory and links do not. The energy of the work stays what the cost
    model says; the time grows, so static and active power spread over a longer step and the
    dynamic power falls. ``c`` solves average power = TDP, found by the update
    ``c <- c x (tdp - base) / dynamic`` (``base``: static plus active power over the step, exact
    when the device is compute-bound) until it holds. A device whose static and active power
    alone exceed its TDP cannot be helped by its clock and stays flagged in ``over_tdp``.
    """
    from .result import SimResult

    clock: dict[str, float] = {}
    uncapped = {n: result.avg_power_w[n] for n in result.over_tdp}
    for _ in range(POWER_CAP_ROUNDS):
        moved = False
        for n in result.used_nodes:
            tdp, power = result.tdp_w[n], result.avg_power_w[n]
            if not tdp or (power <= tdp * (1 + POWER_CAP_TOLERANCE) and (n not in clock or power >= tdp * 0.99)):
                continue
            dyn = result.dynamic_w(n)
            base = power - dyn
            if base >= tdp or dyn <= 0:
                continue
            clock[n] = min(1.0, clock.get(n, 1.0) * (tdp - base) / dyn)
            moved = True
        if not moved:
            break
        engine_result, infos = plan.play(scale, seed, jitter, clock=clock)
        result = SimResult.build(plan, engine_result, infos, seed=seed, jitter=jitter, scale=scale, clock=clock)
    result.power_cap = {n: {"clock_fraction": c, "uncapped_power_w": uncapped.get(n)} for n, c in clock.items()
                        if c < 1.0}
    result.over_tdp = [n for n in result.over_tdp
                       if n not in result.power_cap or result.avg_power_w[n] > result.tdp_w[n] * (1 + POWER_CAP_TOLERANCE)]
    return result


def simulate(graph, hardware, *, seed: int = 0, jitter: float = 0.0, scale: Mapping[str, float] | None = None,
             algorithm: str | None = None, merge_steps: bool = True, cost_fn: Callable | None = None,
             spill: bool = True, runtime=None, power_cap: bool = True):
    """Play ``graph`` over ``hardware`` (a Device, a System, or a catalog id / YAML path).

    ``seed`` and ``jitter`` (relative spread of each operator's work, 0 = none) make runs with
    stragglers reproducible; ``scale`` multiplies resource rates (what-ifs); ``algorithm`` forces
    a collective algorithm on the collectives it implements (the others, and by default all,
    get the library's choice for the topology); ``cost_fn`` replaces
    ``roofline.cost`` (for tests and calibration studies). Returns a :class:`SimResult`.

    Memory capacity is checked first (:mod:`simulator.memory`): what does not fit in a device's
    main memory spills to its host or CXL tier (``SimResult.memory`` says what went where, its
    ``warnings`` say it in words), or, with ``spill=False`` or no tier to spill to, the call
    raises :class:`~hwmodels.errors.InputError`.

    ``runtime`` (a profile name such as ``vllm-v0.6``, a YAML file, or a
    :class:`~hwmodels.runtime.RuntimeProfile`; default none) runs the step as that engine does
    (:func:`workloads.runtime.with_runtime`: its launch costs, unfused kernels and host work
    become operators the cost model prices; ``SimResult.runtime`` names it).

    ``power_cap`` (default on): a device whose average power would exceed its TDP runs at a
    lower clock instead (:func:`_capped`; ``SimResult.power_cap`` gives the clock fraction and
    the power it would have drawn); off, such a device is only listed in ``over_tdp``.
    """
    from .result import SimResult

    if not (jitter >= 0 and math.isfinite(jitter)):
        raise InputError(f"jitter must be a finite non-negative number, got {jitter!r}", path="jitter")
    from hwmodels.runtime import load_runtime
    from workloads.runtime import with_runtime

    from .memory import place

    profile = load_runtime(runtime)
    graph = with_runtime(graph, profile)
    plan = Plan(graph, hardware, cost_fn=cost_fn, merge_steps=merge_steps, algorithm=algorithm)
    stage_nodes = {s: [plan.node(s, r) for r in range(plan.width)] for s in range(plan.pp)}
    placed, memory = place(graph, stage_nodes, plan.system.devices, spill=spill)
    if placed is not graph:
        plan = Plan(placed, plan.system, cost_fn=cost_fn, merge_steps=merge_steps, algorithm=algorithm)
    engine_result, infos = plan.play(scale, seed, jitter)
    result = SimResult.build(plan, engine_result, infos, seed=seed, jitter=jitter, scale=dict(scale or {}))
    if power_cap and result.over_tdp:
        result = _capped(plan, result, seed, jitter, dict(scale or {}))
    result.memory = memory
    result.runtime = profile.name
    return result
