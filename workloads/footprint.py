"""What a workload keeps resident in memory, per pipeline stage, and where it is placed.

Device-agnostic: bytes by role, not capacities (the simulator checks those, see
:mod:`simulator.memory`). A partitioned graph describes one tensor-parallel rank per pipeline
stage, so the footprint of stage ``s`` is what each accelerator of that stage holds:

* **weights**: every named parameter of the stage's operators once (:meth:`Operator.param_counts`,
  so tied embeddings and a draft model's steps count once, and MoE layers count the experts held,
  not only those hit), at the bytes per element of the weight tensor that reads it (quantization
  scales and zero-points included);
* **KV cache** and **recurrent state**: :meth:`Operator.cache_bytes` of the stage's operators (the
  whole batch at the step's context) times ``meta["microbatches"]``: every micro-batch's
  sequences stay resident while the pipeline works on the others (as :meth:`Graph.summary`);
* **activations** (peak): the largest live activation set of one operator of one micro-batch,
  i.e. the activation tensors it reads and writes (each counted once). Inference frees each
  intermediate once its consumer has run, so the live set peaks at the widest single operator
  (an MLP up-projection, unfused attention scores, the logits); the residual stream held
  across it is one of that operator's inputs or is small beside it. Activations stay on the device.

:func:`with_placements` returns a copy of a graph with KV cache and chosen weights re-placed
(``device``, ``host``, ``cxl``), which is how a caller spills what does not fit.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from hwmodels.dtypes import DTYPE_BYTES

from .graph import Graph
from .tensors import PLACEMENTS

ROLES = ("weights", "kv_cache", "state", "activations")


@dataclass
class Footprint:
    """Bytes one accelerator of pipeline stage ``stage`` holds, by role and placement.

    ``weights``: parameter name -> (bytes, placement), in the order the graph first reads them;
    ``kv_cache`` / ``state``: placement -> bytes; ``activations_bytes``: the peak live activation
    set (on the device), reached in operator ``activations_op``.
    """

    stage: int
    weights: dict[str, tuple[float, str]] = field(default_factory=dict)
    kv_cache: dict[str, float] = field(default_factory=dict)
    state: dict[str, float] = field(default_factory=dict)
    activations_bytes: float = 0.0
    activations_op: str | None = None

    def weight_bytes(self, placement: str | None = None) -> float:
        """Weight bytes (at ``placement``, or everywhere)."""
        return sum(b for b, p in self.weights.values() if placement is None or p == placement)

    def by_role(self, placement: str | None = "device") -> dict[str, float]:
        """Bytes by role at ``placement`` (None: wherever they are)."""
        def at(d: dict[str, float]) -> float:
            return sum(v for p, v in d.items() if placement is None or p == placement)

        return {"weights": self.weight_bytes(placement), "kv_cache": at(self.kv_cache), "state": at(self.state),
                "activations": self.activations_bytes if placement in (None, "device") else 0.0}

    def total(self, placement: str | None = "device") -> float:
        return sum(self.by_role(placement).values())


def _cache_placement(op, role: str) -> str:
    """Where ``op`` keeps its cache of ``role`` (``kv`` or ``state``): its cache tensors' placement."""
    for t in (*op.outputs, *op.inputs):
        if t.role == role:
            return t.placement
    return getattr(op, "kv_placement", "device") if role == "kv" else "device"


def _activation_set(op) -> float:
    seen: dict[str, float] = {}
    for t in (*op.inputs, *op.outputs):
        if t.role == "activation":
            seen[t.name] = t.bytes
    return sum(seen.values())


def stage_footprints(graph: Graph) -> list[Footprint]:
    """The footprint of each pipeline stage (index = stage; stages without operators are empty)."""
    pp = int(graph.meta.get("pp") or 1)
    stages = max([pp, *(op.stage + 1 for op in graph.ops)])
    micro = int(graph.meta.get("microbatches") or 1)
    out = [Footprint(s) for s in range(stages)]
    for op in graph.ops:
        fp = out[op.stage]
        tensors = {t.name: t for t in op.inputs if t.role == "weight"}
        for name, count in op.param_counts().items():
            if name in fp.weights:
                continue
            t = tensors.get(name)
            per_element = t.bytes / t.numel if t is not None and t.numel else _dtype_bytes(op)
            fp.weights[name] = (count * per_element, t.placement if t is not None else "device")
        live = _activation_set(op)
        if live > fp.activations_bytes:
            fp.activations_bytes, fp.activations_op = live, op.name
    for op, held in graph.held_caches():
        fp = out[op.stage]
        for role, nbytes in held.items():
            where = _cache_placement(op, role)
            bucket = fp.kv_cache if role == "kv" else fp.state
            bucket[where] = bucket.get(where, 0.0) + nbytes * micro
    return out


def _dtype_bytes(op) -> float:
    return DTYPE_BYTES[getattr(op, "weight_dtype", None) or getattr(op, "dtype", "bf16")]


def with_placements(graph: Graph, *, kv: dict[int, str] | None = None,
                    weights: dict[str, str] | None = None) -> Graph:
    """A copy of ``graph`` with its KV cache of stage ``s`` placed at ``kv[s]`` and each weight named
    in ``weights`` placed there (the same placement on every operator that reads it). Operators
    with a ``kv_placement`` / ``weight_placement`` field get it updated (``weight_placement``
    when the operator's ``.weight`` parameter moves); ``meta["kv_placement"]`` records the KV
    placement when it is the same for every stage. The input graph is unchanged."""
    kv, weights = dict(kv or {}), dict(weights or {})
    for where in (*kv.values(), *weights.values()):
        if where not in PLACEMENTS:
            raise ValueError(f"unknown placement {where!r}")
    new = Graph(graph.name, meta=dict(graph.meta))
    for op in graph.ops:
        kv_to = kv.get(op.stage)

        def moved(t, kv_to=kv_to):
            if t.role == "kv" and kv_to is not None:
                return t.with_placement(kv_to)
            if t.role == "weight" and t.name in weights:
                return t.with_placement(weights[t.name])
            return t

        ins, outs = [moved(t) for t in op.inputs], [moved(t) for t in op.outputs]
        changes = {}
        if ins != op.inputs or outs != op.outputs:
            changes = {"inputs": ins, "outputs": outs}
            if kv_to is not None and hasattr(op, "kv_placement"):
                changes["kv_placement"] = kv_to
            if hasattr(op, "weight_placement") and op.param("weight") in weights:
                changes["weight_placement"] = weights[op.param("weight")]
        new.add(dataclasses.replace(op, **changes) if changes else op, graph.deps(op.name))
    placed = set(kv.values())
    if len(placed) == 1 and set(kv) >= set(graph.stages()):
        new.meta["kv_placement"] = placed.pop()
    return new
