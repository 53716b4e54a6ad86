"""Where ranks sit on a system and how collectives travel over its topology.

Placement follows ``docs/internals.md``: pipeline stage ``s``, rank ``r`` of the stage runs on
accelerator ``s * width + r`` (``width`` = tp, or ep when expert parallelism is wider than
tensor parallelism). A group of ``g`` ranks (``tp``, ``ep``, ``dp``) is the block of ``g``
consecutive ranks of a stage that contains the rank.

A collective's steps and who sends to whom in each (its algorithm's peers) come from the cost
model (:func:`roofline.collectives.plan_collective`); this module only routes each transfer over
the system graph (shortest path by
hops; every edge direction is a separate resource with the link's per-direction bandwidth).
A step's latency is the longest route latency among its transfers. A route's latency adds one
link latency per device-to-device hop; a (cut-through) switch does not add one of its own, so
GPU -> NVSwitch -> GPU pays one NVLink latency, as the device's link latency is quoted end to end.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from hwmodels.errors import InputError
from roofline.collectives import Peers


def link_resource(u: str, v: str, link_name: str) -> str:
    """The resource key of edge ``u -> v`` (one direction of a link)."""
    return f"{u}>{v}|link:{link_name}"


def _edge_resource(u: str, v: str, data: dict) -> str:
    """The resource key of edge ``u -> v`` with edge attributes ``data`` (named after its
    ``link_name``, else the link's kind)."""
    return link_resource(u, v, data.get("link_name") or data["link"].kind)


def link_kind_of(resource: str) -> str:
    """``"link:<name>"`` for a topology link resource, for grouping and what-ifs."""
    return resource.split("|", 1)[1]


@dataclass
class Phase:
    """Consecutive identical steps of a collective played as one gang task: ``work`` (bytes per
    directed-link resource, all steps together) and the summed step latencies ``latency_s``."""

    work: dict[str, float] = field(default_factory=dict)
    latency_s: float = 0.0
    steps: int = 0

    def add(self, work: dict[str, float], latency_s: float) -> None:
        """One more step loading the same links: its bytes and latency add."""
        for r, b in work.items():
            self.work[r] += b
        self.latency_s += latency_s
        self.steps += 1


class Topology:
    """Routes and link resources of a system graph (edges carry ``link``, ``link_name``)."""

    def __init__(self, graph: nx.Graph):
        self.graph = graph
        self._routes: dict[tuple[str, str], tuple[list[str], float]] = {}
        self.capacity: dict[str, float] = {}
        for u, v, data in graph.edges(data=True):
            for a, b in ((u, v), (v, u)):
                self.capacity[_edge_resource(a, b, data)] = float(data["link"].bandwidth_bytes_s)

    def route(self, src: str, dst: str) -> tuple[list[str], float]:
        """The directed-link resources from ``src`` to ``dst`` and the route's latency."""
        key = (src, dst)
        if key not in self._routes:
            try:
                nodes = nx.shortest_path(self.graph, src, dst)
            except (nx.NetworkXNoPath, nx.NodeNotFound):
                raise InputError(f"no path from {src} to {dst} in the system topology") from None
            res, lat, seg = [], 0.0, 0.0
            for a, b in zip(nodes, nodes[1:]):
                data = self.graph.edges[a, b]
                res.append(_edge_resource(a, b, data))
                seg = max(seg, float(data["link"].latency_s))
                if self.graph.nodes[b].get("kind") != "switch":
                    lat, seg = lat + seg, 0.0
            lat += seg
            self._routes[key] = (res, lat)
        return self._routes[key]

    def reduction_switch(self, members: list[str]) -> str | None:
        """The switch with in-network reduction nearest to all ``members`` (None if none)."""
        best, best_hops = None, None
        for node, data in self.graph.nodes(data=True):
            if data.get("kind") != "switch" or not data.get("in_network_reduction"):
                continue
            try:
                hops = sum(nx.shortest_path_length(self.graph, m, node) for m in members)
            except nx.NetworkXNoPath:
                continue
            if best_hops is None or hops < best_hops:
                best, best_hops = node, hops
        return best

    def phases(self, steps, peers: Peers, collective: str, members: list[str], switch: str | None = None,
               merge: bool = True) -> list[Phase]:
        """Steps (``roofline.collectives.Step``) of ``collective`` mapped onto links by the
        algorithm's ``peers``.

        With ``merge``, consecutive steps that load exactly the same links become one phase (the
        same bytes over the same shared resources, one after the other; latencies add), which
        keeps a 2(N-1)-step ring to one or two tasks.
        """
        out: list[Phase] = []
        last_sig = None
        index = 0
        for step in steps:
            for _ in range(step.count):
                work, latency = self.load(peers(collective, index, members, step.bytes_per_rank, switch))
                index += 1
                sig = tuple(sorted(work.items()))
                if merge and out and sig == last_sig:
                    out[-1].add(work, latency)
                else:
                    out.append(Phase(work, latency, 1))
                last_sig = sig
        return out

    def load(self, transfers) -> tuple[dict[str, float], float]:
        """(bytes per directed-link resource, latency) of one step's ``transfers``: each a list of
        legs routed one after the other; the step waits for its slowest transfer."""
        work: dict[str, float] = {}
        latency = 0.0
        for legs in transfers:
            legs_latency = 0.0
            for t in legs:
                resources, route_latency = self.route(t.src, t.dst)
                legs_latency += route_latency
                for r in resources:
                    work[r] = work.get(r, 0.0) + t.bytes
            latency = max(latency, legs_latency)
        return work, latency


def group_members(rank: int, size: int, width: int) -> list[int]:
    """Ranks (within a stage of ``width`` ranks) of the ``size``-rank group containing ``rank``."""
    if size > width or width % size:
        raise InputError(f"a group of {size} ranks does not tile a stage of {width} ranks", path="group_size")
    first = (rank // size) * size
    return list(range(first, first + size))
