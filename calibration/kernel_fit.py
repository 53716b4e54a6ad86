"""Fitting the kernel-family parameters of :mod:`roofline.efficiency` on the public ``fit`` rows.

One parameter per fused-attention kernel family (:data:`roofline.efficiency.ATTENTION_KERNELS`):
``softmax_exposed``, the fraction of the softmax's pipe time the kernel leaves exposed next to
its MMAs. It is fitted on the public rows with role ``fit`` of the attention class whose device
runs that family, and on nothing else: a grid over [0, 1] in steps of 0.01, minimising the sum of
squared log errors (a ratio error counts the same whether the kernel is reported in ms or in
TFLOP/s). Run ``python -m calibration.kernel_fit`` to reproduce the constants
``SOFTMAX_EXPOSED_*`` in :mod:`roofline.efficiency`; it prints the held-out errors afterwards.
"""

from __future__ import annotations

import argparse
import dataclasses
import math

from roofline.efficiency import ATTENTION_KERNELS, DEFAULT_ATTENTION_KERNEL

from . import public

GRID = [i / 100 for i in range(101)]


def family_of(row: dict) -> str:
    """The attention kernel family the device of ``row`` runs."""
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


def attention_rows(role: str) -> dict[str, list[dict]]:
    """Public attention rows of ``role``, by the kernel family of their device."""
    out: dict[str, list[dict]] = {}
    for row in public.load_rows():
        if row["role"] == role and public.row_class(row) == "attention":
            out.setdefault(family_of(row), []).append(row)
    return out


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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
