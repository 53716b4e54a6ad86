"""Serving metrics, defined as vLLM's ``benchmark_serving`` defines them (see docs/serving.md).

Over the completed requests: TTFT = first token - arrival (queueing included); TPOT per request =
(E2E - TTFT) / (output tokens - 1), for requests with more than one output token; ITL = every gap
between consecutive tokens of a request, pooled over all requests; E2E = last token - arrival.
Each with mean, median, p90, p95, p99 (numpy's linear percentiles, as the benchmark computes
them). The duration runs from the first arrival (time 0) to the last completion; throughput is
completed requests, output tokens and prompt + output tokens over it; goodput counts only the
requests that meet every SLO given (TTFT, TPOT, E2E; in seconds).

Energy per output token is given twice: over the whole run, and over the steady state as the
ML.ENERGY benchmark measures it (:func:`steady_state_energy`), which leaves out the ramp-up and
the drain of a run that sends more requests than the server holds.
"""

from __future__ import annotations

import numpy as np

STAT_KEYS = ("mean", "median", "p90", "p95", "p99")


def stats(values) -> dict[str, float]:
    """mean, median, p90, p95, p99 of ``values`` (all 0.0 for none: a result holds no NaN)."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return dict.fromkeys(STAT_KEYS, 0.0)
    p = np.percentile(arr, [50, 90, 95, 99])
    return {"mean": float(arr.mean()), "median": float(p[0]), "p90": float(p[1]), "p95": float(p[2]),
            "p99": float(p[3])}


def request_arrays(requests) -> dict[str, np.ndarray]:
    """Per completed request: arrival, first token, finish, tokens, preemptions (arrays)."""
    done = [r for r in requests if r.finish_s is not None]
    return {
        "id": np.array([r.id for r in done], dtype=np.int64),
        "arrival_s": np.array([r.arrival_s for r in done]),
        "scheduled_s": np.array([r.scheduled_s for r in done]),
        "first_token_s": np.array([r.first_token_s for r in done]),
        "finish_s": np.array([r.finish_s for r in done]),
        "input_tokens": np.array([r.prompt for r in done], dtype=np.int64),
        "output_tokens": np.array([r.output for r in done], dtype=np.int64),
        "preemptions": np.array([r.preemptions for r in done], dtype=np.int64),
        "replica": np.array([r.replica for r in done], dtype=np.int64),
    }


def serving_metrics(arrays: dict, itl, *, slo: dict[str, float | None]) -> dict:
    """The metrics block of a result from :func:`request_arrays` and the pooled ITL gaps."""
    ttft = arrays["first_token_s"] - arrays["arrival_s"]
    e2e = arrays["finish_s"] - arrays["arrival_s"]
    out = arrays["output_tokens"]
    multi = out > 1
    tpot = np.zeros_like(e2e)
    tpot[multi] = (e2e[multi] - ttft[multi]) / (out[multi] - 1)
    duration = float(arrays["finish_s"].max()) if e2e.size else 0.0
    good = np.ones(e2e.size, dtype=bool)
    for key, values in (("ttft_s", ttft), ("tpot_s", tpot), ("e2e_s", e2e)):
        if slo.get(key) is not None:
            good &= values <= slo[key]

    def per_s(x: float) -> float:
        return x / duration if duration > 0 else 0.0

    return {
        "ttft_s": stats(ttft), "tpot_s": stats(tpot[multi]), "itl_s": stats(itl), "e2e_s": stats(e2e),
        "throughput": {"requests_per_s": per_s(e2e.size), "output_tokens_per_s": per_s(float(out.sum())),
                       "total_tokens_per_s": per_s(float(out.sum() + arrays["input_tokens"].sum()))},
        "goodput": {"requests_per_s": per_s(float(good.sum())), "slo": {k: v for k, v in slo.items() if v is not None}},
        "duration_s": duration,
    }


def steady_state_energy(steps, first_token_s, seats: int, static_w: float, replicas: int) -> dict | None:
    """Energy over the steady state of a run, as the ML.ENERGY benchmark (ml-energy/benchmark,
    ``mlenergy/llm/benchmark.py``) slices it: with ``seats`` requests running at most (the server's
    maximum batch) and N requests sent, from the moment the ``seats``-th request has its first
    token to the moment the (N - ``seats``)-th has, while every seat is taken. Step energy is
    prorated by the part of each step inside the window, idle device time in it draws ``static_w``;
    tokens are those of the steps that end inside it. ``steps``: the per-step frame (start_s,
    duration_s, tokens_out, energy_j). None when the run has no steady state (N <= 2 x seats, or
    no token in the window)."""
    first = np.sort(np.asarray(first_token_s, dtype=float))
    if first.size <= 2 * seats:
        return None
    begin, end = float(first[seats - 1]), float(first[first.size - seats - 1])
    start = steps["start_s"].to_numpy(dtype=float)
    duration = steps["duration_s"].to_numpy(dtype=float)
    stop = start + duration
    inside = np.clip(np.minimum(stop, end) - np.maximum(start, begin), 0.0, None)
    share = np.divide(inside, duration, out=np.zeros_like(inside), where=duration > 0)
    tokens = float(steps["tokens_out"].to_numpy(dtype=float)[(stop > begin) & (stop <= end)].sum())
    if end <= begin or tokens <= 0:
        return None
    energy = float(steps["energy_j"].to_numpy(dtype=float) @ share)
    energy += static_w * max(0.0, (end - begin) * replicas - float(inside.sum()))
    return {"start_s": begin, "end_s": end, "output_tokens": tokens, "j_per_output_token": energy / tokens,
            "avg_power_w": energy / (end - begin) / replicas}
