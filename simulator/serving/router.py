"""Routers: which replica a new request goes to (data parallelism behind one endpoint).

A router is a function ``route(replicas, request, state) -> replica`` registered in
:data:`ROUTERS`; ``state`` is a dict it may keep between calls.
"""

from __future__ import annotations

from hwmodels.registry import Registry

ROUTERS: Registry = Registry("router")


@ROUTERS.register("round_robin", help="each replica in turn")
def round_robin(replicas, request, state):
    i = state.get("next", 0)
    state["next"] = (i + 1) % len(replicas)
    return replicas[i]


@ROUTERS.register("least_outstanding", help="the replica with the fewest requests waiting or running")
def least_outstanding(replicas, request, state):
    return min(replicas, key=lambda r: (len(r.waiting) + len(r.running), r.index))
