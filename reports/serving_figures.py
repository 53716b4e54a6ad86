"""The figure of a serving run: latency CDFs, throughput, requests and KV-cache use over time.

Drawn from plain data (per-request latencies and the per-interval time series), so the same
figure comes from ``ServeResult.plot()`` and from a serving run's JSON in an HTML report.
"""

from __future__ import annotations

import numpy as np

from .figures import pyplot


def serving_run_label(config: dict) -> str:
    """``llama-3.1-8b on h100-sxm: 1 replica x tp 1, scheduler vllm``."""
    c = config or {}
    return (f"{c.get('model')} on {c.get('hardware')}: {c.get('replicas', 1)} replica(s) x tp {c.get('tp', 1)}"
            + (f" pp {c['pp']}" if c.get("pp", 1) > 1 else "") + f", scheduler {c.get('scheduler')}")


def serving_figure(latencies: dict, timeseries, metrics: dict, config: dict):
    """Four panels: CDFs of TTFT, TPOT and E2E (s, log); output and prompt tokens/s over time;
    running and waiting requests; KV-cache use (%). ``latencies``: ``{"ttft_s": [...], "tpot_s":
    [...], "e2e_s": [...]}`` per completed request; ``timeseries``: ``ServeResult.timeseries()``
    as a DataFrame or records. Where ``metrics`` carry intervals, each CDF shows the 80% interval
    of its median as a bar at 0.5."""
    import pandas as pd

    plt = pyplot()
    ts = pd.DataFrame(timeseries)
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    ax = axes[0][0]
    shown = False
    for i, (col, label) in enumerate((("ttft_s", "TTFT"), ("tpot_s", "TPOT"), ("e2e_s", "E2E"))):
        values = np.sort(np.asarray(latencies.get(col, []), dtype=float))
        values = values[values > 0]
        if values.size:
            line, = ax.plot(values, np.arange(1, values.size + 1) / values.size, label=label)
            # the bars sit a little apart around 0.5 so that overlapping ones stay readable
            shown |= _median_interval(ax, metrics.get(col) or {}, line.get_color(), 0.5 + 0.04 * (i - 1))
    ax.set_xscale("log")
    ax.set_xlabel("latency (s)")
    ax.set_ylabel("fraction of requests")
    ax.set_title("latency CDFs" + (" (bars: 80% interval of each median)" if shown else ""), fontsize="medium")
    ax.legend(loc="lower right", fontsize="small")
    if not ts.empty:
        ax = axes[0][1]
        ax.plot(ts["t"], ts["gen_throughput"], label="output tokens/s")
        ax.plot(ts["t"], ts["prompt_throughput"], label="prompt tokens/s", alpha=0.7)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("tokens/s")
        ax.set_title("throughput")
        ax.legend(fontsize="small")
        ax = axes[1][0]
        ax.plot(ts["t"], ts["running"], label="running")
        ax.plot(ts["t"], ts["waiting"], label="waiting")
        ax.set_xlabel("time (s)")
        ax.set_ylabel("requests")
        ax.set_title("requests")
        ax.legend(fontsize="small")
        ax = axes[1][1]
        ax.plot(ts["t"], ts["kv_cache_pct"])
        ax.set_ylim(0, 105)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("KV cache in use (%)")
    axes[1][1].set_title(f"KV cache use ({metrics['kv']['blocks_total']} blocks, "
                         f"{metrics['preemptions']} preemptions)")
    fig.suptitle(f"Serving: {serving_run_label(config)}")
    fig.tight_layout()
    return fig


def _median_interval(ax, stats: dict, color: str, y: float) -> bool:
    """The 80% interval of a latency's median as a horizontal bar at height ``y``, the median a
    dot on it (or beside it: where the held-out runs of its class were all slower than predicted,
    the interval lies wholly above the median); whether there was one to draw."""
    span = stats.get("median_interval")
    if not span or not stats.get("median", 0) > 0:
        return False
    ax.plot(span, [y, y], color=color, marker="|", markersize=6, alpha=0.8)
    ax.plot([stats["median"]], [y], "o", color=color, markersize=3, alpha=0.8)
    return True


def latencies_of(res) -> dict:
    """Per completed request of a :class:`simulator.serving.result.ServeResult`: TTFT, TPOT, E2E (s)."""
    df = res.to_frame()
    return {col: df[col].astype(float).tolist() for col in ("ttft_s", "tpot_s", "e2e_s")}


def plot_serving(res, interval_s: float = 1.0):
    """The figure of a live serving result (``ServeResult.plot()``; with the medians' intervals
    when the result has them: :func:`calibration.intervals.attach_serve_intervals`)."""
    return serving_figure(latencies_of(res), res.timeseries(interval_s), res.merged_metrics(), res.config)
