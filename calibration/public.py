"""Part 3 of the validation: every row of the bundled public measurements, predicted from the catalog.

Each row names a catalog device or system, a workload and a metric. Operator rows (GEMM,
attention, GELU, STREAM, pointer-chase latency, NVLink copy, all-reduce bus bandwidth) become one
workloads operator costed by ``roofline.cost`` on the catalog device; LLM rows (time to first
token, inter-token latency, output throughput, energy per token, mean power of a static batch,
and prefill or decode tokens/s derived from the first two) are predicted by the simulator's public-row helper
(:func:`simulator.public.predict_public_row`), the served ones (serving runs over a request mix,
the ML.ENERGY chat rows) by a run of the serving simulator. A row the model cannot predict (a
device missing from the catalog, an unknown workload) keeps ``predicted = None`` and says why, so
the table always lists every row. Nothing here is tuned to these rows:
sizes the sources do not state are fixed a priori and named in :data:`ASSUMED`.

Every row carries a ``role`` in the CSV, set before any prediction of it was looked at: ``fit``
rows may be used to fit parameters (at most a third of them; among them the energy model's
active-power fraction, a collective's startup and vLLM 0.6's output processing,
:data:`FIT_ROWS`), ``held-out`` rows
never. The summaries are per role and per row class (:func:`row_class`): :func:`public_summary` over the held-out rows,
:func:`public_groups` for both roles.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from importlib import resources

import numpy as np

import hwmodels
from hwmodels import defaults
from hwmodels.errors import InputError
from roofline.collectives import bus_factor
from roofline.costs import cost
from simulator.public import predict_public_row, served
from workloads.operators import Attention, Collective, Elementwise, MatMul, RMSNorm
from workloads.tensors import Tensor

from .fit import rel_error
from .npmodel import GELU_VECTOR_FLOPS

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
# The ML.ENERGY row the energy model's active-power fraction is fitted on with the fit
# ``mean_power`` rows (calibration.energy_fit: their measured mean power).
ENERGY_FIT_ROW = "energy-h100-llama31-8b-b8"
FIT_ROWS = {ENERGY_FIT_ROW: "the energy model's active-power fraction, with the fit mean_power rows "
                            "(python -m calibration.energy_fit)",
            "serve-a100-llama31-8b-vllm-tput": "vLLM 0.6's output processing per sequence and step "
                                               "(python -m calibration.engine_fit)",
            **dict.fromkeys(("allreduce-a100x8-azure-64m", "allreduce-h100x8-azure-64m", "allreduce-h200x8-azure-16m"),
                            "a library collective's startup per step (python -m calibration.collective_fit)")}

# Row classes the summaries group by (:func:`row_class`).
ROW_CLASSES = ("gemm", "attention", "prefill", "decode", "serving", "energy", "elementwise", "memory",
               "collective")

# LLM metrics derived from one the simulator predicts: metric -> (simulated metric, its value in
# ms -> the row's value). A prefill's tokens/s is batch x prompt over the TTFT; a decode's is
# batch over the step time at the mean context (llama.cpp's tg and pp figures).
DERIVED_LLM_METRICS: dict[str, tuple[str, Callable[[dict, float], float]]] = {
    "prefill_throughput": ("time_to_first_token",
                           lambda row, ms: _count(row, "batch") * _count(row, "input_len") / (ms * 1e-3)),
    "decode_throughput": ("median_inter_token_latency", lambda row, ms: _count(row, "batch") / (ms * 1e-3)),
}

# Metrics the model has no predictor for yet, with the reason the table shows (none at present:
# the serving rows run the serving simulator, simulator.public.serve_row).
NOT_PREDICTED_YET: dict[str, str] = {}

UNIT_SCALE = {"TFLOP/s": 1e12, "GB/s": 1e9, "Gelem/s": 1e9, "ms": 1e-3, "us": 1e-6, "ns": 1e-9, "s": 1.0,
              "tok/s": 1.0, "J/tok": 1.0, "W": 1.0}


def _count(row: dict, key: str) -> int:
    """A row's integer field (batch, input_len), 1 when empty."""
    value = (row.get(key) or "").strip()
    return int(float(value)) if value else 1


