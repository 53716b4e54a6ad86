"""Fitting vLLM 0.6's per-step output processing on its public ``fit`` row.

One constant: ``output_cpu_per_sequence`` of the ``vllm-v0.6`` runtime profile
(``hwmodels/runtimes/vllm-v0.6.yaml``), the CPU time vLLM 0.6 spends on every sampled sequence
in every step, multi-step or not (taking the token to the host, appending it to the sequence,
incremental detokenization, stop checks; :mod:`hwmodels.runtime`). Its asynchronous output
processor runs it beside the next step's GPU work, so it shows only where it outlasts that work:
in large batches. It is fitted on the public serving rows with role ``fit`` that vLLM 0.6 ran
(:func:`fit_rows`: the offline ShareGPT throughput of Llama 3.1 8B on one A100) and on nothing
else: whole microseconds in [0, 400], the value whose served run's log error is smallest
(the predicted throughput falls monotonically as the constant grows, so a bisection finds it).
Run ``python -m calibration.engine_fit`` to reproduce the figure in the YAML; it prints the
held-out vLLM 0.6 rows' errors at that value afterwards.
"""

from __future__ import annotations

import argparse
import dataclasses
import math

from hwmodels.runtime import load_runtime
from simulator import public as served_rows

from . import public

PROFILE = "vllm-v0.6"
FIELD = "output_cpu_per_sequence_s"
US = 1e-6
LIMIT_US = 400


def fit_rows(role: str = "fit") -> list[dict]:
    """Public serving rows of ``role`` that ran under the ``vllm-v0.6`` profile."""
    return [row for row in public.load_rows()
            if row["role"] == role and public.row_class(row) == "serving"
            and served_rows.runtime_of(row) == PROFILE]


def log_error(row: dict, output_cpu_us: float) -> float:
    """log(predicted / measured) of served ``row`` with the profile's constant at ``output_cpu_us``."""
    config = served_rows.serve_config(row)
    config["profile"] = dataclasses.replace(config["profile"], **{FIELD: output_cpu_us * US})
    run = served_rows._serve_cached(served_rows._key(config))
    value = run[served_rows.SERVED_VALUES[row["metric"]]] / served_rows.UNITS[row["unit"]]
    return math.log(value / float(row["value"]))


def loss(rows: list[dict], output_cpu_us: float) -> float:
    """Sum of squared log errors of ``rows`` at ``output_cpu_us``."""
    return sum(log_error(row, output_cpu_us) ** 2 for row in rows)


def fit(rows: list[dict]) -> int:
    """The whole number of microseconds in [0, LIMIT_US] that fits ``rows`` (throughput rows:
    a bisection on the sign of their summed log error, then the better neighbour)."""
    if not rows or any(r["metric"] != "serving_output_throughput" for r in rows):
        raise ValueError("the bisection needs throughput rows (their error falls as the constant grows)")

    def too_fast(us: int) -> bool:
        return sum(log_error(row, us) for row in rows) > 0

    lo, hi = 0, LIMIT_US
    if not too_fast(lo):
        return lo
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if too_fast(mid) else (lo, mid)
    return min((lo, hi), key=lambda us: loss(rows, us))


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    rows = fit_rows()
    value = fit(rows)
    current = getattr(load_runtime(PROFILE), FIELD) / US
    print(f"{PROFILE}: output_cpu_per_sequence = {value} us (fit on {', '.join(r['id'] for r in rows)}); "
          f"in the profile now: {current:g} us")
    for row in fit_rows("held-out"):
        print(f"  held-out {row['id']}: {math.exp(log_error(row, current)) - 1:+.1%} at the profile's value")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
