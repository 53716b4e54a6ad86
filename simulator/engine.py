"""The fluid processor-sharing engine: tasks with demand vectors played over shared resources.

A *resource* is anything with a rate (a compute engine, a memory level, one direction of a
link): ``capacity`` units per second. A *task* carries a demand vector ``{resource: amount}``
and a fixed latency. It occupies its streams from launch to end: first the fixed latency
(kernel launch, link latency), then the flow phase, in which all its demands progress
together at one rate ``x`` (fraction of the task per second), so that alone it takes exactly
``max_r(w_r / c_r)`` plus its fixed latency: the analytic roofline time.

Sharing is *max-min fair* by progressive filling (water-filling) over resource shares: a common
level rises, every unfrozen task holds that share of the resource it needs most (and
proportionally less of its others), and when a resource saturates its tasks freeze while the
rest keep rising into what they leave (dominant-resource fairness; see :func:`_max_min_rates`).
On a single resource this is exact processor sharing (equal shares). Unlike a naive equal split
of every resource, capacity a task cannot use because another resource limits it (the HBM share
of a compute-bound GEMM) goes to the others. The allocation is unique and computed exactly,
whenever a task enters or leaves its flow phase, only for the tasks connected to the change
through shared resources (no time steps).

SimPy provides the clock: one scheduler process sleeps until the next completion
(``env.timeout``), and is interrupted when a task is submitted from outside while it sleeps.

Streams are in-order queues (like CUDA streams): a task starts when all its dependencies
have finished and it is at the head of every stream it names, in the order tasks were added.
A task naming several streams (a collective across a group of devices) holds them all.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

import simpy

from hwmodels.errors import InputError

# The in-order streams each device offers (compute, communication, copies), as CUDA has.
STREAMS = ("compute", "comm", "copy", "host")

_FIXED_END = 0
_FLOW_END = 1
# Relative tolerance for rates that tie during progressive filling.
_TIE = 1e-12
# Who hears how far engine runs have got (see :func:`progress`); None: nobody.
_PROGRESS: ContextVar[Callable[[int, int], None] | None] = ContextVar("engine_progress", default=None)


@contextmanager
def progress(callback: Callable[[int, int], None]):
    """Within the block, every engine run calls ``callback(tasks_done, tasks_total)`` about every
    1% of its tasks and once at its end (a progress bar listens; the engine never prints)."""
    token = _PROGRESS.set(callback)
    try:
        yield
    finally:
        _PROGRESS.reset(token)


@dataclass
class EngineResult:
    """What happened to each task (indexed by task id) and to each resource.

    ``limit[i]`` is the resource that limited task ``i``'s flow phase for the longest time
    (None for a task with no work); ``gate[i]`` is the task whose end released task ``i``
    (its last dependency or stream predecessor to finish; -1 if none): following ``gate``
    back from the last task gives the critical path, whose durations sum to the makespan.
    """

    start_s: list[float]
    end_s: list[float]
    flow_start_s: list[float]
    limit: list[str | None]
    gate: list[int]
    makespan_s: float
    events: int
    work_done: dict[str, float] = field(default_factory=dict)
    capacities: dict[str, float] = field(default_factory=dict)

    def utilisation(self) -> dict[str, float]:
        """Average fraction of each resource's capacity in use over the makespan."""
        if self.makespan_s <= 0:
            return {r: 0.0 for r in self.capacities}
        return {r: self.work_done.get(r, 0.0) / (c * self.makespan_s) for r, c in self.capacities.items()}


