"""How accurate is this? 80% prediction intervals from the held-out public residuals.

Every held-out public row with a prediction (:func:`calibration.public.validate_public`) gives a
residual: the log of measured over predicted, oriented as a cost (time, energy; for a rate, the
inverse), so a positive residual means the real run was slower or hungrier than predicted. The
residuals are grouped by the row's class (gemm, attention, prefill, decode, ...) and the regime
of its prediction (compute-, memory- or overhead-bound); the interval of a figure is the figure
scaled by the group's split-conformal 10% and 90% residual bounds (:func:`_quantiles`). A group needs
:data:`MIN_GROUP` rows; with fewer, the class alone, then (for a class with a pool, :data:`FALLBACK_POOL`:
serving borrows the pooled prefill, decode and serving rows, ``llm``) the pool with the regime and
the pool alone, then the regime alone, then all rows are used (:func:`group_keys`); the group a
figure's interval came from is its basis (:func:`basis`). Fit rows never enter: they may have been
tuned to.

``python -m calibration.intervals`` recomputes the bundled table (``data/intervals.json``) and
prints the leave-one-out coverage (each held-out row's measurement against the interval built
without it), which ``ridgeline validate --public`` also reports. The CLI attaches the intervals to
``op``, ``simulate`` and ``serve`` figures as ``<key>_interval: [lo, hi]`` (a serving run's with
its ``interval_basis``, :func:`attach_serve_intervals`).
"""

from __future__ import annotations

import functools
import json
import math
from importlib import resources
from pathlib import Path

from simulator.serving.result import interval_class

from .public import validate_public

LEVEL = 0.80
MIN_GROUP = 5
TABLE_FILE = "intervals.json"
RATE_UNITS = ("TFLOP/s", "GB/s", "Gelem/s", "tok/s")


def residual(row: dict) -> float | None:
    """log(measured / predicted) as a cost (for a rate: log(predicted / measured)); None without
    a positive prediction and measurement."""
    measured, predicted = row.get("measured"), row.get("predicted")
    if not measured or not predicted or measured <= 0 or predicted <= 0:
        return None
    ratio = measured / predicted
    return math.log(1.0 / ratio if row.get("unit") in RATE_UNITS else ratio)


# Pools of kin classes: a class named in FALLBACK_POOL whose own held-out rows are too few borrows
# its pool's before falling back to the regime alone. A serving run is prefills and decodes under a
# runtime, so its kin are the LLM step rows (the serving class held one or two rows at first).
POOLS = {"llm": ("prefill", "decode", "serving")}
FALLBACK_POOL = {"serving": "llm"}


def _with_regime(keys: list[str], regime: str | None) -> list[str]:
    return [k for key in keys for k in ([f"{key}/{regime}"] if regime else []) + [key]]


def group_keys(cls: str | None, regime: str | None) -> list[str]:
    """The groups a figure's interval may come from, most specific first: class and regime,
    class, its pool (:data:`FALLBACK_POOL`) with the regime, the pool, the regime, all."""
    keys = _with_regime([k for k in (cls, FALLBACK_POOL.get(cls or "")) if k], regime)
    return [*keys, *([regime] if regime else []), "all"]


def member_keys(cls: str | None, regime: str | None) -> list[str]:
    """The groups a held-out row of class ``cls`` in ``regime`` counts in: those of
    :func:`group_keys` and every pool its class belongs to (:data:`POOLS`)."""
    pools = [pool for pool, members in POOLS.items() if cls in members]
    return list(dict.fromkeys([*group_keys(cls, regime), *_with_regime(pools, regime)]))


def _quantiles(values: list[float], level: float) -> tuple[float, float]:
    """Split-conformal bounds of ``values`` at ``level``: the order statistics of rank
    floor((n + 1) x tail) and ceil((n + 1) x (1 - tail)), so a new residual from the same
    distribution falls between them with probability at least ``level`` (clamped to the
    smallest and largest residual when n is too small for that rank)."""
    tail = (1.0 - level) / 2.0
    ordered = sorted(values)
    n = len(ordered)
    eps = 1e-9   # (1 - 0.8) / 2 is 0.0999...: keep 20 x 0.1 at rank 2, not 1
    low = max(1, math.floor((n + 1) * tail + eps))
    high = min(n, math.ceil((n + 1) * (1.0 - tail) - eps))
    return ordered[low - 1], ordered[high - 1]


