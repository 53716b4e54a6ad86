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
    as a DataFrame or records."""
    import pandas as pd

    plt = pyplot()
    ts = pd.DataFrame(timeseries)
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    ax = axes[0][0]
    for col, label in (("ttft_s", "TTFT"), ("tpot_s", "TPOT"), ("e2e_s", "E2E")):
        values = np.sort(np.asarray(latencies.get(col, []), dtype=float))
        values = values[values > 0]
        if values.size:
            ax.plot(values, np.arange(1, values.size + 1) / values.size, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("latency (s)")
    ax.set_ylabel("fraction of requests")
    ax.set_title("latency CDFs")
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


def latencies_of(res) -> dict:
    """Per completed request of a :class:`simulator.serving.result.ServeResult`: TTFT, TPOT, E2E (s)."""
    df = res.to_frame()
    return {col: df[col].astype(float).tolist() for col in ("ttft_s", "tpot_s", "e2e_s")}


def plot_serving(res, interval_s: float = 1.0):
    """The figure of a live serving result (``ServeResult.plot()``)."""
    return serving_figure(latencies_of(res), res.timeseries(interval_s), res.metrics, res.config)
