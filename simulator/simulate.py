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
  stream). The cost model describes each completely
  (:func:`roofline.collectives.plan_collective`: algorithm, steps, peers, link efficiency,
  overhead, local work), told only whether a reducing switch joins the group; the simulator
  routes the steps over the topology (:mod:`simulator.topology`) and plays them, and their
  memory/compute work stays on each member.
* **Micro-batches.** A pipelined graph describes one micro-batch; it is issued
  ``meta["microbatches"]`` times, in order, so stage ``s`` takes micro-batch ``i`` once stage
  ``s-1`` has sent it, and pipeline bubbles emerge.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

import hwmodels
from hwmodels import limits
from hwmodels.errors import InputError, unknown_name
from hwmodels.runtime import load_runtime
from roofline.collectives import ALGORITHMS, CollectivePlan, plan_collective
from roofline.costs import op_signature, shared_cost
from workloads.runtime import with_runtime

from .engine import STREAMS, FluidEngine
from .memory import place
from .result import SimResult
from .topology import Topology, group_members, link_kind_of

__all__ = ["STREAMS", "Plan", "TaskInfo", "simulate"]

STREAM_OF_KIND = {"collective": "comm", "memcopy": "copy", "runtime": "host"}


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


def _shared_cost(op, device):
    """``roofline.cost`` without the defensive copy: the simulator never modifies Demands, so
    identical operators (the layers of a model) share one object (bounded memory)."""
    return shared_cost(op, device)[0]


def _as_system(hardware, ranks: int):
    """A System for ``hardware`` (a Device is replicated to ``ranks`` copies on the fly)."""
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


def _checked_scale(scale: Mapping[str, float] | None) -> dict[str, float]:
    scale = dict(scale or {})
    for k, v in scale.items():
        if not (v > 0 and math.isfinite(v)):
            raise InputError(f"rate scale for '{k}' must be positive and finite, got {v!r}", path="scale")
    return scale


class Playback:
    """One play of a plan: the engine, the resources declared on it so far, the what-if rate
    scales and the seeded noise. Work is in seconds of a resource at the rate the cost model
    gives the operator (every resource has capacity 1)."""

    def __init__(self, scale: Mapping[str, float] | None, seed: int, jitter: float,
                 clock: Mapping[str, float] | None = None):
        self.scale = _checked_scale(scale)
        self.clock = dict(clock or {})   # node -> fraction of its nominal clock (power cap)
        self.latency_scale = self.scale.get("latency", 1.0)   # fixed times (launch, link latency) shrink
        self.engine = FluidEngine()
        self.infos: list[TaskInfo] = []
        self._rng = np.random.default_rng(seed)
        self._jitter = jitter
        self._declared: set[str] = set()
        self._scalable: set[str] = {"latency"}

    def resource(self, key: str) -> str:
        """Declare engine resource ``key`` (``<node>|<resource key>``) on first use."""
        if key not in self._declared:
            self.engine.add_resource(key, 1.0)
            self._declared.add(key)
            self._scalable.add(key.split("|", 1)[1])
        return key

    def seconds(self, key: str, amount: float, rate: float) -> float:
        """``amount`` of work at ``rate``, sped up by the what-if scale of resource ``key``."""
        return amount / (rate * self.scale.get(key, 1.0))

    def local_work(self, node: str, work: Mapping[str, float], rates: Mapping[str, float]) -> dict[str, float]:
        """``work`` (resource key -> amount) at ``rates`` as engine work on ``node``'s resources;
        a power-capped node's compute runs at its clock fraction."""
        slow = self.clock.get(node, 1.0)
        return {self.resource(f"{node}|{k}"): self.seconds(k, w, rates[k] * (slow if k.startswith("compute:") else 1.0))
                for k, w in work.items() if w > 0}

    def add(self, work: dict[str, float], fixed_s: float, deps, streams, info: TaskInfo) -> int:
        """Add an engine task (its work perturbed by the jitter) and what it stands for."""
        if self._jitter > 0:
            work = {k: v * float(self._rng.lognormal(0.0, self._jitter)) for k, v in work.items()}
        self.infos.append(info)
        return self.engine.add(work, fixed_s, deps, streams)

    def run(self):
        """Run the engine; a scale naming no resource that was played is an input error."""
        for k in self.scale:
            if k not in self._scalable:
                raise unknown_name("resource to scale", k, self._scalable, path="scale")
        return self.engine.run(), self.infos