def fit_table(rows: list[dict], level: float = LEVEL) -> dict[str, dict]:
    """Residual percentiles per group (``class/regime``, ``class``, ``pool/regime``, ``pool``,
    ``regime``, ``all``) of the held-out rows: ``{key: {"n", "lo", "hi"}}``, groups with at least
    :data:`MIN_GROUP` rows."""
    groups: dict[str, list[float]] = {}
    for row in rows:
        r = residual(row) if row.get("role", "held-out") == "held-out" else None
        if r is None:
            continue
        for key in member_keys(row.get("class"), row.get("regime")):
            groups.setdefault(key, []).append(r)
    out = {}
    for key, values in sorted(groups.items()):
        if len(values) >= MIN_GROUP:
            lo, hi = _quantiles(values, level)
            out[key] = {"n": len(values), "lo": lo, "hi": hi}
    return out


def bounds(table: dict, cls: str | None, regime: str | None) -> tuple[float, float, str]:
    """(lo, hi, group) residual percentiles for a figure of class ``cls`` in ``regime``."""
    for key in group_keys(cls, regime):
        if key in table:
            return table[key]["lo"], table[key]["hi"], key
    return 0.0, 0.0, "none"


def basis(table: dict, cls: str | None, regime: str | None) -> dict:
    """Where the interval of a figure of class ``cls`` in ``regime`` comes from: the ``group``
    used, its held-out rows ``n``, and ``fallback`` (true when the class with the regime, or the
    class alone, had fewer than :data:`MIN_GROUP` rows and a wider group stood in)."""
    _, _, key = bounds(table, cls, regime)
    return {"class": cls, "regime": regime, "group": key, "n": table.get(key, {}).get("n", 0),
            "fallback": key not in group_keys(cls, regime)[:1 + bool(cls and regime)], "level": LEVEL}


def interval(value: float, table: dict, cls: str | None, regime: str | None, *, rate: bool = False) -> list[float]:
    """The 80% interval ``[lo, hi]`` of ``value`` (a cost such as seconds or joules; ``rate``: a
    throughput, larger is better)."""
    lo, hi, _ = bounds(table, cls, regime)
    if rate:
        return [value * math.exp(-hi), value * math.exp(-lo)]
    return [value * math.exp(lo), value * math.exp(hi)]


def inside(row: dict, table: dict) -> bool | None:
    """Whether ``row``'s measurement falls in the interval of its prediction (None if no prediction)."""
    if residual(row) is None:
        return None
    lo, hi = interval(row["predicted"], table, row.get("class"), row.get("regime"), rate=row.get("unit") in RATE_UNITS)
    return lo <= row["measured"] <= hi


def coverage(rows: list[dict], level: float = LEVEL) -> dict:
    """Leave-one-out coverage over the held-out rows: each row's measurement against the interval
    fitted on the other held-out rows. ``{"all": {"n", "inside", "coverage"}, <class>: ...}``."""
    held = [r for r in rows if r.get("role", "held-out") == "held-out" and residual(r) is not None]
    counts: dict[str, list[int]] = {}
    for i, row in enumerate(held):
        table = fit_table(held[:i] + held[i + 1:], level)
        hit = inside(row, table)
        for key in ("all", row.get("class") or "other"):
            n, k = counts.get(key, [0, 0])
            counts[key] = [n + 1, k + int(bool(hit))]
    return {key: {"n": n, "inside": k, "coverage": k / n} for key, (n, k) in counts.items()}


@functools.cache
def _bundled_text() -> str:
    return resources.files("calibration.data").joinpath(TABLE_FILE).read_text(encoding="utf-8")


def load_table() -> dict:
    """The bundled interval table (``calibration/data/intervals.json``)."""
    return json.loads(_bundled_text())["groups"]


def table_document(rows: list[dict], level: float = LEVEL) -> dict:
    """What ``data/intervals.json`` holds: the level, the rule, the groups."""
    return {"level": level, "from": "held-out rows of ridgeline validate --public (python -m calibration.intervals)",
            "residual": "log(measured / predicted) as a cost: for a rate log(predicted / measured)",
            "min_group": MIN_GROUP, "groups": fit_table(rows, level)}


