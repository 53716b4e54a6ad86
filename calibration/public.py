"""Part 3 of the validation: every row of the bundled public measurements, predicted from the catalog.

Each row names a catalog device or system, a workload and a metric. Operator rows (GEMM, GELU,
STREAM, pointer-chase latency, NVLink copy, all-reduce bus bandwidth) become one workloads
operator costed by ``roofline.cost`` on the catalog device; LLM rows (time to first token,
inter-token latency, output throughput, energy per token) are predicted by the simulator's
public-row helper (:func:`simulator.public.predict_public_row`). A row the model cannot predict
(a device missing from the catalog, an unknown workload) keeps ``predicted = None`` and says why,
so the table always lists every row. Nothing here is tuned to these rows: sizes the sources do
not state are fixed a priori and named in :data:`ASSUMED`. One row did fit a parameter (the energy model's active-power
fraction, :data:`FIT_ROWS`); it is marked ``role: fit`` and the summary (:func:`public_summary`)
is over the held-out rows only.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from importlib import resources

from hwmodels.errors import InputError

from .energy_fit import FIT_ROW
from .validate import rel_error

PUBLIC_CSV = "public_measurements.csv"

# Sizes the public sources do not state, fixed before looking at any prediction.
ASSUMED = {
    # BabelStream/gpu-stream default array: 2^25 doubles (256 MiB per array), DRAM-resident.
    "stream_elements": 2**25,
    # nvbandwidth's default buffer size.
    "copy_bytes": 512 * 2**20,
}

# Rows a model parameter was fitted on (row id -> what was fitted, by which command). They are
# listed with ``role: fit`` and left out of the summary, which is over held-out rows only.
FIT_ROWS = {FIT_ROW: "the energy model's active-power fraction (python -m calibration.energy_fit)"}

UNIT_SCALE = {"TFLOP/s": 1e12, "GB/s": 1e9, "Gelem/s": 1e9, "ms": 1e-3, "ns": 1e-9, "s": 1.0,
              "tok/s": 1.0, "J/tok": 1.0}


def load_rows() -> list[dict]:
    """The bundled public measurements, one dict per CSV row."""
    text = resources.files("calibration.data").joinpath(PUBLIC_CSV).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def _device_of(ref: str):
    """(device, devices in the system) for a catalog device or system id."""
    import hwmodels

    hw = hwmodels.load_hardware(ref)
    if hasattr(hw, "accelerators"):
        return hw.first_accelerator(), len(hw.accelerators)
    return hw, 1


def _time(op, device) -> float:
    from roofline.costs import cost

    return cost(op, device).time_s


def _matmul(row, device, n_dev):
    from workloads.operators import MatMul

    dims = dict(re.findall(r"([MNK])=(\d+)", row["workload"]))
    m, n, k = (int(dims[x]) for x in "MNK")
    t = _time(MatMul(name="gemm", m=m, n=n, k=k, dtype=row["dtype"], b_role="activation"), device)
    return {"throughput": 2.0 * m * n * k / t, "latency": t}[row["metric"]]


def _gelu(row, device, n_dev):
    from workloads.operators import Elementwise

    from .npmodel import GELU_VECTOR_FLOPS

    base, exp = re.search(r"(\d+)\^(\d+) elements", row["workload"]).groups()
    numel = int(base) ** int(exp)
    op = Elementwise(name="gelu", numel=numel, flops_per_element=GELU_VECTOR_FLOPS, special=True,
                     dtype=row["dtype"])
    return numel / _time(op, device)


def _stream(row, device, n_dev):
    from workloads.operators import Elementwise
    from workloads.tensors import Tensor

    n, dt = ASSUMED["stream_elements"], row["dtype"]
    if "triad" in row["workload"]:
        op = Elementwise(name="triad", numel=n, flops_per_element=2.0, operands=2, dtype=dt)
    else:  # read: every element loaded once, nothing written
        op = Elementwise(name="read", numel=n, inputs=[Tensor("read.in", (n,), dt)], outputs=[], dtype=dt)
    return op.bytes_total / _time(op, device)


def _latency(row, device, n_dev):
    from workloads.operators import Elementwise
    from workloads.tensors import Tensor

    # one dependent 8-byte load: the model's time for it, less the kernel launch it does not pay
    op = Elementwise(name="load", numel=1, inputs=[Tensor("load.in", (1,), "fp64")], outputs=[], dtype="fp64")
    return _time(op, device) - device.launch_overhead_s


def _collective(row, device, n_dev):
    from roofline.collectives import bus_factor
    from workloads.operators import Collective

    wl = row["workload"]
    if "all_reduce" in wl:
        size = float(re.search(r"(\d+) GiB", wl).group(1)) * 2**30
        op = Collective(name="ar", collective="all_reduce", payload_bytes=size, group_size=n_dev)
        if "ring" in wl:
            op.algorithm = "ring"  # the row measured with NVLS off
        algbw = size / _time(op, device)
        return algbw * bus_factor(op.collective, n_dev)  # nccl-tests' bus bandwidth
    size = float(ASSUMED["copy_bytes"])
    op = Collective(name="d2d", collective="send_recv", payload_bytes=size, group="pp", group_size=2,
                    peer_stage=1)
    return size / _time(op, device)


OPERATOR_ROWS: list[tuple[str, Callable]] = [
    (r"^matmul ", _matmul),
    (r"^gelu ", _gelu),
    (r"^stream ", _stream),
    (r"^pointer chase", _latency),
    (r"^all_reduce|device-to-device copy", _collective),
]


def predict_row(row: dict) -> tuple[float | None, str]:
    """(predicted value in the row's unit, note) for one public row."""
    for pattern, fn in OPERATOR_ROWS:
        if re.search(pattern, row["workload"]):
            try:
                device, n_dev = _device_of(row["hardware"])
                value_si = fn(row, device, n_dev)
            except InputError as err:
                return None, f"not predicted: {err.problems[0].message}"
            return value_si / UNIT_SCALE[row["unit"]], "roofline.cost"
    from simulator.public import predict_public_row

    try:
        value = predict_public_row(row)
    except InputError as err:
        return None, f"not predicted: {err.problems[0].message}"
    return (None if value is None else float(value)), "simulator"


def _resolve_source(source: str, previous: str) -> str:
    """The CSV's ``same`` (or ``same (detail)``) spelled out from the row above."""
    if source == "same":
        return previous
    if source.startswith("same ("):
        return previous.split(" (")[0] + source[len("same"):]
    return source


def validate_public(rows: list[dict] | None = None) -> list[dict]:
    """Part 3: one result row per public measurement (measured, predicted, error, source, and
    ``role``: ``fit`` for the rows in :data:`FIT_ROWS`, ``held-out`` otherwise)."""
    out = []
    last_source = ""
    for row in rows if rows is not None else load_rows():
        source = _resolve_source(row["source"], last_source)
        last_source = source
        predicted, how = predict_row(row)
        measured = float(row["value"])
        role = "fit" if row["id"] in FIT_ROWS else "held-out"
        out.append({"section": "public", "name": row["id"], "family": row["metric"], "role": role,
                    "hardware": row["hardware"], "workload": row["workload"], "dtype": row["dtype"],
                    "measured": measured, "predicted": predicted, "unit": row["unit"],
                    "error": rel_error(predicted, measured), "how": how, "source": source,
                    "framework": row["framework"]})
    return out


def public_summary(rows: list[dict]) -> dict:
    """Error over the held-out public rows with a prediction: count, MAPE, median absolute
    error, worst; rows a parameter was fitted on (``role: fit``) are counted apart, not in it."""
    import numpy as np

    held = [r for r in rows if r.get("role") != "fit" and r["error"] is not None]
    errs = [abs(r["error"]) for r in held]
    worst = max(held, key=lambda r: abs(r["error"]), default=None)
    return {"over": "held-out rows only (rows with role 'fit' are excluded)",
            "n": len(errs), "fit_rows": [r["name"] for r in rows if r.get("role") == "fit"],
            "not_predicted": sum(r["error"] is None for r in rows),
            "mape": float(np.mean(errs)) if errs else None,
            "median_abs_error": float(np.median(errs)) if errs else None,
            "worst": abs(worst["error"]) if worst else None, "worst_case": worst["name"] if worst else None}