def row_class(row: dict) -> str:
    """The class a public row is summarised in (one of :data:`ROW_CLASSES`)."""
    workload, metric = row["workload"], row["metric"]
    if workload.startswith(("matmul", "batched matmul")):
        return "gemm"
    if workload.startswith("attention"):
        return "attention"
    if workload.startswith(("gelu", "fused add rmsnorm")):
        return "elementwise"
    if re.search(r"^all_reduce|^send_recv|device-to-device copy", workload):
        return "collective"
    if workload.startswith(("stream", "pointer chase")):
        return "memory"
    if metric.startswith("energy") or metric == "mean_power":
        return "energy"
    if metric.startswith("serving_") or metric == "output_throughput":
        return "serving"
    if metric in ("time_to_first_token", "prefill_throughput"):
        return "prefill"
    return "decode"


def load_rows() -> list[dict]:
    """The bundled public measurements, one dict per CSV row."""
    text = resources.files("calibration.data").joinpath(PUBLIC_CSV).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def _device_of(ref: str):
    """(device, devices in the system) for a catalog device or system id."""
    hw = hwmodels.load_hardware(ref)
    if hasattr(hw, "accelerators"):
        return hw.first_accelerator(), len(hw.accelerators)
    return hw, 1


def _time(op, device, regimes: list | None = None) -> float:
    """The modelled time of ``op`` alone on ``device``; its regime is appended to ``regimes``."""
    d = cost(op, device)
    if regimes is not None:
        regimes.append(d.regime)
    return d.time_s


def _matmul(row, device, n_dev, regimes=None):
    dims = dict(re.findall(r"([MNK])=(\d+)", row["workload"]))
    m, n, k = (int(dims[x]) for x in "MNK")
    batch = _count(row, "batch")   # a batched GEMM: batch independent m x n x k products in one kernel
    t = _time(MatMul(name="gemm", batch=batch, m=m, n=n, k=k, dtype=row["dtype"], b_role="activation"),
              device, regimes)
    return {"throughput": 2.0 * batch * m * n * k / t, "latency": t}[row["metric"]]


def _gelu(row, device, n_dev, regimes=None):
    base, exp = re.search(r"(\d+)\^(\d+) elements", row["workload"]).groups()
    numel = int(base) ** int(exp)
    op = Elementwise(name="gelu", numel=numel, flops_per_element=GELU_VECTOR_FLOPS, special=True,
                     dtype=row["dtype"])
    return numel / _time(op, device, regimes)


def _add_norm(row, device, n_dev, regimes=None):
    """A fused residual add + RMSNorm kernel's time as a profiler reports it (the kernel alone on
    the device, no launch gap): x and the residual in, the output and the new residual out, the
    weight read once; the kernel pays its minimum time in a replayed graph
    (:data:`hwmodels.defaults.GRAPH_KERNEL_FIXED_S`) in place of a launch."""
    dims = dict(re.findall(r"([MN])=(\d+)", row["workload"]))
    m, n, dt = int(dims["M"]), int(dims["N"]), row["dtype"]
    op = RMSNorm(name="add_norm", rows=m, cols=n, dtype=dt,
                 inputs=[Tensor("x", (m, n), dt), Tensor("residual", (m, n), dt),
                         Tensor("weight", (n,), dt, "weight")],
                 outputs=[Tensor("out", (m, n), dt), Tensor("residual.out", (m, n), dt)])
    op.launch_s = defaults.GRAPH_KERNEL_FIXED_S
    return _time(op, device, regimes)


def _stream(row, device, n_dev, regimes=None):
    n, dt = ASSUMED["stream_elements"], row["dtype"]
    if "triad" in row["workload"]:
        op = Elementwise(name="triad", numel=n, flops_per_element=2.0, operands=2, dtype=dt)
    else:  # read: every element loaded once, nothing written
        op = Elementwise(name="read", numel=n, inputs=[Tensor("read.in", (n,), dt)], outputs=[], dtype=dt)
    return op.bytes_total / _time(op, device, regimes)


# the fused-attention kernel family a row's framework column names (else the device's own)
STATED_ATTENTION_KERNELS = ((r"FlashAttention-2", "fa2"), (r"FlashAttention-3", "fa3"))


def stated_attention_kernel(row: dict) -> str | None:
    """The kernel family (a name of :data:`roofline.efficiency.ATTENTION_KERNELS`) the row's
    framework says ran, or None: an FA2 benchmark on a Hopper GPU runs FA2, not the device's FA3."""
    for pattern, name in STATED_ATTENTION_KERNELS:
        if re.search(pattern, row.get("framework", "")):
            return name
    return None


