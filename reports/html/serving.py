"""The report of a serving run (``ridgeline serve``): latency CDFs and time series, the vLLM
benchmark metrics as a table, the deployment, and the manifest."""

from __future__ import annotations

from simulator.serving.result import figure_rows

from .. import figures
from ..serving_figures import serving_figure, serving_run_label
from ..text import value_with_interval
from .blocks import Fields, Figure, Section, Table
from .kinds import REPORT_KINDS, REPORT_SECTIONS, ReportKind

_LATENCIES = (("ttft_s", "TTFT"), ("tpot_s", "TPOT"), ("itl_s", "ITL"), ("e2e_s", "E2E"))


def _title(doc: dict) -> tuple[str, str]:
    m = doc["metrics"]
    return (f"Serving: {serving_run_label(doc['config'])}",
            f"{m['completed']} requests completed, {m['rejected']} rejected, over {m['duration_s']:.4g} s")


def _headline(doc: dict) -> list[tuple[str, str]]:
    m = doc["metrics"]
    out = [("throughput", f"{value_with_interval(m['throughput'], 'requests_per_s')} req/s, "
                          f"{value_with_interval(m['throughput'], 'output_tokens_per_s')} output tok/s")]
    out += [(label, f"median {value_with_interval(m[key], 'median', 1e3)} ms, p99 {value_with_interval(m[key], 'p99', 1e3)} ms")
            for key, label in _LATENCIES if m.get(key)]
    out.append(("energy", f"{value_with_interval(m['energy'], 'total_j')} J, {value_with_interval(m['energy'], 'j_per_output_token')} J per "
                          "output token"))
    if m.get("interval_basis"):
        out.append(("80% intervals", "[lo, hi] from the held-out public rows of "
                    + ", ".join(f"{b['group']} ({b['n']} rows) for {b['class']}" for b in m["interval_basis"].values())
                    + f"; run {m.get('regime') or 'regime unknown'}"))
    out.append(("KV cache", f"peak {m['kv']['peak_used_fraction']:.1%} of {m['kv']['blocks_total']} blocks, "
                            f"{m['preemptions']} preemptions"))
    if m["goodput"]["slo"]:
        out.append(("goodput", f"{m['goodput']['requests_per_s']:.4g} req/s meeting {m['goodput']['slo']}"))
    return out


@REPORT_SECTIONS.register("serving", help="latency CDFs, throughput, requests and KV use over time")
def serving_section(doc: dict) -> Section | None:
    m = doc["metrics"]
    blocks = [Figure(figures.png_bytes(serving_figure(doc.get("latencies") or {}, doc.get("timeseries") or [],
                                                      m, doc["config"])),
                     "Latency CDFs of the completed requests (TTFT, TPOT, E2E; defined as vLLM's benchmark "
                     "defines them) and the run's per-second log: tokens/s, running and waiting requests, "
                     "KV-cache use.", "serving")]
    stats = [s for s in next(m[k] for k, _ in _LATENCIES if m.get(k)) if not s.endswith("_interval")]
    blocks.append(Table(["metric", *[f"{s} (ms)" for s in stats]],
                        [[label, *[m[key][s] * 1e3 for s in stats]] for key, label in _LATENCIES if m.get(key)],
                        "Latency per request"))
    spans = _interval_rows(m)
    if spans:
        blocks.append(Table(["figure", "value", "80% lo", "80% hi", "from held-out rows of"], spans,
                            "80% intervals of the run's figures (the figure scaled by the 10% and 90% residual "
                            "bounds of held-out public rows of its class and regime; ridgeline validate --public)"))
    return Section("serving", "Latency and load over time", blocks)


def _interval_rows(m: dict) -> list[list]:
    """One row per figure with an interval: name, value, lo, hi, the group it came from."""
    return [[f"{r['block']} {r['key']}", r["value"], r["lo"], r["hi"], r["basis"]]
            for r in figure_rows(m) if "lo" in r]


@REPORT_SECTIONS.register("deployment", help="the serving deployment: replicas, scheduler, KV budget")
def deployment_section(doc: dict) -> Section | None:
    c = doc["config"]
    rows = [(k, str(v)) for k, v in c.items() if not isinstance(v, dict)]
    budget = c.get("kv_budget") or {}
    blocks = [Fields(rows)]
    if budget:
        blocks.append(Table(["KV budget", "value"], [[k, v] for k, v in budget.items()], "How the KV blocks were derived"))
    if doc.get("rejected"):
        blocks.append(Table(["request", "reason"], [[r["id"], r["reason"]] for r in doc["rejected"][:50]],
                            "Rejected requests"))
    return Section("deployment", "Deployment", blocks)


REPORT_KINDS.register("serve", ReportKind(
    detect=lambda d: "metrics" in d and "config" in d and "ttft_s" in d.get("metrics", {}), title=_title,
    headline=_headline, sections=("serving", "deployment", "manifest")), help="ridgeline serve")
