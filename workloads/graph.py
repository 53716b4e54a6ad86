"""The operator graph: operators as nodes of a networkx DiGraph, edges as dependencies.

Operators are added after their dependencies, so the insertion order is a topological order and
cycles cannot be built through :meth:`Graph.add` (the YAML loader reports cycles before building).

``meta`` carries what a simulator needs to interpret the graph:

* ``model``, ``phase`` (prefill | decode | chunked | custom), ``batch`` (sequences in the step);
* ``tokens``: tokens the step produces (for throughput; expected tokens under speculative
  decoding), ``tokens_processed``: tokens run through the model;
* ``tp``, ``pp``, ``ep``: a partitioned graph holds the work of ONE tensor-parallel rank per
  pipeline stage (TP ranks are symmetric); each op's ``stage`` says which stage runs it, and stage
  ``s``, rank ``r`` sits on accelerator ``s * width + r`` (``width`` = max(tp, ep));
* ``microbatches``: the ops describe one microbatch of ``batch / microbatches`` sequences; the
  step pushes ``microbatches`` of them through the pipeline.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator

import networkx as nx

from hwmodels import limits
from hwmodels.errors import InputError, did_you_mean

from .operators import ENGINE_CLASSES, Operator


class Graph:
    """A DAG of operators (``.nx``: the networkx DiGraph, node attribute ``op``)."""

    def __init__(self, name: str = "", meta: dict | None = None):
        self.name = name
        self.nx = nx.DiGraph()
        self.meta: dict = dict(meta or {})
        self._order: list[str] = []

    def add(self, op: Operator, deps: Iterable[str | Operator] = ()) -> Operator:
        """Add ``op`` after ``deps`` (names or operators already in the graph); returns ``op``."""
        if not isinstance(op, Operator):
            raise TypeError(f"expected an Operator, got {type(op).__name__}")
        if op.name in self.nx:
            raise InputError(f"duplicate operator name '{op.name}'", path=op.name)
        limits.check("operators", len(self._order) + 1)   # builders check first; this is the backstop
        names = [d.name if isinstance(d, Operator) else d for d in deps]
        for d in names:
            if d not in self.nx:
                raise InputError(f"'{op.name}' depends on '{d}', which is not in the graph",
                                 path=op.name, suggestion=did_you_mean(d, self._order))
        self.nx.add_node(op.name, op=op)
        for d in dict.fromkeys(names):
            self.nx.add_edge(d, op.name)
        self._order.append(op.name)
        return op

    @property
    def ops(self) -> list[Operator]:
        """Operators in a topological order (the order they were added)."""
        nodes = self.nx.nodes
        return [nodes[n]["op"] for n in self._order]

    def op(self, name: str) -> Operator:
        if name not in self.nx:
            raise KeyError(name)
        return self.nx.nodes[name]["op"]

    def deps(self, name: str) -> list[str]:
        """Names of the operators ``name`` waits for."""
        return list(self.nx.predecessors(name))

    def __len__(self) -> int:
        return len(self._order)

    def __iter__(self) -> Iterator[Operator]:
        return iter(self.ops)

    def __contains__(self, name: str) -> bool:
        return name in self.nx

    def stages(self) -> list[int]:
        return sorted({op.stage for op in self.ops})

    def params(self, active: bool = False) -> float:
        """Parameters held by this graph's device(s) (each named parameter counted once)."""
        seen: dict[str, float] = {}
        for op in self.ops:
            seen.update(op.active_param_counts() if active else op.param_counts())
        return float(sum(seen.values()))

    def flops(self) -> float:
        return float(sum(op.total_flops for op in self.ops))

    def held_caches(self) -> list[tuple[Operator, dict[str, float]]]:
        """Each cache (KV or recurrent state) the step leaves on the devices, once:
        ``(operator, bytes by role)``. Operators with the same parameter prefix extend one cache
        (a draft model's successive steps over one layer), which is held once, at its largest."""
        held: dict[str, tuple[Operator, dict[str, float]]] = {}
        for op in self.ops:
            cache = op.cache_bytes()
            if not cache:
                continue
            key = op.param_prefix or op.name
            if key not in held or sum(cache.values()) >= sum(held[key][1].values()):
                held[key] = (op, cache)
        return list(held.values())

    def summary(self) -> dict:
        """Totals: params, FLOPs (by engine and dtype), bytes by role, cache bytes, ops by kind.

        Everything is for the device(s) the graph describes (one TP rank per stage when
        partitioned) and, but for the cache, for one microbatch; ``kv_cache_bytes`` and
        ``state_bytes`` are what those devices hold for the whole batch after the step.
        """
        by_engine = dict.fromkeys(ENGINE_CLASSES, 0.0)
        by_dtype: dict[str, float] = defaultdict(float)
        by_role: dict[str, float] = {"weight": 0.0, "activation": 0.0, "kv": 0.0, "state": 0.0}
        cache: dict[str, float] = {"kv": 0.0, "state": 0.0}
        kinds: dict[str, dict] = {}
        collective_bytes = 0.0
        # the ops describe one microbatch, the cache holds every microbatch's sequences
        microbatches = self.meta.get("microbatches", 1) or 1
        for op in self.ops:
            fl = op.flops()
            total = sum(fl.values())
            for (engine, dtype), v in fl.items():
                by_engine[engine] = by_engine.get(engine, 0.0) + v
                by_dtype[f"{engine}:{dtype}"] += v
            roles = op.bytes_by_role()
            for role, v in roles.items():
                by_role[role] = by_role.get(role, 0.0) + v
            k = kinds.setdefault(op.kind, {"ops": 0, "flops": 0.0, "bytes": 0.0})
            k["ops"] += 1
            k["flops"] += total
            k["bytes"] += sum(roles.values())
            if op.kind == "collective":
                collective_bytes += op.payload_bytes
        for _op, held in self.held_caches():
            for role, v in held.items():
                cache[role] += v * microbatches
        return {
            "name": self.name,
            "meta": dict(self.meta),
            "params": self.params(),
            "active_params": self.params(active=True),
            "flops": sum(by_engine.values()),
            "flops_by_engine": by_engine,
            "flops_by_dtype": dict(by_dtype),
            "bytes": by_role,
            "bytes_total": sum(by_role.values()),
            "kv_cache_bytes": cache["kv"],
            "state_bytes": cache["state"],
            "collective_payload_bytes": collective_bytes,
            "ops": len(self),
            "by_kind": kinds,
        }

    def to_frame(self):
        """One row per operator: name, kind, stage, FLOPs, bytes by role."""
        import pandas as pd  # only here: a graph is built (and the CLI starts) without pandas

        rows = []
        for op in self.ops:
            row = {"name": op.name, "kind": op.kind, "stage": op.stage, "flops": op.total_flops}
            row.update({f"bytes_{r}": v for r, v in op.bytes_by_role().items()})
            rows.append(row)
        return pd.DataFrame(rows).fillna(0.0)

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, ops={len(self)}, meta={self.meta})"
