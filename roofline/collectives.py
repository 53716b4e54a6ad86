"""Collective algorithms: how an all-reduce (etc.) decomposes into steps of link transfers.

An algorithm turns ``(collective, payload_bytes, group_size)`` into a list of :class:`Step`: in
each step every rank sends ``bytes_per_rank`` to a peer (and receives as much), after a latency.
Steps of one entry run one after the other (``count`` times). An algorithm also says who sends
to whom in each step (its *peers*), so that a new algorithm is one :class:`Algorithm` registered in
:data:`ALGORITHMS` (a :class:`~hwmodels.registry.Registry`), in this file.

:func:`plan_collective` is the one place that chooses the algorithm of a collective and describes
it completely (:class:`CollectivePlan`: steps, per-hop link latency, link efficiency, fixed
overhead and the local memory/compute demands). The cost model's ``cost_collective`` returns its
``demands``; the simulator routes its steps over a system's topology with its peers and plays them. ``payload_bytes`` is the per-rank buffer as nccl-tests' "size" (for
all-gather the gathered output, for reduce-scatter the input).

Bytes per rank per direction (N ranks, payload P), the textbook figures:

============== ======================= ============================ =============================
collective     ring                    tree (double binary)         in_switch (NVLS/SHARP)
============== ======================= ============================ =============================
all_reduce     2 (N-1)/N P, 2(N-1) st  ~2 P (reduce + broadcast),   (1 + 1/N) P each way:
                                       2 ceil(log2 N) steps         1 step, 2 hops of latency
all_gather     (N-1)/N P, N-1 steps    -                            P one way, 1 step (multicast)
reduce_scatter (N-1)/N P, N-1 steps    -                            P one way, 1 step
all_to_all     (N-1)/N P, N-1 steps    -                            -
send_recv      P, 1 step               P, 1 step                    -
============== ======================= ============================ =============================

In-switch (NCCL's NVLS): a rank's multimem.ld_reduce of its 1/N of the result makes the switch
pull that chunk from every rank, so each rank sends P (its share of every chunk) and receives P/N;
the multimem.st of the reduced chunk sends P/N and the multicast brings back P: (1 + 1/N) P each
way (NVIDIA/nccl issues 828 and 2072). An in-switch all-gather or reduce-scatter moves P one way
and P/N the other (NCCL's maintainer, NVIDIA/nccl issue 1506).

A runtime's own all-reduce kernel (vLLM's ``custom_all_reduce``, TensorRT-LLM's custom all-reduce;
:class:`hwmodels.runtime.AllReduceKernel`) replaces NCCL below its size limits with ``one_shot``
(every rank reads the whole buffer of each of its N-1 peers and reduces: (N-1) P each way, 1 step)
or ``two_shot`` (a reduce-scatter then an all-gather by peer reads: (N-1)/N P each way per step,
2 steps). Such a kernel has no chunk pipeline to fill: it costs its own per-call latency (its
barriers: :attr:`Algorithm.call_latency_s`, or the runtime's figure) instead of NCCL's startup.

A collective run by a library over NVLink reaches the library's fraction of the line rate and
takes a startup before its pipeline streams (:func:`roofline.efficiency.collective_link_efficiency`,
:func:`roofline.efficiency.collective_startup_s`); the plan carries both.

nccl-tests reports "bus bandwidth" = algbw x factor with the ring's factor (2(N-1)/N for
all-reduce, (N-1)/N for all-gather/reduce-scatter), so on an ideal ring bus bandwidth equals the
link bandwidth (:func:`bus_factor`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from hwmodels.errors import InputError, unknown_name
from hwmodels.registry import Registry
from workloads.operators import COLLECTIVES

from .builder import DemandsBuilder
from .demands import Demands
from .efficiency import collective_link_efficiency, collective_startup_s

REDUCING = ("all_reduce", "reduce_scatter")   # collectives that add up what the ranks send


@dataclass(frozen=True)
class Step:
    """``count`` consecutive steps; in each every rank sends (and receives) ``bytes_per_rank``
    over one link hop and waits ``hops`` link latencies."""

    bytes_per_rank: float
    count: int
    hops: int = 1

    def latency_s(self, link_latency_s: float) -> float:
        """Latency of all ``count`` steps over a link of ``link_latency_s`` per hop."""
        return self.count * self.hops * link_latency_s


@dataclass
class Transfer:
    """``bytes`` from node ``src`` to node ``dst`` in one step."""

    src: str
    dst: str
    bytes: float


# Peers of an algorithm: (collective, step index, members, bytes per rank, switch or None) ->
# the transfers of that step, each a list of legs played one after the other (an in-switch
# reduction goes up to the switch, then down).
Peers = Callable[[str, int, list[str], float, "str | None"], list[list[Transfer]]]


@dataclass(frozen=True)
class Algorithm:
    """A collective algorithm: which collectives it implements, its step decomposition
    (``steps_fn(collective, payload_bytes, group_size)``) and who sends to whom in each step
    (``peers``). ``in_network``: the network (a switch) reduces, so the ranks neither read their
    local chunk to reduce it nor spend FLOPs on it. ``call_latency_s``: an engine's own kernel
    (not a library's pipeline): its fixed time per call (its barriers) in place of the library's
    pipeline startup (None: a library's). Registered by name in :data:`ALGORITHMS`."""

    collectives: tuple[str, ...]
    steps_fn: Callable[[str, float, int], list[Step]]
    peers: Peers
    in_network: bool = False
    call_latency_s: float | None = None


ALGORITHMS: Registry[Algorithm] = Registry("collective algorithm")


# -- peer patterns --------------------------------------------------------------------------------
def _send(members: list[str], nbytes: float) -> list[list[Transfer]]:
    # point to point: the first member sends to the second
    return [[Transfer(members[0], members[1], nbytes)]]


def _shifted(members: list[str], nbytes: float, shift: int) -> list[list[Transfer]]:
    # every rank sends to the rank ``shift`` ahead
    n = len(members)
    return [[Transfer(members[i], members[(i + shift) % n], nbytes)] for i in range(n)]


def _ring_peers(collective: str, index: int, members: list[str], nbytes: float, switch) -> list[list[Transfer]]:
    if collective == "send_recv":
        return _send(members, nbytes)
    if collective == "all_to_all":
        # pairwise exchange: in step j every rank sends to the rank j+1 ahead
        return _shifted(members, nbytes, 1 + index)
    return _shifted(members, nbytes, 1)


def _tree_peers(collective: str, index: int, members: list[str], nbytes: float, switch) -> list[list[Transfer]]:
    if collective == "send_recv":
        return _send(members, nbytes)
    # tree phases as recursive doubling: in level j every rank exchanges with the rank 2^j away
    n = len(members)
    return _shifted(members, nbytes, 1 << (index % max(1, (n - 1).bit_length())))


def _all_pairs_peers(collective: str, index: int, members: list[str], nbytes: float,
                     switch) -> list[list[Transfer]]:
    # peer reads: every rank's step bytes come in equal parts from each of the others
    n = len(members)
    share = nbytes / max(1, n - 1)
    return [[Transfer(members[j], members[i], share)] for i in range(n) for j in range(n) if j != i]


def _in_switch_peers(collective: str, index: int, members: list[str], nbytes: float,
                     switch) -> list[list[Transfer]]:
    if switch is None:
        raise InputError("in-switch reduction needs a switch with in_network_reduction joining the group",
                         path="algorithm")
    return [[Transfer(m, switch, nbytes), Transfer(switch, m, nbytes)] for m in members]


# -- step decompositions --------------------------------------------------------------------------
def _ring(collective: str, payload: float, n: int) -> list[Step]:
    if collective == "send_recv":
        return [Step(payload, 1)]
    if n == 1:
        return []
    chunk = payload / n
    if collective == "all_reduce":
        # reduce-scatter then all-gather, each N-1 steps of one chunk
        return [Step(chunk, n - 1), Step(chunk, n - 1)]
    # all_gather, reduce_scatter, all_to_all (pairwise exchange): N-1 steps of one chunk
    return [Step(chunk, n - 1)]


def _tree(collective: str, payload: float, n: int) -> list[Step]:
    if collective == "send_recv":
        return [Step(payload, 1)]
    if n == 1:
        return []
    depth = math.ceil(math.log2(n))
    # Pipelined reduce up and broadcast down a tree of depth log2 N: the payload crosses each
    # rank's link once per phase, and each phase waits one latency per level.
    return [Step(payload / depth, depth), Step(payload / depth, depth)]


def _in_switch(collective: str, payload: float, n: int) -> list[Step]:
    if n == 1:
        return []
    if collective == "all_reduce":
        # ld_reduce pulls every rank's share of each chunk (P out, P/N back), st multicasts the
        # reduced chunks (P/N out, P back): (1 + 1/N) P per direction, through two hops.
        return [Step(payload * (1.0 + 1.0 / n), 1, hops=2)]
    # multicast all-gather / in-switch reduce-scatter: P one way (and P/N the other)
    return [Step(payload, 1, hops=2)]


def _one_shot(collective: str, payload: float, n: int) -> list[Step]:
    # every rank reads each peer's whole buffer: (N-1) P in, and as much read out of it
    return [] if n == 1 else [Step(payload * (n - 1), 1)]


def _two_shot(collective: str, payload: float, n: int) -> list[Step]:
    # reduce-scatter (read the own 1/N of every peer) then all-gather (read every peer's reduced 1/N)
    return [] if n == 1 else [Step(payload * (n - 1) / n, 2)]


# An engine kernel's own time per call when its runtime gives none: vLLM's custom all-reduce on
# 8 H100 took 10.1 us eagerly for 512 fp32 elements (sgl-project/sglang PR 2904, unit-test table),
# less what the plan charges anyway: two launches (the copy into its IPC buffer and the kernel) at
# the catalog's 4 us H100 estimate, the NVLink's access latency and one hop (1 us each,
# estimates): 0.1 us of barriers.
ENGINE_KERNEL_LATENCY_S = 0.1e-6

ALGORITHMS.register("ring", Algorithm(COLLECTIVES, _ring, _ring_peers),
                    help="bandwidth-optimal ring / pairwise exchange")
ALGORITHMS.register("tree", Algorithm(("all_reduce", "send_recv"), _tree, _tree_peers),
                    help="double binary tree: log-depth latency, for small all-reduces")
ALGORITHMS.register("in_switch", Algorithm(("all_reduce", "all_gather", "reduce_scatter"), _in_switch,
                                           _in_switch_peers, in_network=True),
                    help="reduction/multicast in the switch (NVLink SHARP, InfiniBand SHARP)")
ALGORITHMS.register("one_shot", Algorithm(("all_reduce",), _one_shot, _all_pairs_peers,
                                          call_latency_s=ENGINE_KERNEL_LATENCY_S),
                    help="an engine's one-shot all-reduce (vLLM custom all-reduce, TensorRT-LLM): every rank "
                         "reads all peers' buffers, 1 step")
ALGORITHMS.register("two_shot", Algorithm(("all_reduce",), _two_shot, _all_pairs_peers,
                                          call_latency_s=ENGINE_KERNEL_LATENCY_S),
                    help="an engine's two-shot all-reduce: reduce-scatter and all-gather by peer reads, 2 steps")


def _implementing(algorithm: str, collective: str, path: str = "algorithm") -> Algorithm:
    """The registered ``algorithm``, which must implement ``collective``."""
    algo = ALGORITHMS.get(algorithm, path=path)
    if collective not in algo.collectives:
        raise InputError(f"algorithm '{algorithm}' does not implement {collective}; it implements "
                         f"{', '.join(algo.collectives)}", path=path, suggestion="ring")
    return algo


def steps(collective: str, payload_bytes: float, group_size: int, algorithm: str = "ring") -> list[Step]:
    """The link-transfer steps of one rank for ``collective`` of ``payload_bytes`` over
    ``group_size`` ranks with ``algorithm``."""
    if collective not in COLLECTIVES:
        raise unknown_name("collective", collective, COLLECTIVES, path="collective")
    algo = _implementing(algorithm, collective)
    if not (group_size >= 1 and int(group_size) == group_size):
        raise InputError(f"group_size must be a positive integer, got {group_size!r}", path="group_size")
    if not (payload_bytes >= 0 and math.isfinite(payload_bytes)):
        raise InputError(f"payload_bytes must be finite and >= 0, got {payload_bytes!r}", path="payload_bytes")
    return algo.steps_fn(collective, float(payload_bytes), int(group_size))


def link_bytes(step_list: list[Step]) -> float:
    """Bytes each rank sends (and receives) over its link, in all steps."""
    return sum(s.bytes_per_rank * s.count for s in step_list)


def latency_s(step_list: list[Step], link_latency_s: float) -> float:
    """Latency the steps add: one per hop of every step."""
    return sum(s.latency_s(link_latency_s) for s in step_list)


def bus_factor(collective: str, group_size: int) -> float:
    """nccl-tests' bus-bandwidth factor: busbw = algbw x factor."""
    n = group_size
    if collective == "all_reduce":
        return 2 * (n - 1) / n
    if collective in ("all_gather", "reduce_scatter", "all_to_all"):
        return (n - 1) / n
    return 1.0


def choose_algorithm(op, *, reducing_switch: bool, algorithm: str | None = None,
                     preferred: str | None = None, kernel=None, link=None) -> str:
    """The algorithm collective ``op`` runs, the one place it is chosen:

    1. ``algorithm``, demanded by the caller (``ridgeline op --algorithm``): it must implement
       the collective;
    2. the operator's own ``algorithm`` attribute (a graph may pin one, e.g. a measurement taken
       with NVLS off);
    3. ``preferred`` (``simulate(algorithm=...)``) where it implements the collective;
    4. the runtime's own all-reduce ``kernel`` (:class:`hwmodels.runtime.AllReduceKernel`) for
       an all-reduce over NVLink (``link``) below its size limits for the group;
    5. what a library (NCCL) picks for large messages: in-switch reduction where a
       ``reducing_switch`` joins the ranks and in-switch implements the collective, else the ring.
    """
    collective = op.collective
    if algorithm:
        _implementing(algorithm, collective)
        return algorithm
    pinned = getattr(op, "algorithm", None)
    if pinned:
        return pinned
    if preferred and collective in ALGORITHMS.get(preferred, path="algorithm").collectives:
        return preferred
    if kernel is not None and collective == "all_reduce" and link is not None and link.kind == "nvlink":
        engine = kernel.algorithm(op.payload_bytes, int(op.group_size), op.dtype)
        if engine:
            return engine
    if reducing_switch and "in_switch" in ALGORITHMS and collective in ALGORITHMS["in_switch"].collectives:
        return "in_switch"
    return "ring"


# -- the plan -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CollectivePlan:
    """Everything a collective costs, for one rank, over a device's scale-up link.

    ``steps`` (bytes per rank per step, count, hops) and ``peers`` say what crosses the links;
    each hop waits ``link_latency_s`` and the link gives ``link_efficiency`` of its bandwidth.
    ``overhead_s`` is the fixed time apart from the steps' hop latencies (kernel launch, the
    largest access latency). ``demands`` is the analytic cost (:class:`~roofline.demands.Demands`:
    link bytes, memory traffic, reduction FLOPs, ``overhead_s`` + every hop's latency, energy);
    :attr:`local_work` is its part that stays on the rank (memory and compute)."""

    collective: str
    algorithm: str
    group_size: int
    steps: tuple[Step, ...]
    link: str
    link_latency_s: float
    link_efficiency: float
    overhead_s: float
    demands: Demands

    @property
    def peers(self) -> Peers:
        """Who sends to whom in each step (the algorithm's peer pattern)."""
        return ALGORITHMS[self.algorithm].peers

    @property
    def local_work(self) -> dict[str, float]:
        """Memory and compute work on each rank (resource key -> amount): the demands less links."""
        return {k: w for k, w in self.demands.work.items() if w > 0 and not k.startswith("link:")}


def plan_collective(op, device, *, reducing_switch: bool | None = None, algorithm: str | None = None,
                    preferred: str | None = None, kernel=None) -> CollectivePlan:
    """The :class:`CollectivePlan` of collective ``op`` on one rank of ``device``.

    ``reducing_switch``: whether a switch with in-network reduction joins the ranks (the
    simulator knows from the topology; ``None``: as the device's scale-up link declares).
    ``algorithm``, ``preferred`` and ``kernel`` (a runtime's all-reduce kernel; default the
    operator's ``all_reduce_kernel`` attribute, which a runtime profile sets): see
    :func:`choose_algorithm`; an engine kernel costs its per-call latency (the runtime's, else
    the algorithm's :attr:`Algorithm.call_latency_s`) in place of a library's pipeline startup,
    and reaches the kernel's link efficiency where the runtime gives one.

    Memory traffic: every byte sent is read and every byte received written, and a reduction
    reads the local chunk too, unless the network reduces.
    """
    if kernel is None:
        kernel = getattr(op, "all_reduce_kernel", None)   # the runtime's (workloads.runtime)
    b = DemandsBuilder(op.name, op.kind, device)
    link_name = b.info.scale_up_link
    if link_name is None:
        raise InputError(f"device '{device.id}' has no link for a {op.collective} over "
                         f"{op.group_size} ranks", path="links")
    link = device.links[link_name]
    if reducing_switch is None:
        reducing_switch = bool(link.in_network_reduction)
    chosen = choose_algorithm(op, reducing_switch=reducing_switch, algorithm=algorithm, preferred=preferred,
                              kernel=kernel, link=link)
    step_list = steps(op.collective, op.payload_bytes, op.group_size, chosen)
    sent = link_bytes(step_list)
    in_network = ALGORITHMS[chosen].in_network
    call_latency_s = ALGORITHMS[chosen].call_latency_s
    efficiency = collective_link_efficiency(link, in_network)
    if call_latency_s is not None and kernel is not None and kernel.link_efficiency:
        efficiency = kernel.link_efficiency
    b.link(link_name, sent, efficiency)
    reduce_reads = 0.0
    if op.collective in REDUCING and not in_network:
        reduce_reads = op.payload_bytes * (op.group_size - 1) / op.group_size
    b.memory(b.info.main_memory, 2.0 * sent + reduce_reads)
    if not in_network:
        b.add_flops(op.flops())
    if call_latency_s is None:
        b.fixed(collective_startup_s(chosen, op.payload_bytes, sum(s.count for s in step_list), link, in_network))
    else:
        b.fixed(kernel.latency_s if kernel is not None else call_latency_s)
    overhead_s = b.fixed_s
    b.fixed(latency_s(step_list, link.latency_s))
    return CollectivePlan(op.collective, chosen, int(op.group_size), tuple(step_list), link_name,
                          float(link.latency_s), efficiency, overhead_s, b.build())
