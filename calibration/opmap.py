"""The workloads operators a measured kernel runs, so that the cost model can predict it.

A kernel is one or more operators run one after the other, one per numpy call
(:mod:`calibration.passes`): numpy's STREAM triad is two ufunc passes, its softmax five, its
LayerNorm twelve, its GELU nine. Its predicted time is the sum of their
``roofline.cost(op, device).time_s``. Given the device, the streaming operators of a kernel are
marked resident in the memory level that holds the kernel's working set
(:func:`calibration.passes.place_in_cache`: a STREAM sweep's small sizes live in L1/L2/L3, not
DRAM). Counting conventions are the operators' own (see ``workloads.operators``); nothing here
computes a cost.
"""

from __future__ import annotations

from roofline.costs import cost
from workloads.operators import Attention, Elementwise, MatMul, MemCopy

from .kernels import KernelCase
from .passes import NumpyPasses, gelu_passes, layernorm_passes, place_in_cache, softmax_passes


def _stream_ops(name: str, n: int, dtype: str) -> list:
    """The ufunc calls of :mod:`calibration.kernels`' STREAM kernels over arrays a, b, c."""
    p = NumpyPasses(name, dtype)
    a, b, c = (p.array(x, (n,)) for x in "abc")
    if name == "stream_copy":
        p.call("copy", b, a, flops=0.0)
    elif name == "stream_scale":
        p.call("scale", b, a)
    elif name == "stream_add":
        p.call("add", c, a, b)
    else:   # triad: a = q * c, then a += b
        p.call("mul", a, c)
        p.call("add", a, a, b)
    return p.ops


def kernel_ops(case: KernelCase, device=None, caches: dict[str, int] | None = None) -> list:
    """The operators that ``case`` runs, in order; with ``device``, numpy kernels' streaming
    operators are placed in the level their working set lives in (``caches``: per-instance
    cache sizes, see :func:`calibration.fit.level_capacities`)."""
    ops = _ops(case)
    if device is not None and case.backend == "numpy":
        place_in_cache(ops, device, caches)
    return ops


def _ops(case: KernelCase) -> list:
    s, dt, name = case.shape, case.dtype, case.kernel
    if name == "gemm":
        return [MatMul(name="gemm", m=s["m"], n=s["n"], k=s["k"], dtype=dt, b_role="activation")]
    if name in ("stream_copy", "stream_scale", "stream_add", "stream_triad"):
        return _stream_ops(name, s["n"], dt)
    if name == "launch":
        return [Elementwise(name="launch", numel=s["n"], operands=2, dtype=dt)]
    if name == "softmax":
        return softmax_passes("softmax", s["rows"], s["cols"], dt)
    if name == "layernorm":
        return layernorm_passes("layernorm", s["rows"], s["cols"], dt)
    if name == "gelu":
        return gelu_passes("gelu", s["n"], dt)
    if name == "sdpa":
        return [Attention(name="sdpa", batch=s["batch"], heads=s["heads"], kv_heads=s["heads"],
                          q_len=s["seq"], kv_len=s["seq"], head_dim=s["head_dim"], causal=True,
                          fused=True, dtype=dt)]
    if name in ("copy_h2d", "copy_d2h"):
        src, dst = ("host", "device") if name == "copy_h2d" else ("device", "host")
        return [MemCopy(name=name, bytes_moved=float(s["bytes"]), src=src, dst=dst)]
    raise ValueError(f"no operator mapping for kernel '{name}'")


def predict_case(case: KernelCase, device, caches: dict[str, int] | None = None) -> float:
    """Predicted seconds for one run of ``case`` on ``device`` (sum over its operators)."""
    return sum(cost(op, device).time_s for op in kernel_ops(case, device, caches))
