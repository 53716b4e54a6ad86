"""Fitting the kernel-family parameters of :mod:`roofline.efficiency` on the public ``fit`` rows.

One parameter per fused-attention kernel family (:data:`roofline.efficiency.ATTENTION_KERNELS`):
``softmax_exposed``, the fraction of the softmax's pipe time the kernel leaves exposed next to
its MMAs. It is fitted on the public rows with role ``fit`` of the attention class whose device
runs that family, and on nothing else: a grid over [0, 1] in steps of 0.01, minimising the sum of
squared log errors (a ratio error counts the same whether the kernel is reported in ms or in
TFLOP/s). Run ``python -m calibration.kernel_fit`` to reproduce the constants
``SOFTMAX_EXPOSED_*`` in :mod:`roofline.efficiency`; it prints the held-out errors afterwards.

Decode attention (the attention rows whose workload says ``decode``: one query token per
sequence over a paged KV cache) is left out of that fit and fits two mechanisms of its own, one
constant each, on its ``fit`` rows: the latency per wave of decode CTAs
(``DECODE_CTA_LATENCY_S``, every family) and the streaming lost per paged KV block
(``page_gather_bytes`` of the rows' kernel family, ``PAGE_GATHER_BYTES_*``). The two are fitted
together by coordinate descent over grids (0 to 5 us in 0.1 us; 0 to 4000 bytes in 50 bytes),
the same loss.

Decode-shaped GEMMs (the GEMM rows with at most :data:`SKINNY_M` rows, M in the workload) fit one
constant: the fraction of the main memory's streaming rate a library GEMM's traffic reaches
(``GEMM_MEMORY_FRACTION``), over a grid of 0.50 to 1.00 in steps of 0.01, the same loss.

Kernel times as a profiler reports them (the elementwise rows with a ``latency``: a kernel alone
on the device, no launch gap) fit one constant: a kernel's minimum time inside a replayed CUDA
graph (:data:`hwmodels.defaults.GRAPH_KERNEL_FIXED_S`), over a grid of 0 to 5 us in 0.01 us, the
same loss.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import re

from hwmodels import defaults
from roofline import efficiency
from roofline.costs import clear_memo
from roofline.efficiency import ATTENTION_KERNELS, DEFAULT_ATTENTION_KERNEL

from . import public

GRID = [i / 100 for i in range(101)]
LATENCY_GRID_S = [i * 1e-7 for i in range(51)]
GATHER_GRID_BYTES = [50.0 * i for i in range(81)]
FRACTION_GRID = [i / 100 for i in range(50, 101)]
SKINNY_M = 64   # decode steps' GEMMs: one row per running sequence
KERNEL_MIN_GRID_S = [i * 1e-8 for i in range(501)]


def family_of(row: dict) -> str:
    """The attention kernel family that ran ``row``: the one its framework names, else its
    device's."""
    stated = public.stated_attention_kernel(row)
    if stated:
        return stated
    device, _ = public._device_of(row["hardware"])
    engines = [e for e in device.engines.values() if e.kind == "matrix"]
    return (engines[0].attention_kernel if engines else None) or DEFAULT_ATTENTION_KERNEL


def _log_errors(rows: list[dict]) -> list[float]:
    out = []
    for row in rows:
        predicted, _ = public.predict_row(row)
        out.append(math.log(predicted / float(row["value"])))
    return out


def fit_family(name: str, rows: list[dict]) -> float:
    """The ``softmax_exposed`` of family ``name`` that fits ``rows`` best (grid search)."""
    original = ATTENTION_KERNELS.get(name)
    try:
        def loss(value: float) -> float:
            ATTENTION_KERNELS.register(name, dataclasses.replace(original, softmax_exposed=value))
            return sum(e * e for e in _log_errors(rows))

        return min(GRID, key=loss)
    finally:
        ATTENTION_KERNELS.register(name, original)


def is_decode(row: dict) -> bool:
    """A decode-attention row (one query token per sequence over a KV cache)."""
    return public.row_class(row) == "attention" and re.search(r"\bdecode\b", row["workload"]) is not None


def attention_rows(role: str, decode: bool = False) -> dict[str, list[dict]]:
    """Public attention rows of ``role``, by the kernel family of their device: the decode rows
    when ``decode``, else the others."""
    out: dict[str, list[dict]] = {}
    for row in public.load_rows():
        if row["role"] == role and public.row_class(row) == "attention" and is_decode(row) == decode:
            out.setdefault(family_of(row), []).append(row)
    return out


def _with_decode_constants(latency_s: float, gather: dict[str, float]) -> None:
    """Set the decode CTA latency and the families' page gather bytes (costs forgotten)."""
    efficiency.DECODE_CTA_LATENCY_S = latency_s
    for name, value in gather.items():
        ATTENTION_KERNELS.register(name, dataclasses.replace(ATTENTION_KERNELS.get(name), page_gather_bytes=value))
    clear_memo()


def fit_decode(rows_by_family: dict[str, list[dict]]) -> tuple[float, dict[str, float]]:
    """(decode CTA latency per wave in s, page gather bytes per family) that fit the decode rows
    best: coordinate descent over the grids until neither moves."""
    rows = [r for family in rows_by_family.values() for r in family]
    originals = {name: ATTENTION_KERNELS.get(name) for name in rows_by_family}
    latency0 = efficiency.DECODE_CTA_LATENCY_S
    latency, gather = 0.0, dict.fromkeys(rows_by_family, 0.0)

    def loss(lat: float, gat: dict[str, float]) -> float:
        _with_decode_constants(lat, gat)
        return sum(e * e for e in _log_errors(rows))

    try:
        previous = None
        while previous != (latency, gather):
            previous = (latency, dict(gather))
            latency = min(LATENCY_GRID_S, key=lambda v: loss(v, gather))
            for name in gather:
                gather[name] = min(GATHER_GRID_BYTES, key=lambda v: loss(latency, {**gather, name: v}))
        return latency, gather
    finally:
        efficiency.DECODE_CTA_LATENCY_S = latency0
        for name, kernel in originals.items():
            ATTENTION_KERNELS.register(name, kernel)
        clear_memo()