def _attention(row, device, n_dev, regimes=None):
    """An attention kernel alone (FlashAttention benchmarks): latency, or TFLOP/s as those
    benchmarks count them, 4 x B x H x Q x KV x D, halved when causal. The operator also writes
    the new K/V as a cache append, a small overcount for a standalone kernel. ``P=`` is the block
    size of a paged KV cache (a decode row: Q=1, the decode step's operator)."""
    dims = {key: int(value) for key, value in re.findall(r"\b(B|H|KVH|Q|KV|D|P)=(\d+)", row["workload"])}
    causal = not re.search(r"non-causal", row["workload"])
    op = Attention(name="attention", batch=dims["B"], heads=dims["H"], kv_heads=dims["KVH"], q_len=dims["Q"],
                   kv_len=dims["KV"], head_dim=dims["D"], causal=causal, dtype=row["dtype"],
                   page_size=dims.get("P"), kernel=stated_attention_kernel(row))
    t = _time(op, device, regimes)
    counted = 4.0 * dims["B"] * dims["H"] * dims["Q"] * dims["KV"] * dims["D"] * (0.5 if causal else 1.0)
    return {"throughput": counted / t, "latency": t}[row["metric"]]


def _latency(row, device, n_dev, regimes=None):
    # one dependent 8-byte load: the model's time for it, less the kernel launch it does not pay
    op = Elementwise(name="load", numel=1, inputs=[Tensor("load.in", (1,), "fp64")], outputs=[], dtype="fp64")
    return _time(op, device, regimes) - device.launch_overhead_s


def collective_op(row: dict, n_dev: int) -> Collective:
    """The collective a row measured: an all-reduce of the stated size over the ``n_dev`` ranks
    (pinned to the ring when the row says so), else a send of the stated size (or nvbandwidth's
    default buffer) to the next device."""
    wl = row["workload"]
    stated = re.search(r"(\d+) (GiB|MiB)", wl)
    size = float(stated.group(1)) * (2**30 if stated.group(2) == "GiB" else 2**20) if stated else None
    if "all_reduce" in wl:
        op = Collective(name="ar", collective="all_reduce", payload_bytes=size, group_size=n_dev)
        if "ring" in wl:
            op.algorithm = "ring"  # the row measured with NVLS off
        return op
    return Collective(name="d2d", collective="send_recv", payload_bytes=size or float(ASSUMED["copy_bytes"]),
                      group="pp", group_size=2, peer_stage=1)


def _collective(row, device, n_dev, regimes=None):
    op = collective_op(row, n_dev)
    algbw = op.payload_bytes / _time(op, device, regimes)
    return algbw * bus_factor(op.collective, op.group_size)  # nccl-tests' bus bandwidth (send: 1)


OPERATOR_ROWS: list[tuple[str, Callable]] = [
    (r"^(batched )?matmul ", _matmul),
    (r"^attention ", _attention),
    (r"^gelu ", _gelu),
    (r"^fused add rmsnorm ", _add_norm),
    (r"^stream ", _stream),
    (r"^pointer chase", _latency),
    (r"^all_reduce|^send_recv|device-to-device copy", _collective),
]


def predict_row(row: dict, regimes: list | None = None) -> tuple[float | None, str]:
    """(predicted value in the row's unit, note) for one public row; the regime of the
    prediction (compute-, memory- or overhead-bound) is appended to ``regimes`` when given."""
    regimes = [] if regimes is None else regimes
    if row["metric"] in NOT_PREDICTED_YET:
        return None, NOT_PREDICTED_YET[row["metric"]]
    for pattern, fn in OPERATOR_ROWS:
        if re.search(pattern, row["workload"]):
            try:
                device, n_dev = _device_of(row["hardware"])
                value_si = fn(row, device, n_dev, regimes)
            except InputError as err:
                return None, f"not predicted: {err.problems[0].message}"
            return value_si / UNIT_SCALE[row["unit"]], "roofline.cost"
    simulated, convert = DERIVED_LLM_METRICS.get(row["metric"], (None, None))
    try:
        if simulated is None:
            value = predict_public_row(row, regimes)
        else:
            ms = predict_public_row({**row, "metric": simulated, "unit": "ms"}, regimes)
            value = None if ms is None else convert(row, ms)
    except InputError as err:
        return None, f"not predicted: {err.problems[0].message}"
    return (None if value is None else float(value)), "serving simulator" if served(row) else "simulator"