class Plan:
    """A graph placed on a system: builds and plays engine tasks (re-playable for what-ifs).

    ``cost_fn(op, device) -> Demands`` replaces ``roofline.cost`` for operators other than
    collectives, ``collective_fn`` replaces :func:`roofline.collectives.plan_collective` (tests
    and calibration studies); ``algorithm`` is preferred for the collectives it implements."""

    def __init__(self, graph, hardware, *, cost_fn: Callable | None = None,
                 collective_fn: Callable[..., CollectivePlan] | None = None, merge_steps: bool = True,
                 algorithm: str | None = None):
        self.graph = graph
        meta = getattr(graph, "meta", {}) or {}
        self.tp = _meta_int(meta, "tp")
        self.pp = _meta_int(meta, "pp")
        self.ep = _meta_int(meta, "ep")
        self.microbatches = _meta_int(meta, "microbatches")
        self.width = max(self.tp, self.ep)
        self.algorithm = None if algorithm is None else ALGORITHMS.check(algorithm, path="algorithm")
        self.ops = list(graph.ops)
        if not self.ops:
            raise InputError("the workload graph has no operators", path="graph")
        limits.check("simulated_operators", len(self.ops) * self.width * self.microbatches, path="graph")
        stages = {op.stage for op in self.ops}
        if max(stages) >= self.pp:
            raise InputError(f"an operator runs on stage {max(stages)} but the graph has pp={self.pp}",
                             path="meta.pp")
        self.system = _as_system(hardware, self.pp * self.width)
        self.cost = cost_fn or _shared_cost
        self.plan_collective = collective_fn or plan_collective
        self.merge_steps = merge_steps
        self.topology = Topology(self.system.graph)
        self._demands: dict[tuple[str, int], object] = {}
        self._collectives: dict[tuple, tuple] = {}
        self.algorithm_of: dict[str, tuple[str, str]] = {}   # op name -> (collective, algorithm it ran)
        self.deps = {op.name: graph.deps(op.name) for op in self.ops}
        self.op_index = {op.name: i for i, op in enumerate(self.ops)}

    # ------------------------------------------------------------------ placement
    def node(self, stage: int, rank: int) -> str:
        return self.system.accelerators[stage * self.width + rank]

    def used_nodes(self) -> list[str]:
        """The accelerators the graph is placed on, in rank order."""
        return [self.node(s, r) for s in range(self.pp) for r in range(self.width)]

    def device(self, node: str):
        return self.system.devices[node]

    def groups(self, op) -> list[tuple[list[int], list[str]]]:
        """(ranks of the stage, member nodes) of every group that runs collective ``op``: blocks
        of ``group_size`` consecutive ranks, or for a send/recv rank ``r`` of the operator's stage
        with rank ``r`` of the peer stage (only the sender's rank is the operator's)."""
        s = op.stage
        if op.collective == "send_recv":
            peer = op.peer_stage if op.peer_stage is not None else s + 1
            if not 0 <= peer < self.pp:
                raise InputError(f"{op.name}: peer stage {peer} is outside 0..{self.pp - 1}", path="peer_stage")
            return [([r], [self.node(s, r), self.node(peer, r)]) for r in range(self.width)]
        return [(ranks, [self.node(s, r) for r in ranks])
                for ranks in (group_members(first, op.group_size, self.width)
                              for first in range(0, self.width, op.group_size))]

    # ------------------------------------------------------------------ costs (asked of roofline)
    def demands(self, op, node: str):
        """The cost model's demands of ``op`` on ``node``'s device, asked once per operator and
        device model (the cost model itself shares them between identical operators)."""
        dev = self.device(node)
        key = (op.name, id(dev))
        d = self._demands.get(key)
        if d is None:
            d = self._demands[key] = self.cost(op, dev)
        return d

    def collective(self, op, members: list[str]) -> tuple[CollectivePlan, list]:
        """(the cost model's plan of collective ``op`` over ``members``, its steps routed over the
        topology as phases), asked once per operator signature and group."""
        dev = self.device(members[0])
        key = (op_signature(op), id(dev), tuple(members))
        found = self._collectives.get(key)
        if found is None:
            switch = self.topology.reduction_switch(members)
            plan = self.plan_collective(op, dev, reducing_switch=switch is not None, preferred=self.algorithm)
            phases = self.topology.phases(plan.steps, plan.peers, op.collective, members, switch,
                                          merge=self.merge_steps)
            found = self._collectives[key] = (plan, phases)
        self.algorithm_of[op.name] = (op.collective, found[0].algorithm)
        return found

    # ------------------------------------------------------------------ building and playing
    def play(self, scale: Mapping[str, float] | None = None, seed: int = 0, jitter: float = 0.0,
             clock: Mapping[str, float] | None = None):
        """Build the engine tasks and run them. ``scale`` multiplies the rate of resource keys
        (``"memory:hbm"``, ``"compute:tensor"``, ``"link:nvlink"``) on every device and link, and
        ``"latency"`` divides every fixed time (launch overheads, latencies);
        ``jitter`` (relative standard deviation) perturbs each task's work, seeded; ``clock``
        (node -> fraction of the nominal clock, from a power cap) scales that node's compute rates.
        Returns (the engine's result, a :class:`TaskInfo` per task)."""
        playback = Playback(scale, seed, jitter, clock)
        for mb in range(self.microbatches):
            task_ids: dict[str, list[int]] = {}   # op name -> the task ending it on each rank
            for op in self.ops:
                add = self._add_collective if op.kind == "collective" else self._add_local
                task_ids[op.name] = add(playback, op, mb, task_ids)
        return playback.run()

    def _add_local(self, playback: Playback, op, mb: int, task_ids) -> list[int]:
        """One task per rank of the operator's stage, on its stream, for the operator's demands."""
        stream = STREAM_OF_KIND.get(op.kind, "compute")
        out = []
        for r in range(self.width):
            node = self.node(op.stage, r)
            d = self.demands(op, node)
            fixed = d.fixed_s / playback.latency_scale
            info = TaskInfo(op.name, op.kind, (node,), op.stage, mb, stream, d, fixed, d.energy_j, (node,))
            deps = {task_ids[x][r] for x in self.deps[op.name]}
            out.append(playback.add(playback.local_work(node, d.work, d.rates), fixed, deps, [(stream, node)], info))
        return out

    def _add_collective(self, playback: Playback, op, mb: int, task_ids) -> list[int]:
        """For each group: a chain of gang tasks (one per phase) over the members' comm streams."""
        out = [0] * self.width
        for ranks, members in self.groups(op):
            plan, phases = self.collective(op, members)
            deps = {task_ids[x][r] for x in self.deps[op.name] for r in ranks}
            last = self._add_phases(playback, op, mb, members, members[:len(ranks)], plan, phases, deps)
            for r in ranks:
                out[r] = last
        return out

    def _add_phases(self, playback: Playback, op, mb: int, members, workers, plan: CollectivePlan,
                    phases, deps) -> int:
        """The phases of one group's collective, one after the other: the first carries the
        workers' local work and the plan's overhead; each carries its link bytes (at the link
        efficiency the plan gives) and its routes' latency. Returns the last task."""
        streams = [("comm", m) for m in members]
        local: dict[str, float] = {}
        for m in workers:
            local.update(playback.local_work(m, plan.local_work, plan.demands.rates))
        prev = None
        for i, phase in enumerate(phases or [None]):
            work = dict(local) if i == 0 else {}
            carried = []
            if phase is not None:
                for rk, nbytes in phase.work.items():
                    rate = self.topology.capacity[rk] * plan.link_efficiency
                    work[playback.resource(rk)] = playback.seconds(link_kind_of(rk), nbytes, rate)
                    carried.append((rk, nbytes))
            fixed = ((plan.overhead_s if i == 0 else 0.0)
                     + (phase.latency_s if phase is not None else 0.0)) / playback.latency_scale
            info = TaskInfo(op.name, op.kind, tuple(members), op.stage, mb, "comm", plan.demands, fixed,
                            plan.demands.energy_j if i == 0 else 0.0, tuple(workers), tuple(carried))
            prev = playback.add(work, fixed, deps if prev is None else {prev}, streams, info)
        return prev