def skinny_gemm_rows(role: str) -> list[dict]:
    """Public GEMM rows of ``role`` with at most :data:`SKINNY_M` rows (``M=`` in the workload)."""
    out = []
    for row in public.load_rows():
        rows = re.search(r"\bM=(\d+)", row["workload"])
        if row["role"] == role and public.row_class(row) == "gemm" and rows and int(rows.group(1)) <= SKINNY_M:
            out.append(row)
    return out


def fit_gemm_memory(rows: list[dict]) -> float:
    """The ``GEMM_MEMORY_FRACTION`` that fits ``rows`` best (grid search; the constant is left
    as it was)."""
    original = efficiency.GEMM_MEMORY_FRACTION

    def loss(value: float) -> float:
        efficiency.GEMM_MEMORY_FRACTION = value
        clear_memo()
        return sum(e * e for e in _log_errors(rows))

    try:
        return min(FRACTION_GRID, key=loss)
    finally:
        efficiency.GEMM_MEMORY_FRACTION = original
        clear_memo()


def kernel_time_rows(role: str) -> list[dict]:
    """Public rows of ``role`` that time one small kernel as a profiler does (elementwise
    class, metric ``latency``)."""
    return [row for row in public.load_rows()
            if row["role"] == role and public.row_class(row) == "elementwise" and row["metric"] == "latency"]


def fit_graph_kernel_fixed(rows: list[dict]) -> float:
    """The ``GRAPH_KERNEL_FIXED_S`` that fits ``rows`` best (grid search; the constant is left
    as it was)."""
    original = defaults.GRAPH_KERNEL_FIXED_S

    def loss(value: float) -> float:
        defaults.GRAPH_KERNEL_FIXED_S = value
        return sum(e * e for e in _log_errors(rows))

    try:
        return min(KERNEL_MIN_GRID_S, key=loss)
    finally:
        defaults.GRAPH_KERNEL_FIXED_S = original


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    held = attention_rows("held-out")
    for name, rows in sorted(attention_rows("fit").items()):
        value = fit_family(name, rows)
        print(f"{name}: softmax_exposed = {value:.2f} (fit on {', '.join(r['id'] for r in rows)})")
        current = ATTENTION_KERNELS.get(name).softmax_exposed
        errors = [math.exp(e) - 1 for e in _log_errors(held.get(name, []))]
        mape = sum(abs(e) for e in errors) / len(errors) if errors else float("nan")
        print(f"  in roofline.efficiency now: {current:.2f}; held-out rows of this family at that "
              f"value: {len(errors)}, MAPE {mape:.1%}")
    _report_decode()
    _report_gemm_memory()
    _report_graph_kernel()
    return 0


def _report_one_constant(label: str, rows_of, fit, now: str, held_label: str) -> None:
    """Fit one constant on ``rows_of("fit")``, print it, and the held-out rows' errors at the
    value the code holds now (``now``: its name and value)."""
    rows = rows_of("fit")
    print(f"{label} = {fit(rows):.3g} (fit on {', '.join(r['id'] for r in rows)})")
    errors = [math.exp(e) - 1 for e in _log_errors(rows_of("held-out"))]
    print(f"  at {now}, held-out {held_label} rows: {len(errors)}, "
          f"MAPE {sum(abs(e) for e in errors) / len(errors):.1%}, mean {sum(errors) / len(errors):+.1%}")


def _report_graph_kernel() -> None:
    _report_one_constant("graph replay: GRAPH_KERNEL_FIXED_S (s a kernel)", kernel_time_rows,
                         fit_graph_kernel_fixed,
                         f"the constant in hwmodels.defaults now ({defaults.GRAPH_KERNEL_FIXED_S:.2e} s)", "kernel-time")


def _report_gemm_memory() -> None:
    _report_one_constant("skinny GEMMs: GEMM_MEMORY_FRACTION", skinny_gemm_rows, fit_gemm_memory,
                         f"the constant in roofline.efficiency now ({efficiency.GEMM_MEMORY_FRACTION:.2f})",
                         "skinny GEMM")


def _report_decode() -> None:
    fit = attention_rows("fit", decode=True)
    if not fit:
        return
    latency, gather = fit_decode(fit)
    names = ", ".join(r["id"] for rows in fit.values() for r in rows)
    print(f"decode: DECODE_CTA_LATENCY_S = {latency:.1e} s per wave (fit on {names})")
    for name, value in gather.items():
        constant = f"PAGE_GATHER_BYTES_{name.upper()}"
        where = constant if hasattr(efficiency, constant) else "no constant: the family's default, 0"
        print(f"  {name}: page_gather_bytes = {value:.0f} ({where})")
    held = [r for rows in attention_rows("held-out", decode=True).values() for r in rows]
    errors = [math.exp(e) - 1 for e in _log_errors(held)]
    print(f"  at the constants in roofline.efficiency now ({efficiency.DECODE_CTA_LATENCY_S:.1e} s), "
          f"held-out decode rows: {len(errors)}, MAPE {sum(abs(e) for e in errors) / len(errors):.1%}, "
          f"mean {sum(errors) / len(errors):+.1%}")


if __name__ == "__main__":
    raise SystemExit(main())