def _resolve_source(source: str, previous: str) -> str:
    """The CSV's ``same`` (or ``same (detail)``) spelled out from the row above."""
    if source == "same":
        return previous
    if source.startswith("same ("):
        return previous.split(" (")[0] + source[len("same"):]
    return source


def validate_public(rows: list[dict] | None = None) -> list[dict]:
    """Part 3: one result row per public measurement (measured, predicted, error, source, and
    ``role`` from the CSV, ``fit`` for the rows in :data:`FIT_ROWS` in any case, and ``class``,
    :func:`row_class`)."""
    out = []
    last_source = ""
    for row in rows if rows is not None else load_rows():
        source = _resolve_source(row["source"], last_source)
        last_source = source
        regimes: list[str] = []
        predicted, how = predict_row(row, regimes)
        measured = float(row["value"])
        role = "fit" if row["id"] in FIT_ROWS else (row.get("role") or "held-out")
        out.append({"section": "public", "name": row["id"], "family": row["metric"], "role": role,
                    "class": row_class(row),
                    "hardware": row["hardware"], "workload": row["workload"], "dtype": row["dtype"],
                    "measured": measured, "predicted": predicted, "unit": row["unit"],
                    "error": rel_error(predicted, measured), "how": how, "source": source,
                    "regime": regimes[-1] if regimes and predicted is not None else None,
                    "framework": row["framework"]})
    return out


def public_summary(rows: list[dict]) -> dict:
    """Error over the held-out public rows with a prediction: count, MAPE, median absolute
    error, worst; rows a parameter was fitted on (``role: fit``) are counted apart, not in it."""
    held = [r for r in rows if r.get("role") != "fit" and r["error"] is not None]
    errs = [abs(r["error"]) for r in held]
    worst = max(held, key=lambda r: abs(r["error"]), default=None)
    return {"over": "held-out rows only (rows with role 'fit' are excluded)",
            "n": len(errs), "fit_rows": [r["name"] for r in rows if r.get("role") == "fit"],
            "not_predicted": sum(r["error"] is None for r in rows),
            "mape": float(np.mean(errs)) if errs else None,
            "median_abs_error": float(np.median(errs)) if errs else None,
            "worst": abs(worst["error"]) if worst else None, "worst_case": worst["name"] if worst else None}


# Units whose larger value is better (rates); for the others (times, J/tok) smaller is better.
HIGHER_IS_BETTER_UNITS = ("TFLOP/s", "GB/s", "Gelem/s", "tok/s")


def optimism(row: dict) -> float | None:
    """The row's error signed so that positive means optimistic (the model predicts a faster,
    higher-throughput or less energy-hungry run than was measured), whatever the unit."""
    if row["error"] is None:
        return None
    return row["error"] if row["unit"] in HIGHER_IS_BETTER_UNITS else -row["error"]


def _error_stats(rows: list[dict]) -> dict:
    """n, MAPE, median absolute error and signed mean error (:func:`optimism`) of the rows with
    a prediction."""
    signed = [optimism(r) for r in rows if r["error"] is not None]
    if not signed:
        return {"n": 0, "mape": None, "median_abs_error": None, "signed_mean_error": None}
    absolute = np.abs(signed)
    return {"n": len(signed), "mape": float(np.mean(absolute)), "median_abs_error": float(np.median(absolute)),
            "signed_mean_error": float(np.mean(signed))}


def public_groups(rows: list[dict]) -> dict[str, dict[str, dict]]:
    """Error statistics per role (``fit``, ``held-out``) and per row class, plus ``all`` classes
    of each role: ``{"held-out": {"all": {...}, "gemm": {...}, ...}, "fit": {...}}``. Each entry
    has n (rows with a prediction), MAPE, median |error|, signed mean error (:func:`optimism`:
    positive = the model is optimistic) and ``not_predicted``."""
    out: dict[str, dict[str, dict]] = {}
    for role in ("held-out", "fit"):
        mine = [r for r in rows if r.get("role", "held-out") == role]
        groups = {"all": mine}
        for cls in ROW_CLASSES:
            members = [r for r in mine if r.get("class") == cls]
            if members:
                groups[cls] = members
        out[role] = {name: {**_error_stats(members),
                            "not_predicted": sum(r["error"] is None for r in members)}
                     for name, members in groups.items()}
    return out