# Figures of a simulation and how their interval is looked up: key -> (rate?, class or None for the phase's).
SIM_FIGURES = {"latency_s": (False, None), "throughput_tok_s": (True, None), "processed_tok_s": (True, None),
               "energy_j": (False, "energy"), "energy_per_token_j": (False, "energy")}
PHASE_CLASS = {"prefill": "prefill", "decode": "decode", "chunked": "decode"}
OP_CLASS = {"matmul": "gemm", "attention": "attention", "elementwise": "elementwise", "collective": "collective"}


def sim_intervals(summary: dict, phase: str | None, regime: str, table: dict | None = None) -> dict:
    """``<key>_interval`` for each figure of a simulation summary (``SimResult.summary()``)."""
    table = load_table() if table is None else table
    out = {}
    for key, (rate, cls) in SIM_FIGURES.items():
        value = summary.get(key)
        if isinstance(value, (int, float)) and value > 0:
            out[f"{key}_interval"] = interval(value, table, cls or PHASE_CLASS.get(phase or ""), regime, rate=rate)
    return out


def op_intervals(report: dict, kind: str, regime: str, table: dict | None = None) -> dict:
    """``latency_s_interval`` and ``achieved_flops_interval`` of one operator's report."""
    table = load_table() if table is None else table
    cls = OP_CLASS.get(kind)
    out = {}
    if report.get("latency_s", 0) > 0:
        out["latency_s_interval"] = interval(report["latency_s"], table, cls, regime)
    if report.get("achieved_flops", 0) > 0:
        out["achieved_flops_interval"] = interval(report["achieved_flops"], table, cls, regime, rate=True)
    if report.get("energy_j", 0) > 0:
        out["energy_j_interval"] = interval(report["energy_j"], table, "energy", regime)
    return out


# Figures of a serving run's metrics (ServeResult.metrics): block -> (keys or None for every
# statistic, rate?); the class of each block's residuals is serving.result.interval_class's.
SERVE_FIGURES = {
    "ttft_s": (None, False), "tpot_s": (None, False), "itl_s": (None, False), "e2e_s": (None, False),
    "throughput": (("requests_per_s", "output_tokens_per_s", "total_tokens_per_s"), True),
    "goodput": (("requests_per_s",), True),
    "energy": (("total_j", "j_per_output_token"), False),
}


def serve_interval_block(metrics: dict, regime: str | None, table: dict | None = None) -> dict:
    """``{block: {"<key>_interval": [lo, hi]}}`` for every positive figure of a serving run's
    ``metrics`` (:data:`SERVE_FIGURES`), and ``interval_basis``: per class, the group each
    interval came from (:func:`basis`). ``regime``: the run's (``metrics["regime"]``)."""
    table = load_table() if table is None else table
    out: dict = {}
    for block, (keys, rate) in SERVE_FIGURES.items():
        cls = interval_class(block)
        values = metrics.get(block) or {}
        for key in keys or list(values):
            value = values.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
                out.setdefault(block, {})[f"{key}_interval"] = interval(value, table, cls, regime, rate=rate)
    out["interval_basis"] = {cls: basis(table, cls, regime) for cls in ("serving", "energy")}
    return out


def attach_serve_intervals(result, table: dict | None = None):
    """Give a :class:`simulator.serving.result.ServeResult` its intervals (``result.intervals``,
    merged into ``to_dict()``'s metrics and shown by ``metrics_frame()``); returns ``result``."""
    result.intervals = serve_interval_block(result.metrics, result.metrics.get("regime"), table)
    return result


def main(argv: list[str] | None = None) -> int:
    rows = validate_public()
    doc = table_document(rows)
    path = Path(__file__).parent / "data" / TABLE_FILE
    path.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    cov = coverage(rows)
    print(f"wrote {path.name}: {len(doc['groups'])} groups; leave-one-out coverage of the {LEVEL:.0%} intervals "
          f"on held-out rows: {cov['all']['coverage']:.1%} ({cov['all']['inside']}/{cov['all']['n']})")
    for key, c in sorted(cov.items()):
        if key != "all":
            print(f"  {key}: {c['inside']}/{c['n']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
