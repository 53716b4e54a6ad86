"""The figure of a serving run: latency CDFs, throughput and KV-cache use over time."""

from __future__ import annotations

import numpy as np


def plot_serving(res, interval_s: float = 1.0):
    """Four panels: CDFs of TTFT, TPOT and E2E; tokens/s over time; running and waiting requests;
    KV-cache use (%). Returns the matplotlib figure."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    df = res.to_frame()
    ts = res.timeseries(interval_s)
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    ax = axes[0][0]
    for col, label in (("ttft_s", "TTFT"), ("tpot_s", "TPOT"), ("e2e_s", "E2E")):
        values = np.sort(df[col].to_numpy())
        if values.size:
            ax.plot(values, np.arange(1, values.size + 1) / values.size, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("latency (s)")
    ax.set_ylabel("fraction of requests")
    ax.set_title("latency CDFs")
    ax.legend()
    ax = axes[0][1]
    ax.plot(ts["t"], ts["gen_throughput"], label="output tokens/s")
    ax.plot(ts["t"], ts["prompt_throughput"], label="prompt tokens/s", alpha=0.7)
    ax.set_xlabel("time (s)")
    ax.set_title("throughput")
    ax.legend()
    ax = axes[1][0]
    ax.plot(ts["t"], ts["running"], label="running")
    ax.plot(ts["t"], ts["waiting"], label="waiting")
    ax.set_xlabel("time (s)")
    ax.set_title("requests")
    ax.legend()
    ax = axes[1][1]
    ax.plot(ts["t"], ts["kv_cache_pct"])
    ax.set_ylim(0, 105)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("%")
    ax.set_title(f"KV cache use ({res.metrics['kv']['blocks_total']} blocks, "
                 f"{res.metrics['preemptions']} preemptions)")
    c = res.config
    fig.suptitle(f"{c.get('model')} on {c.get('hardware')}, scheduler {c.get('scheduler')}")
    fig.tight_layout()
    return fig
