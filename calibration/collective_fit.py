"""The one fitted constant of the collective model: the startup of a library collective.

A collective run by NCCL streams at the library's share of the link only once its chunk pipeline
is full; each of its pipeline steps pays a startup ``t0 x P / (P + COLLECTIVE_FILL_BYTES)``
(:func:`roofline.efficiency.collective_startup_s`). ``t0`` per algorithm is what the public
collective rows marked ``fit`` leave over the rest of the model: for each, the measured time
(payload over the bus bandwidth divided by nccl-tests' factor) less the modelled time without the
startup, over the steps and the fill fraction; the mean per algorithm (ring: the A100 row;
in-switch: the H100 and H200 rows). Held-out rows never enter.

``python -m calibration.collective_fit`` prints the figures that
``roofline.efficiency.COLLECTIVE_STEP_STARTUP_S`` holds (a test checks they agree).
"""

from __future__ import annotations

from roofline.collectives import bus_factor, plan_collective
from roofline.costs import cost
from roofline.efficiency import COLLECTIVE_FILL_BYTES, COLLECTIVE_STEP_STARTUP_S

from .public import UNIT_SCALE, _device_of, collective_op, load_rows, row_class


def startup_samples(rows: list[dict] | None = None) -> dict[str, list[float]]:
    """Per algorithm, the startup ``t0`` (s) each collective row marked ``fit`` implies."""
    out: dict[str, list[float]] = {}
    for row in rows if rows is not None else load_rows():
        if row.get("role") != "fit" or row_class(row) != "collective":
            continue
        device, n_dev = _device_of(row["hardware"])
        op = collective_op(row, n_dev)
        plan = plan_collective(op, device)
        p = op.payload_bytes
        per_step = sum(s.count for s in plan.steps) * p / (p + COLLECTIVE_FILL_BYTES)
        measured_s = p / (float(row["value"]) * UNIT_SCALE[row["unit"]] / bus_factor(op.collective, op.group_size))
        current = COLLECTIVE_STEP_STARTUP_S.get(plan.algorithm, COLLECTIVE_STEP_STARTUP_S["ring"])
        modelled_s = cost(op, device).time_s - current * per_step
        out.setdefault(plan.algorithm, []).append((measured_s - modelled_s) / per_step)
    return out


def fit_startup(rows: list[dict] | None = None) -> dict[str, float]:
    """``{algorithm: t0}``: the mean of :func:`startup_samples` per algorithm."""
    return {algo: sum(ts) / len(ts) for algo, ts in startup_samples(rows).items()}


def main(argv: list[str] | None = None) -> int:
    samples = startup_samples()
    for algo, ts in sorted(samples.items()):
        print(f"{algo}: t0 = {sum(ts) / len(ts) * 1e6:.1f} us (from {len(ts)} fit row(s): "
              + ", ".join(f"{t * 1e6:.1f}" for t in ts) + " us)")
    print("roofline/efficiency.py COLLECTIVE_STEP_STARTUP_S = {"
          + ", ".join(f'"{a}": {sum(ts) / len(ts):.3e}' for a, ts in sorted(samples.items())) + "}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