POWER_CAP_ROUNDS = 40       # clock updates at most (each replays the plan); converges in a few
POWER_CAP_TOLERANCE = 1e-3  # a capped device's average power within 0.1% above its TDP
POWER_CAP_SLACK = 2e-3      # ... and not more than 0.2% below it (the clock is not lowered needlessly)
POWER_CAP_SECANT_ROUNDS = 3  # proportional updates per device before it falls back to bisection


def _next_clock(c: float, power: float, base: float, tdp: float, bracket: list[float], rounds: int) -> float:
    """The next clock fraction of a device drawing ``power`` (``base`` of it static and active) at
    clock ``c``. The proportional update ``c x (tdp - base) / dynamic`` is exact for a
    compute-bound device; a partly memory-bound one barely slows at first, so after a few updates
    (or when the update leaves the bracket of clocks known to draw more and less than the TDP)
    the bracket is halved instead, which always converges."""
    proposal = c * (tdp - base) / (power - base)
    lo, hi = bracket
    if rounds >= POWER_CAP_SECANT_ROUNDS or not lo < proposal < hi:
        proposal = 0.5 * (lo + hi)
    return proposal


def _capped(plan, result, seed: int, jitter: float, scale: dict):
    """``result`` with every device whose average power exceeds its TDP slowed to draw it.

    A device at its power limit lowers its clock (DVFS): its compute engines run at a fraction
    ``c`` of their rate, its memory and links do not. The energy of the work stays what the cost
    model says; the time grows, so static and active power spread over a longer step and the
    dynamic power falls. Average power falls with ``c``, so ``c`` is found per device by
    :func:`_next_clock` within a bracket of clocks known to draw too much and too little, until
    the power is within :data:`POWER_CAP_TOLERANCE` above and :data:`POWER_CAP_SLACK` below the
    TDP. A device whose static and active power alone exceed its TDP cannot be helped by its
    clock and stays flagged in ``over_tdp``.
    """
    clock: dict[str, float] = {}
    brackets: dict[str, list[float]] = {}
    rounds: dict[str, int] = {}
    uncapped = {n: result.avg_power_w[n] for n in result.over_tdp}
    for _ in range(POWER_CAP_ROUNDS):
        moved = False
        for n in result.used_nodes:
            tdp, power = result.tdp_w[n], result.avg_power_w[n]
            over = bool(tdp) and power > tdp * (1 + POWER_CAP_TOLERANCE)
            under = clock.get(n, 1.0) < 1.0 and power < tdp * (1 - POWER_CAP_SLACK)
            if not (over or under):
                continue
            base = power - result.dynamic_w(n)
            if base >= tdp or power <= base:
                continue
            c = clock.get(n, 1.0)
            bracket = brackets.setdefault(n, [0.0, 1.0])
            bracket[1 if over else 0] = c
            if bracket[1] - bracket[0] < 1e-3 * bracket[1]:
                # another device's clock moved this one's step: the old bracket no longer holds
                bracket[:] = [0.0, c] if over else [c, 1.0]
            clock[n] = min(1.0, _next_clock(c, power, base, tdp, bracket, rounds.get(n, 0)))
            rounds[n] = rounds.get(n, 0) + 1
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
             collective_fn: Callable | None = None, spill: bool = True, runtime=None, power_cap: bool = True):
    """Play ``graph`` over ``hardware`` (a Device, a System, or a catalog id / YAML path).

    ``seed`` and ``jitter`` (relative spread of each operator's work, 0 = none) make runs with
    stragglers reproducible; ``scale`` multiplies resource rates (what-ifs); ``algorithm`` forces
    a collective algorithm on the collectives it implements (the others, and by default all,
    get the library's choice for the topology); ``cost_fn`` replaces ``roofline.cost`` and
    ``collective_fn`` :func:`roofline.collectives.plan_collective` (for tests and calibration
    studies). Returns a :class:`SimResult`.

    Memory capacity is checked first (:mod:`simulator.memory`): what does not fit in a device's
    main memory spills to its host or CXL tier (``SimResult.memory`` says what went where, its
    ``warnings`` say it in words), or, with ``spill=False`` or no tier to spill to, the call
    raises :class:`~hwmodels.errors.InputError`.

    ``runtime`` (a profile name such as ``vllm-v0.6``, a YAML file, or a
    :class:`~hwmodels.runtime.RuntimeProfile`; default none) runs the step as that engine does
    (:func:`workloads.runtime.with_runtime`: its launch costs, unfused kernels and host work
    become operators the cost model prices; a profile whose GEMMs accumulate in fp16 runs them at
    the devices' fp16-accumulate rates, :func:`hwmodels.with_fp16_accumulate`;
    ``SimResult.runtime`` names it).

    ``power_cap`` (default on): a device whose average power would exceed its TDP runs at a
    lower clock instead (:func:`_capped`; ``SimResult.power_cap`` gives the clock fraction and
    the power it would have drawn); off, such a device is only listed in ``over_tdp``.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}", path="seed")
    if not (jitter >= 0 and math.isfinite(jitter)):
        raise InputError(f"jitter must be a finite non-negative number, got {jitter!r}", path="jitter")
    options = {"cost_fn": cost_fn, "collective_fn": collective_fn, "merge_steps": merge_steps,
               "algorithm": algorithm}
    profile = load_runtime(runtime)
    graph = with_runtime(graph, profile)
    if profile.gemm_accumulate == "fp16":
        if isinstance(hardware, (str, bytes)) or hasattr(hardware, "__fspath__"):
            hardware = hwmodels.load_hardware(hardware)
        hardware = hwmodels.with_fp16_accumulate(hardware)
    plan = Plan(graph, hardware, **options)
    stage_nodes = {s: [plan.node(s, r) for r in range(plan.width)] for s in range(plan.pp)}
    placed, memory = place(graph, stage_nodes, plan.system.devices, spill=spill)
    if placed is not graph:
        plan = Plan(placed, plan.system, **options)
    engine_result, infos = plan.play(scale, seed, jitter)
    result = SimResult.build(plan, engine_result, infos, seed=seed, jitter=jitter, scale=dict(scale or {}))
    if power_cap and result.over_tdp:
        result = _capped(plan, result, seed, jitter, dict(scale or {}))
    result.memory = memory
    result.runtime = profile.name
    return result
