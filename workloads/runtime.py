"""A step graph as an inference engine runs it: :func:`with_runtime` applies a runtime profile.

The profile (:class:`hwmodels.runtime.RuntimeProfile`) is data; this module turns it into graph
facts the cost model prices, never into times of its own:

* every kernel gets ``launch_s``: the profile's CUDA-graph launch cost when the step replays a
  captured graph (a decode step whose batch is at most the largest captured size), else its
  eager launch cost (when the profile gives one; otherwise the device's ``launch_overhead``
  stays);
* ``unfused: [fp8_quantize]``: a quantize kernel (an :class:`~workloads.operators.Elementwise`
  reading the activation in 16 bits and writing it in fp8, 2 vector FLOPs an element: scale and
  convert) in front of every fp8 GEMM whose activation input is fp8;
* host work as :class:`~workloads.operators.RuntimeWork` operators: ``runtime.step`` (the
  step's CPU work, fixed plus per sequence) before the first kernels, or beside them with
  ``async_scheduling``; ``runtime.sync`` after the last ones; and, for an eager step,
  ``runtime.dispatch`` (the host issuing every kernel) beside them, so the step takes at least
  as long as the host needs to issue it.

The graph's ``meta["runtime"]`` names the profile. The input graph is unchanged.
"""

from __future__ import annotations

import copy

from hwmodels.runtime import load_runtime

from .graph import Graph
from .operators import Elementwise, RuntimeWork
from .tensors import Tensor

QUANTIZE_FLOPS_PER_ELEMENT = 2.0   # multiply by the scale, convert


def _quantize(op, stage: int) -> tuple[Elementwise, object]:
    """(quantize kernel, the GEMM reading its output) for fp8 GEMM ``op``."""
    act = op.inputs[0]
    wide = "bf16"
    q = Elementwise(name=f"{op.name}.quantize", numel=act.numel, flops_per_element=QUANTIZE_FLOPS_PER_ELEMENT,
                    dtype=wide, stage=stage,
                    inputs=[Tensor(f"{op.name}.quantize.in", act.shape, wide, "activation", act.placement)],
                    outputs=[Tensor(act.name, act.shape, act.dtype, "activation", act.placement)])
    return q, op


def _needs_quantize(op) -> bool:
    return (op.kind == "matmul" and getattr(op, "dtype", None) == "fp8" and bool(op.inputs)
            and op.inputs[0].role == "activation" and op.inputs[0].dtype == "fp8")


def with_runtime(graph: Graph, profile) -> Graph:
    """``graph`` as ``profile`` (a :class:`~hwmodels.runtime.RuntimeProfile`, a name or a file)
    runs it (see the module docstring); the graph itself when the profile adds nothing."""
    profile = load_runtime(profile)
    if profile.is_none:
        return graph
    meta = graph.meta
    phase = str(meta.get("phase") or "")
    batch = int(meta.get("batch") or 1)
    graphed = profile.graphed(phase, batch)
    launch = profile.graph_launch_s if graphed else profile.launch_s
    new = Graph(graph.name, meta={**meta, "runtime": profile.name, "cuda_graph": graphed})
    ops = graph.ops
    roots = [op.name for op in ops if not graph.deps(op.name)]
    sinks = {op.name for op in ops} - {d for op in ops for d in graph.deps(op.name)}
    first, last = min(op.stage for op in ops), max(op.stage for op in ops)
    step = None
    host_step = profile.step_cpu_total_s(batch)
    if host_step > 0:
        step = RuntimeWork(name="runtime.step", host_s=host_step, activity="step", stage=first)
        new.add(step)
    if not graphed and profile.dispatch_cpu_s > 0:
        # issued on the host stream after the step's CPU work, beside the kernels
        kernels = len(ops) + sum(map(_needs_quantize, ops)) * ("fp8_quantize" in profile.unfused)
        new.add(RuntimeWork(name="runtime.dispatch", host_s=profile.dispatch_cpu_s * kernels, activity="dispatch",
                            stage=first))
    for op in ops:
        deps = list(graph.deps(op.name))
        if step is not None and not profile.async_scheduling and op.name in roots:
            deps.append(step.name)
        if "fp8_quantize" in profile.unfused and _needs_quantize(op):
            q, op = _quantize(op, op.stage)
            if launch is not None:
                q = copy.copy(q)
                q.launch_s = launch
            new.add(q, deps)
            deps = [q.name]
        if launch is not None:
            op = copy.copy(op)
            op.launch_s = launch
        new.add(op, deps)
    if profile.sync_s > 0:
        new.add(RuntimeWork(name="runtime.sync", host_s=profile.sync_s, activity="sync", stage=last),
                sorted(sinks))
    return new
