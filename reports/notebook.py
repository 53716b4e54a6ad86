"""Jupyter summaries: the short HTML a cell shows for an analysis or a simulation result (their
``_repr_html_`` call these), instead of every operator and the whole timeline."""

from __future__ import annotations

from html import escape

from hwmodels.units import format_quantity

TOP = 5


def _table(head: list[tuple[str, str]], rows: list[dict], caption: str) -> str:
    fields = "".join(f"<tr><th style='text-align:left'>{escape(k)}</th><td style='text-align:left'>{escape(v)}"
                     f"</td></tr>" for k, v in head)
    out = f"<table>{fields}</table>"
    if rows:
        cols = list(rows[0])
        out += (f"<table><caption style='text-align:left'>{escape(caption)}</caption><tr>"
                + "".join(f"<th>{escape(c)}</th>" for c in cols) + "</tr>"
                + "".join("<tr>" + "".join(f"<td>{escape(str(r[c]))}</td>" for c in cols) + "</tr>" for r in rows)
                + "</table>")
    return f"<div>{out}</div>"


def analysis_html(analysis) -> str:
    """Device, totals, time by bound and the top operators of a roofline analysis."""
    from roofline.plot import run_label

    summary = analysis.bound_summary()
    head = [("roofline", run_label(analysis.meta, analysis.name)), ("device", analysis.device.name),
            ("operators", f"{len(analysis.ops)} ({len(set(map(id, analysis._shared)))} distinct costs)"),
            ("time, back to back", format_quantity(analysis.total_time_s, "time")),
            ("by bound", ", ".join(f"{k} {v:.0%}" for k, v in summary.items() if k != "dominant"))]
    points = analysis.plot_data()["points"][:TOP]
    rows = [{"operator": p["op"], "kind": p["kind"], "count": p["count"], "time share": f"{p['share']:.1%}",
             "bound": p["bound"]} for p in points]
    return _table(head, rows, f"top {len(rows)} operators by time (.to_frame() has them all; .plot() draws them)")


def simulation_html(result) -> str:
    """What was run, latency, throughput, energy, bottleneck and the top critical-path operators."""
    head = [("simulation", result.title())]
    if result.throughput_tok_s:
        head.append(("throughput", f"{result.throughput_tok_s:.4g} tok/s produced"
                     + (f", {result.processed_tok_s:.4g} tok/s processed" if result.processed_tok_s else "")))
    head.append(("energy", f"{result.energy_j:.4g} J" + (f" ({result.energy_per_token_j:.4g} J/token)"
                                                         if result.energy_per_token_j else "")))
    power = result.avg_power_w
    if power:
        dev = max(power, key=power.get)
        head.append(("power", f"{power[dev]:.0f} W on {dev} (TDP {result.tdp_w[dev]:.0f} W)"))
    path = sorted(result.critical_path, key=lambda r: -r["time_s"])[:TOP]
    rows = [{"operator": r["op"], "kind": r["kind"], "time": format_quantity(r["time_s"], "time"),
             "share": f"{r['share']:.1%}"} for r in path]
    return _table(head, rows, f"critical path: top {len(rows)} of {len(result.critical_path)} operators "
                              "(.timeline has every one; .plot() draws the Gantt chart)")
