"""What a serving run says: metrics, one row per request, the replicas' steps over time."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


def interval_class(block: str) -> str:
    """The row class whose held-out residuals give the interval of a serving figure in metrics
    block ``block``: energy figures the energy class's, latencies and rates the serving class's."""
    return "energy" if block == "energy" else "serving"


def figure_rows(metrics: dict) -> list[dict]:
    """One dict per figure of a serving run's ``metrics`` as :meth:`ServeResult.to_dict` writes
    them (``block``: ttft_s ... energy; ``key``: mean, p99, output_tokens_per_s, total_j ...;
    ``value``), with ``lo`` and ``hi`` of its interval and the interval's ``basis`` (group of
    held-out rows) where the metrics carry intervals."""
    basis = metrics.get("interval_basis") or {}
    rows = []
    for block, values in metrics.items():
        if not isinstance(values, dict) or block in ("kv", "interval_basis"):
            continue
        for key, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                row = {"block": block, "key": key, "value": float(value)}
                span = values.get(f"{key}_interval")
                if span:
                    row.update(lo=span[0], hi=span[1], basis=(basis.get(interval_class(block)) or {}).get("group", ""))
                rows.append(row)
    return rows


@dataclass
class ServeResult:
    """The result of :func:`simulator.serving.serve`.

    ``metrics``: the JSON block (TTFT/TPOT/ITL/E2E stats, throughput, goodput, energy, kv,
    preemptions, duration_s, rejected, and the ``regime`` of the run); ``requests``: per completed
    request arrays; ``steps``: one DataFrame row per step of every replica; ``rejected``: (request
    id, reason) of requests refused. ``intervals``: the 80% intervals of the metrics' figures
    (``{block: {"<key>_interval": [lo, hi]}, "interval_basis": ...}``), empty until
    :func:`calibration.intervals.attach_serve_intervals` gives them (the CLI always does).
    """

    metrics: dict
    requests: dict
    steps: pd.DataFrame
    rejected: list = field(default_factory=list)
    config: dict = field(default_factory=dict)
    trace_events: list | None = None
    intervals: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """One row per completed request: times (s), tokens, preemptions, and its latencies (the
        run's figures with their intervals: :meth:`metrics_frame`)."""
        df = pd.DataFrame(self.requests)
        df["ttft_s"] = df["first_token_s"] - df["arrival_s"]
        df["e2e_s"] = df["finish_s"] - df["arrival_s"]
        multi = df["output_tokens"] > 1
        df["tpot_s"] = np.where(multi, (df["e2e_s"] - df["ttft_s"]) / np.maximum(df["output_tokens"] - 1, 1), 0.0)
        return df

    def metrics_frame(self) -> pd.DataFrame:
        """One row per figure of the run (:func:`figure_rows` of :meth:`merged_metrics`)."""
        return pd.DataFrame(figure_rows(self.merged_metrics()))

    def merged_metrics(self) -> dict:
        """:attr:`metrics` with each figure's ``<key>_interval`` beside it and ``interval_basis``
        (as they are when no intervals are attached)."""
        out = dict(self.metrics)
        for block, extra in self.intervals.items():
            out[block] = {**out[block], **extra} if isinstance(out.get(block), dict) else extra
        return out

    def timeseries(self, interval_s: float = 1.0) -> pd.DataFrame:
        """Per-``interval_s`` rows like vLLM's own logging: prompt throughput (tok/s; each prompt
        token counted once, as vLLM counts it, not again when a preempted request is prefilled
        anew: ``steps.prefill_tokens`` has every token prefilled), generation throughput, running
        and waiting requests and KV-cache use (%) at the interval's last step, and the interval's
        energy (J), summed over replicas."""
        s = self.steps
        if s.empty:
            return pd.DataFrame(columns=["t", "prompt_throughput", "gen_throughput", "running", "waiting",
                                         "kv_cache_pct", "energy_j"])
        end = s["start_s"] + s["duration_s"]
        bucket = np.floor(end / interval_s).astype(int)
        total = self.metrics["kv"]["blocks_total"] * max(1, self.config.get("replicas", 1))
        g = s.assign(bucket=bucket).groupby("bucket")
        last = g.last()
        # every replica's latest state at the interval's end
        per_rep = s.assign(bucket=bucket).groupby(["bucket", "replica"]).last()
        state = per_rep.groupby(level="bucket")[["running", "waiting", "kv_blocks_used"]].sum()
        out = pd.DataFrame({
            "t": (last.index + 1) * interval_s,
            "prompt_throughput": g["prompt_tokens"].sum().to_numpy() / interval_s,
            "gen_throughput": g["tokens_out"].sum().to_numpy() / interval_s,
            "running": state["running"].to_numpy(),
            "waiting": state["waiting"].to_numpy(),
            "kv_cache_pct": 100.0 * state["kv_blocks_used"].to_numpy() / total if total else 0.0,
            "energy_j": g["energy_j"].sum().to_numpy(),
        })
        return out.reset_index(drop=True)

    def to_dict(self, requests: bool = True) -> dict:
        """The JSON form (the CLI's ``--format json``): ``metrics`` (with the intervals, if attached:
        :meth:`merged_metrics`), ``config``, ``rejected`` (id and reason of each refused request)
        and, with ``requests``, one object per completed request."""
        out = {"metrics": self.merged_metrics(), "config": dict(self.config),
               "rejected": [{"id": int(i), "reason": why} for i, why in self.rejected]}
        if requests:
            df = self.to_frame()
            out["requests"] = [
                {"id": int(r.id), "arrival_s": float(r.arrival_s), "first_token_s": float(r.first_token_s),
                 "finish_s": float(r.finish_s), "input_tokens": int(r.input_tokens),
                 "output_tokens": int(r.output_tokens), "preemptions": int(r.preemptions),
                 "replica": int(r.replica)}
                for r in df.itertuples(index=False)]
        return out

    def plot(self):
        """Latency CDFs, throughput, requests and KV use over time, drawn by reports/
        (:mod:`reports.serving_figures`, through :mod:`reports.views` as ``SimResult.plot`` is)."""
        from reports.views import serving_plot

        return serving_plot(self)

    def trace(self) -> dict:
        """Perfetto/Chrome trace events of the run (:mod:`reports.serving_trace`)."""
        from reports.views import serving_perfetto

        return serving_perfetto(self)

    def write_trace(self, path):
        """Write :meth:`trace` as JSON to ``path``."""
        from reports.views import write_serving_perfetto

        return write_serving_perfetto(self, path)