class FluidEngine:
    """Event-driven fluid processor-sharing simulation of tasks over shared resources.

    Add tasks in issue order with :meth:`add` (dependencies must already have been added),
    then :meth:`run`. Task ids are consecutive integers from 0.
    """

    def __init__(self, capacities: Mapping[str, float] | None = None, env: simpy.Environment | None = None):
        self.env = env or simpy.Environment()
        self.capacity: dict[str, float] = {}
        self._users: dict[str, set[int]] = {}
        # Per task (lists indexed by id keep memory flat for large graphs).
        self._work: list[dict[str, float]] = []
        self._fixed: list[float] = []
        self._pending: list[int] = []          # unfinished dependencies
        self._children: list[list[int] | None] = []
        self._streams: list[tuple] = []
        self._start: list[float] = []
        self._end: list[float] = []
        self._flow_start: list[float] = []
        self._limit: list[str | None] = []
        self._gate: list[int] = []
        self._gate_t: list[float] = []
        self._queues: dict[Hashable, deque] = {}
        # Active flows: task -> [fraction remaining, rate, t_last, version, limiting resource].
        self._flows: dict[int, list] = {}
        self._limit_time: dict[int, dict[str, float]] = {}
        self._norm: dict[int, dict[str, float]] = {}     # active flow -> seconds of each resource
        self._heap: list[tuple] = []
        self._seq = 0
        self._now = 0.0
        self._events = 0
        self._done = 0
        self._work_done: dict[str, float] = {}
        self._proc = None
        self._sleeping = False
        self._on_progress = None
        self._tick = 1
        for key, cap in (capacities or {}).items():
            self.add_resource(key, cap)

    # ------------------------------------------------------------------ building
    def add_resource(self, key: str, capacity: float) -> None:
        """Declare resource ``key`` with ``capacity`` units/s (> 0)."""
        if not capacity > 0 or capacity == float("inf"):
            raise InputError(f"resource capacity must be a positive finite rate, got {capacity!r}", path=key)
        self.capacity[key] = float(capacity)
        self._users.setdefault(key, set())

    def add(self, work: Mapping[str, float] | None = None, fixed_s: float = 0.0,
            deps: Iterable[int] = (), streams: Iterable[Hashable] = ()) -> int:
        """Add a task; returns its id. ``work`` maps declared resources to amounts (units)."""
        tid = len(self._work)
        w = {}
        for key, amount in (work or {}).items():
            if key not in self.capacity:
                raise InputError(f"task {tid} demands undeclared resource '{key}'")
            if not amount >= 0 or amount == float("inf"):
                raise InputError(f"task {tid}: demand on '{key}' must be finite and >= 0, got {amount!r}")
            if amount > 0:
                w[key] = float(amount)
        if not fixed_s >= 0 or fixed_s == float("inf"):
            raise InputError(f"task {tid}: fixed latency must be finite and >= 0, got {fixed_s!r}")
        streams = tuple(dict.fromkeys(streams))
        self._work.append(w)
        self._fixed.append(float(fixed_s))
        self._children.append(None)
        self._streams.append(streams)
        self._start.append(-1.0)
        self._end.append(-1.0)
        self._flow_start.append(-1.0)
        self._limit.append(None)
        self._gate.append(-1)
        self._gate_t.append(0.0)
        pending = 0
        for d in set(deps):
            if not 0 <= d < tid:
                raise InputError(f"task {tid}: dependency {d} is not an earlier task")
            if self._end[d] >= 0:
                self._note_gate(tid, d)
                continue
            pending += 1
            kids = self._children[d]
            if kids is None:
                self._children[d] = [tid]
            else:
                kids.append(tid)
        self._pending.append(pending)
        for s in streams:
            self._queues.setdefault(s, deque()).append(tid)
        if self._proc is not None and not self._proc.is_alive:
            self.start()
        elif self._proc is not None and self._ready(tid):
            self._now = self.env.now
            self._launch(tid)
            if self._sleeping:
                self._proc.interrupt()
        return tid

    # ------------------------------------------------------------------ running
    def start(self) -> simpy.Process:
        """Start the scheduler process in ``env`` (for use inside a larger SimPy model)."""
        if self._proc is None or not self._proc.is_alive:
            self._now = self.env.now
            self._proc = self.env.process(self._scheduler())
            for tid in range(len(self._work)):
                if self._start[tid] < 0 and self._ready(tid):
                    self._launch(tid)
        return self._proc

    def run(self) -> EngineResult:
        """Play every task to completion; returns the result."""
        self._on_progress = _PROGRESS.get()
        self._tick = max(1, len(self._work) // 100)
        self.env.run(until=self.start())
        if self._done < len(self._work):
            # Cannot happen: dependencies and stream predecessors are always earlier tasks.
            raise RuntimeError("engine stopped with unfinished tasks")
        return self.result()

    def result(self) -> EngineResult:
        """The result so far (complete once every task has ended)."""
        return EngineResult(
            start_s=self._start, end_s=self._end, flow_start_s=self._flow_start, limit=self._limit,
            gate=self._gate, makespan_s=max(self._end, default=0.0), events=self._events,
            work_done=dict(self._work_done), capacities=dict(self.capacity))

    def _scheduler(self):
        heap = self._heap
        flows = self._flows
        while heap:
            top = heap[0]
            if top[2] == _FLOW_END and (top[3] not in flows or flows[top[3]][3] != top[4]):
                heapq.heappop(heap)  # superseded by a later rate change: no need to wake for it
                continue
            t_next = top[0]
            if t_next > self._now:
                self._sleeping = True
                try:
                    yield self.env.timeout(t_next - self.env.now)
                    self._now = t_next
                except simpy.Interrupt:
                    # A task was submitted from outside: it is already launched at env.now.
                    self._now = max(self._now, self.env.now)
                self._sleeping = False
            self._step()

    def _step(self) -> None:
        """Handle every event due now, then recompute the rates the changes touched."""
        heap, now = self._heap, self._now
        dirty: set[str] = set()
        while heap and heap[0][0] <= now:
            _, _, kind, tid, version = heapq.heappop(heap)
            if kind == _FIXED_END:
                self._events += 1
                self._begin_flow(tid, dirty)
            else:
                flow = self._flows.get(tid)
                if flow is None or flow[3] != version:
                    continue  # superseded by a later rate change
                self._events += 1
                self._finish_flow(tid, dirty)
        if dirty:
            self._reallocate(dirty)

    # ------------------------------------------------------------------ task lifecycle
    def _ready(self, tid: int) -> bool:
        if self._pending[tid]:
            return False
        return all(self._queues[s][0] == tid for s in self._streams[tid])

    def _launch(self, tid: int) -> None:
        self._start[tid] = self._now
        self._seq += 1
        heapq.heappush(self._heap, (self._now + self._fixed[tid], self._seq, _FIXED_END, tid, 0))

    def _begin_flow(self, tid: int, dirty: set[str]) -> None:
        self._flow_start[tid] = self._now
        work = self._work[tid]
        if not work:
            self._complete(tid)
            return
        self._flows[tid] = [1.0, 0.0, self._now, 0, None]
        cap = self.capacity
        self._norm[tid] = {r: w / cap[r] for r, w in work.items()}
        self._limit_time[tid] = {}
        for r in work:
            self._users[r].add(tid)
            dirty.add(r)

    def _finish_flow(self, tid: int, dirty: set[str]) -> None:
        flow = self._flows.pop(tid)
        del self._norm[tid]
        lt = self._limit_time.pop(tid)
        if flow[4] is not None:
            lt[flow[4]] = lt.get(flow[4], 0.0) + (self._now - flow[2])
        self._limit[tid] = max(lt, key=lt.get) if lt else None
        wd = self._work_done
        for r, w in self._work[tid].items():
            self._users[r].discard(tid)
            dirty.add(r)
            wd[r] = wd.get(r, 0.0) + w
        self._work[tid] = {}  # done: its demands are accounted for, free them
        self._complete(tid)

    def _note_gate(self, tid: int, by: int) -> None:
        if self._gate[tid] < 0 or self._end[by] >= self._gate_t[tid]:
            self._gate[tid] = by
            self._gate_t[tid] = self._end[by]

    def _complete(self, tid: int) -> None:
        """Mark ``tid`` done at now and launch whatever it releases."""
        self._end[tid] = self._now
        self._done += 1
        if self._on_progress is not None and (self._done % self._tick == 0 or self._done == len(self._work)):
            self._on_progress(self._done, len(self._work))
        released = []
        for s in self._streams[tid]:
            q = self._queues[s]
            q.popleft()
            if q:
                self._note_gate(q[0], tid)
                released.append(q[0])
        kids = self._children[tid]
        self._children[tid] = None  # free memory as we go
        for k in kids or ():
            self._pending[k] -= 1
            self._note_gate(k, tid)
            if not self._pending[k]:
                released.append(k)
        for k in released:
            if self._start[k] < 0 and self._ready(k):
                self._launch(k)

    # ------------------------------------------------------------------ sharing
    def _reallocate(self, dirty: set[str]) -> None:
        """Recompute max-min fair rates for the flows connected to the ``dirty`` resources."""
        users, works, now = self._users, self._work, self._now
        # Connected component(s) through shared resources.
        comp: set[int] = set()
        seen_r = set(dirty)
        stack = [r for r in dirty]
        while stack:
            r = stack.pop()
            for t in users[r]:
                if t in comp:
                    continue
                comp.add(t)
                for r2 in works[t]:
                    if r2 not in seen_r:
                        seen_r.add(r2)
                        stack.append(r2)
        if not comp:
            return
        flows, limit_time = self._flows, self._limit_time
        # Bring every affected flow's progress up to now.
        for t in comp:
            f = flows[t]
            if f[1] > 0:
                f[0] -= f[1] * (now - f[2])
                if f[4] is not None:
                    lt = limit_time[t]
                    lt[f[4]] = lt.get(f[4], 0.0) + (now - f[2])
            f[2] = now
        rates = _max_min_rates(dict.fromkeys(comp), users, self.capacity, self._norm)
        for t, (x, lim) in rates.items():
            f = flows[t]
            f[4] = lim
            if x == f[1]:
                continue  # same rate: its completion event still stands
            f[1] = x
            f[3] += 1
            if not x > 0:
                raise RuntimeError(f"task {t} got no share of its resources")  # engine invariant
            self._seq += 1
            heapq.heappush(self._heap, (now + max(f[0], 0.0) / x, self._seq, _FLOW_END, t, f[3]))


def _max_min_rates(works: Mapping[int, Mapping[str, float]], users: Mapping[str, Iterable[int]],
                   capacity: Mapping[str, float],
                   normalized: Mapping[int, dict[str, float]] | None = None) -> dict[int, tuple[float, str]]:
    """Max-min fair progress rates by progressive filling: task -> (fraction per second, the
    saturated resource that froze it).

    Shares are fractions of a resource (``u = work / capacity`` is the seconds a task needs of
    it), so demands in different units compare. A common level ``L`` rises; every unfrozen task
    progresses at ``x = L / max_r u_r``, i.e. holds share ``L`` of the resource it needs most and
    proportionally less of the others (the brief's ``min_r(s_r / u_r)`` with every ``s_r``
    filled to one level: dominant-resource fairness). When a resource saturates, the tasks on
    it freeze; the others keep rising into what the frozen ones leave, so a task limited
    elsewhere never holds back capacity it cannot use. Exact, unique, at most one round per
    resource; on one resource it is processor sharing, and a task alone gets ``min_r 1/u_r``.
    """
    norm: dict[int, dict[str, float]] = {}
    dom: dict[int, float] = {}
    load: dict[str, float] = {}          # sum over unfrozen tasks on r of u / D (share per unit level)
    for t, wk in works.items():
        u = normalized[t] if normalized is not None else {r: w / capacity[r] for r, w in wk.items()}
        d = max(u.values())
        norm[t], dom[t] = u, d
        for r, ur in u.items():
            load[r] = load.get(r, 0.0) + ur / d
    used = dict.fromkeys(load, 0.0)      # share held by frozen tasks
    unfrozen = set(works)
    rates: dict[int, tuple[float, str]] = {}
    while unfrozen:
        level, sat = float("inf"), None
        for r, a in load.items():
            if a > 0:
                lv = (1.0 - used[r]) / a
                if lv < level:
                    level, sat = lv, r
        if sat is None:
            raise RuntimeError("unfrozen tasks on no resource")  # engine invariant
        level = max(level, 0.0)
        for t in sorted(users[sat]):
            if t not in unfrozen:
                continue
            unfrozen.discard(t)
            x = level / dom[t]
            rates[t] = (x, sat)
            for r, ur in norm[t].items():
                used[r] += ur * x
                load[r] -= ur / dom[t]
        load[sat] = 0.0
    return rates
