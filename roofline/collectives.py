"""Collective algorithms: how an all-reduce (etc.) decomposes into steps of link transfers.

An algorithm turns ``(collective, payload_bytes, group_size)`` into a list of :class:`Step`: in
each step every rank sends ``bytes_per_rank`` to a peer (and receives as much), after a latency.
Steps of one entry run one after the other (``count`` times). The cost model sums them into link
bytes and latency (:func:`link_bytes`, :func:`latency_s`); the simulator maps the same steps onto
a system's topology. ``payload_bytes`` is the per-rank buffer as nccl-tests' "size" (for
all-gather the gathered output, for reduce-scatter the input).

Bytes per rank per direction (N ranks, payload P), the textbook figures:

============== ======================= ============================ =============================
collective     ring                    tree (double binary)         in_switch (NVLS/SHARP)
============== ======================= ============================ =============================
all_reduce     2 (N-1)/N P, 2(N-1) st  ~2 P (reduce + broadcast),   P up, P down in parallel:
                                       2 ceil(log2 N) steps         P, 2 hops of latency
all_gather     (N-1)/N P, N-1 steps    -                            (N-1)/N P, 1 step (multicast)
reduce_scatter (N-1)/N P, N-1 steps    -                            (N-1)/N P, 1 step
all_to_all     (N-1)/N P, N-1 steps    -                            -
send_recv      P, 1 step               P, 1 step                    -
============== ======================= ============================ =============================

nccl-tests reports "bus bandwidth" = algbw x factor with the ring's factor (2(N-1)/N for
all-reduce, (N-1)/N for all-gather/reduce-scatter), so on an ideal ring bus bandwidth equals the
link bandwidth (:func:`bus_factor`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from hwmodels.errors import InputError, unknown_name

COLLECTIVES = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "send_recv")


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
        # Each rank pushes P to the switch while the reduced P streams back: up and down use
        # opposite directions, so P per direction, through two hops.
        return [Step(payload, 1, hops=2)]
    # multicast all-gather / in-switch reduce-scatter: a rank receives (sends) the other N-1 chunks
    return [Step(payload * (n - 1) / n, 1, hops=2)]


@dataclass(frozen=True)
class Algorithm:
    """A collective algorithm: which collectives it implements and its step decomposition.
    ``in_network``: the network (a switch) reduces, so the ranks neither read their local chunk
    to reduce it nor spend FLOPs on it."""

    name: str
    collectives: tuple[str, ...]
    steps_fn: Callable[[str, float, int], list[Step]]
    description: str = ""
    in_network: bool = False


ALGORITHMS: dict[str, Algorithm] = {}


def register_algorithm(algorithm: Algorithm) -> Algorithm:
    """Add (or replace) an algorithm in the registry; returns it."""
    ALGORITHMS[algorithm.name] = algorithm
    return algorithm


register_algorithm(Algorithm("ring", COLLECTIVES, _ring, "bandwidth-optimal ring / pairwise exchange"))
register_algorithm(Algorithm("tree", ("all_reduce", "send_recv"), _tree,
                             "double binary tree: log-depth latency, for small all-reduces"))
register_algorithm(Algorithm("in_switch", ("all_reduce", "all_gather", "reduce_scatter"), _in_switch,
                             "reduction/multicast in the switch (NVLink SHARP, InfiniBand SHARP)",
                             in_network=True))


def steps(collective: str, payload_bytes: float, group_size: int, algorithm: str = "ring") -> list[Step]:
    """The link-transfer steps of one rank for ``collective`` of ``payload_bytes`` over
    ``group_size`` ranks with ``algorithm``."""
    if collective not in COLLECTIVES:
        raise unknown_name("collective", collective, COLLECTIVES, path="collective")
    if algorithm not in ALGORITHMS:
        raise unknown_name("collective algorithm", algorithm, ALGORITHMS, path="algorithm")
    algo = ALGORITHMS[algorithm]
    if collective not in algo.collectives:
        raise InputError(f"algorithm '{algorithm}' does not implement {collective}; it implements "
                         f"{', '.join(algo.collectives)}", path="algorithm", suggestion="ring")
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


def choose_algorithm(collective: str, in_network_reduction: bool) -> str:
    """The algorithm a library (NCCL) picks for large messages: in-switch reduction where the
    switch offers it and implements the collective, else the ring."""
    if in_network_reduction and collective in ALGORITHMS["in_switch"].collectives:
        return "in_switch"
    return "ring"
