"""The workloads operators a measured kernel runs, so that the cost model can predict it.

A kernel is one or more operators run one after the other (numpy's STREAM triad is two ufunc
passes, so two elementwise operators); its predicted time is the sum of their
``roofline.cost(op, device).time_s``. Counting conventions are the operators' own (see
``workloads.operators``); nothing here computes a cost.
"""

from __future__ import annotations

from .kernels import KernelCase
from .npmodel import GELU_VECTOR_FLOPS


def kernel_ops(case: KernelCase) -> list:
    """The operators that ``case`` runs, in order."""
    from workloads.operators import Attention, Elementwise, LayerNorm, MatMul, MemCopy, Softmax

    s, dt, name = case.shape, case.dtype, case.kernel
    if name == "gemm":
        return [MatMul(name="gemm", m=s["m"], n=s["n"], k=s["k"], dtype=dt, b_role="activation")]
    if name == "stream_copy":
        return [Elementwise(name="copy", numel=s["n"], flops_per_element=0.0, dtype=dt)]
    if name == "stream_scale":
        return [Elementwise(name="scale", numel=s["n"], flops_per_element=1.0, dtype=dt)]
    if name == "stream_add":
        return [Elementwise(name="add", numel=s["n"], operands=2, dtype=dt)]
    if name == "stream_triad":
        return [Elementwise(name="triad_mul", numel=s["n"], dtype=dt),
                Elementwise(name="triad_add", numel=s["n"], operands=2, dtype=dt)]
    if name == "launch":
        return [Elementwise(name="launch", numel=s["n"], operands=2, dtype=dt)]
    if name == "softmax":
        return [Softmax(name="softmax", rows=s["rows"], cols=s["cols"], dtype=dt)]
    if name == "layernorm":
        return [LayerNorm(name="layernorm", rows=s["rows"], cols=s["cols"], dtype=dt)]
    if name == "gelu":
        return [Elementwise(name="gelu", numel=s["n"], flops_per_element=GELU_VECTOR_FLOPS, special=True,
                            dtype=dt)]
    if name == "sdpa":
        return [Attention(name="sdpa", batch=s["batch"], heads=s["heads"], kv_heads=s["heads"],
                          q_len=s["seq"], kv_len=s["seq"], head_dim=s["head_dim"], causal=True,
                          fused=True, dtype=dt)]
    if name in ("copy_h2d", "copy_d2h"):
        src, dst = ("host", "device") if name == "copy_h2d" else ("device", "host")
        return [MemCopy(name=name, bytes_moved=float(s["bytes"]), src=src, dst=dst)]
    raise ValueError(f"no operator mapping for kernel '{name}'")


def predict_case(case: KernelCase, device) -> float:
    """Predicted seconds for one run of ``case`` on ``device`` (sum over its operators)."""
    from roofline.costs import cost

    return sum(cost(op, device).time_s for op in kernel_ops(case))
