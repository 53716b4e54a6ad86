"""The built-in report kinds (``simulate``, ``roofline``, ``validate``) and their sections.

Every section reads the result's JSON document only (never a live object), so a report made
later from a file shows what the command saw.
"""

from __future__ import annotations

from hwmodels.units import format_quantity
from roofline.plot import run_label

from .. import figures
from ..text import interval_span, memory_rows, memory_state
from .blocks import Fields, Figure, Section, Table, Text
from .kinds import REPORT_KINDS, REPORT_SECTIONS, ReportKind

# ---------------------------------------------------------------------------------------- helpers


def _time(seconds) -> str:
    return format_quantity(seconds, "time") if seconds else "0 s"


def _meta(doc: dict) -> dict:
    return doc.get("meta") or {}


def _table(rows: list[dict], caption: str = "", formats: dict | None = None, note: str = "") -> Table:
    columns = list(dict.fromkeys(k for r in rows for k in r))
    return Table(columns, [[r.get(c) for c in columns] for r in rows], caption, formats or {}, note)


# ---------------------------------------------------------------------------------------- simulate


def _sim_title(doc: dict) -> tuple[str, str]:
    meta = _meta(doc)
    par = f"tp={meta.get('tp', 1)} pp={meta.get('pp', 1)} ep={meta.get('ep', 1)}"
    return (f"Simulation: {run_label(meta)}",
            f"on {meta.get('system', '?')} ({meta.get('devices', '?')} accelerator(s); {par}), seed {meta.get('seed', 0)}")


def _interval_note(doc: dict, key: str, kind: str | None = None) -> str:
    """`` (80%: lo - hi)`` for a figure whose ``<key>_interval`` the document carries, else ''."""
    pair = doc.get(f"{key}_interval")
    if not pair:
        return ""
    return f" (80% interval: {interval_span(pair, kind)})"


def _sim_headline(doc: dict) -> list[tuple[str, str]]:
    meta, fig = _meta(doc), doc.get("figures") or {}
    out = [("latency", f"{_time(doc['latency_s'])}" + (f" ({fig['latency_s'].split(':')[0]})"
                                                       if fig.get("latency_s") else "")
            + _interval_note(doc, "latency_s", "time"))]
    head = fig.get("headline", "throughput_tok_s")
    if doc.get(head):
        out.append(("throughput", f"{doc[head]:.4g} tok/s ({fig.get(head, head)})" + _interval_note(doc, head)))
    out.append(("energy", f"{doc['energy_j']:.4g} J" + _interval_note(doc, "energy_j")
                + (f", {doc['energy_per_token_j']:.4g} J per token" + _interval_note(doc, "energy_per_token_j")
                   if doc.get("energy_per_token_j") else "")))
    if doc.get("regime") and doc.get("latency_s_interval"):
        out.append(("intervals", f"from the held-out public rows of this step's class, {doc['regime']} regime"))
    b = doc.get("bottleneck") or {}
    if b.get("resource"):
        out.append(("bottleneck", f"{b['resource']} ({b['bound']}-bound, {b['share']:.1%} of the critical path)"))
    power = doc.get("avg_power_w") or {}
    if power:
        dev = max(power, key=power.get)
        out.append(("power", f"{power[dev]:.0f} W average on {dev} (TDP {doc['tdp_w'][dev]:.0f} W)"
                    + (" OVER TDP" if doc.get("over_tdp") else "")))
    if doc.get("memory"):
        out.append(("memory", memory_state(doc["memory"])))
    if meta.get("model") is None:
        out.insert(0, ("workload", str(meta.get("name", ""))))
    return out


@REPORT_SECTIONS.register("roofline", help="hierarchical roofline with every operator placed")
def roofline_section(doc: dict) -> Section | None:
    panels = doc.get("roofline") or [a["plot"] for a in doc.get("analyses", [doc]) if a.get("plot")]
    if isinstance(panels, dict):
        panels = [panels]
    if not panels:
        return None
    from roofline.plot import plot_rooflines

    blocks = [Figure(figures.png_bytes(plot_rooflines(panels)), "Hierarchical roofline: each operator once per "
                     "memory level and link it moves bytes at (marker), coloured by what bounds it; marker "
                     "area is its share of the time.", "roofline")]
    for data in panels:
        main = data["main_memory"]
        rows = [{"operator": p["op"], "kind": p["kind"], "count": p["count"], "time share": p["share"],
                 "time each (us)": p["time_s"] * 1e6, "bound": p["bound"],
                 f"intensity at {main.split(':', 1)[1]} (FLOP/B)":
                     p["flops"] / p["bytes"][main] if p["bytes"].get(main) else None,
                 "achieved TFLOP/s": p["flops"] / p["time_s"] / 1e12 if p["time_s"] else None}
                for p in data["points"]]
        blocks.append(_table(rows, f"{data['device_name']}: every distinct operator (identical ones counted "
                                   f"once with their count)", {"time share": ".1%"}))
    return Section("roofline", "Roofline", blocks)


@REPORT_SECTIONS.register("timeline", help="Gantt chart of the simulated step and its critical path")
def timeline_section(doc: dict) -> Section | None:
    blocks = []
    meta = _meta(doc)
    if doc.get("timeline"):
        title = (f"{run_label(meta)} on {meta.get('system', '')}: {_time(doc['latency_s'])}"
                 + _interval_note(doc, "latency_s", "time"))
        blocks.append(Figure(figures.png_bytes(figures.timeline_figure(doc["timeline"], title=title)),
                             "Timeline: one row per device stream, operators coloured by the resource class "
                             "that limited them.", "timeline"))
    else:
        blocks.append(Text("The result was written without its timeline (--no-timeline)."))
    path = sorted(doc.get("critical_path") or [], key=lambda r: -r["time_s"])[:20]
    if path:
        rows = [{"operator": r["op"], "kind": r["kind"], "count": r["count"], "time (us)": r["time_s"] * 1e6,
                 "share": r["share"],
                 "limited by": max(r["by_resource"], key=r["by_resource"].get) if r["by_resource"] else ""}
                for r in path]
        blocks.append(_table(rows, f"Critical path: top {len(rows)} of {len(doc['critical_path'])} operators "
                                   "by time", {"share": ".1%"}))
    return Section("timeline", "Timeline and critical path", blocks)


@REPORT_SECTIONS.register("bottleneck", help="resource owning the critical path and the 2x what-ifs")
def bottleneck_section(doc: dict) -> Section | None:
    b = doc.get("bottleneck") or {}
    if not b.get("resource"):
        return None
    blocks = [Fields([("bottleneck", f"{b['resource']} ({b['bound']}-bound)"),
                      ("share of the critical path", f"{b['share']:.1%}")]),
              _table([{"resource": k, "share of the critical path": v} for k, v in (b.get("by_resource") or {}).items()],
                     "Who owns the critical path", {"share of the critical path": ".1%"})]
    sens = doc.get("sensitivity") or {}
    if sens:
        blocks.append(Figure(figures.png_bytes(figures.sensitivity_figure(
            sens, doc["latency_s"], title=f"What if one resource were 2x faster\n{run_label(_meta(doc))}")),
            "Latency re-simulated with each resource owning most of the critical path made 2x faster "
            "(same seed); 'latency' halves every fixed time.", "sensitivity"))
        blocks.append(_table([{"if 2x faster": k, "latency (ms)": v["latency_s"] * 1e3, "change": v["change"],
                               "critical path share": v.get("critical_path_share")} for k, v in sens.items()],
                             "2x sensitivity", {"change": "+.1%", "critical path share": ".1%"}))
    return Section("bottleneck", "Bottleneck and 2x sensitivity", blocks)


@REPORT_SECTIONS.register("memory", help="footprint per device, placement and spills")
def memory_section(doc: dict) -> Section | None:
    memory = doc.get("memory")
    if not memory:
        return None
    blocks = [Fields([("placement", memory_state(memory)), ("activations", memory.get("activation_rule", ""))]),
              _table(memory_rows(memory), "Memory per device (one row per distinct placement)")]
    blocks += [Text(f"warning: {w}") for w in memory.get("warnings", [])]
    return Section("memory", "Memory placement and spills", blocks)


@REPORT_SECTIONS.register("energy", help="energy by cause and average power against TDP")
def energy_section(doc: dict) -> Section | None:
    power = doc.get("avg_power_w") or {}
    if not power:
        return None
    parts = doc.get("energy_breakdown_j") or {}
    blocks = [Fields([("energy", f"{doc['energy_j']:.4g} J"),
                      *((f"  {k}", f"{v:.4g} J ({v / doc['energy_j']:.1%})") for k, v in parts.items()
                        if doc["energy_j"]),
                      *([("energy per token", f"{doc['energy_per_token_j']:.4g} J")]
                        if doc.get("energy_per_token_j") else [])]),
              Figure(figures.png_bytes(figures.power_figure(power, doc.get("tdp_w") or {},
                                                            title=f"Average power against TDP\n{run_label(_meta(doc))}")),
                     "Average power per device over the step (idle + active baseline while busy + dynamic "
                     "energy); the black mark is the device's TDP; red bars exceed it.", "power")]
    util = doc.get("utilisation") or {}
    rows = [{"device": d, "average power (W)": p, "TDP (W)": doc["tdp_w"].get(d), "over TDP": d in doc.get("over_tdp", []),
             "busy (ms)": (doc.get("busy_s") or {}).get(d, 0.0) * 1e3,
             **{k: u for k, u in sorted(util.get(d, {}).items())
                if k.split(":")[0] in ("compute", "memory") and u > 0.005}}
            for d, p in power.items()]
    formats = {k: ".1%" for r in rows for k in r if k.startswith(("compute:", "memory:"))}
    blocks.append(_table(rows, "Power and utilisation per device", {**formats, "average power (W)": ".0f",
                                                                    "TDP (W)": ".0f"}))
    return Section("energy", "Energy and power", blocks)


@REPORT_SECTIONS.register("manifest", help="what it takes to reproduce the result")
def manifest_section(doc: dict) -> Section | None:
    m = doc.get("manifest")
    if not m:
        return Section("manifest", "Reproducibility", [Text(
            "This result was written without a manifest (an older Ridgeline or a hand-made file).")])
    blocks = [Fields([("Ridgeline version", str(m.get("ridgeline_version", ""))),
                      ("Python", str(m.get("python", ""))), ("platform", str(m.get("platform", ""))),
                      ("created (UTC)", str(m.get("created_utc", ""))),
                      ("seed", str(m.get("seed", "")))]),
              Text("Command", pre=False), Text(m.get("command", ""), pre=True)]
    if m.get("workload"):
        blocks += [Text("Workload knobs"), Fields([(k, str(v)) for k, v in m["workload"].items()])]
    if m.get("spec"):
        blocks += [Text("Sweep spec"), Text(m["spec"], pre=True)]
    for hw in m.get("hardware", []):
        blocks += [Text(f"Hardware '{hw['ref']}', fully resolved"), Text(hw["yaml"], pre=True)]
    if m.get("calibration"):
        blocks += [Text("Calibration fingerprint"), Fields([(k, str(v)) for k, v in m["calibration"].items()])]
    return Section("manifest", "Reproducibility", blocks)


REPORT_KINDS.register("simulate", ReportKind(
    detect=lambda d: "latency_s" in d and "critical_path" in d, title=_sim_title, headline=_sim_headline,
    sections=("roofline", "timeline", "bottleneck", "memory", "energy", "manifest")),
    help="ridgeline simulate")

# ---------------------------------------------------------------------------------------- roofline


def _analyses(doc: dict) -> list[dict]:
    return doc.get("analyses") or [doc]


def _roof_title(doc: dict) -> tuple[str, str]:
    first = _analyses(doc)[0]
    return (f"Roofline: {run_label(first.get('meta') or {}, first.get('workload', ''))}",
            "on " + ", ".join(a["device"] for a in _analyses(doc)) + " (operators back to back)")


def _roof_headline(doc: dict) -> list[tuple[str, str]]:
    out = []
    for a in _analyses(doc):
        s = a["bound_summary"]
        out.append((a["device"], f"{_time(a['total_time_s'])} back to back, {a['total_flops']:.4g} FLOP, "
                                 f"dominant bound {s['dominant']} ({s.get(s['dominant'], 0):.0%} of the time)"))
    return out


@REPORT_SECTIONS.register("bounds", help="share of time by bounding resource per device")
def bounds_section(doc: dict) -> Section | None:
    rows = [{"device": a["device"], **{k: v for k, v in a["bound_summary"].items() if k != "dominant"}}
            for a in _analyses(doc)]
    formats = {k: ".1%" for r in rows for k in r if k != "device"}
    return Section("bounds", "Time by bound", [_table(rows, "Share of the operators' time by what bounds them",
                                                      formats)])


REPORT_KINDS.register("roofline", ReportKind(
    detect=lambda d: "bound_summary" in d or "analyses" in d, title=_roof_title, headline=_roof_headline,
    sections=("roofline", "bounds", "manifest")), help="ridgeline roofline")

# ---------------------------------------------------------------------------------------- validate

_PARTS = (("kernels", "1) held-out kernels on this machine (s)"), ("end_to_end", "2) end to end on this machine (s)"),
          ("public", "3) public measurements (row units)"))


def validation_source(doc: dict) -> str:
    """Whose predictions: this machine's (a local validation) or the catalog's."""
    local = any((doc.get(k) or {}).get("rows") for k in ("kernels", "end_to_end"))
    return f"this machine as {doc.get('hw', '')}" if local else "the catalog"


def _val_title(doc: dict) -> tuple[str, str]:
    parts = [t.split(") ", 1)[1].split(" (")[0] for k, t in _PARTS if (doc.get(k) or {}).get("rows")]
    return f"Validation: {', '.join(parts) or 'nothing'}", f"predictions from {validation_source(doc)} against measurements"


def _val_headline(doc: dict) -> list[tuple[str, str]]:
    out = []
    for name, t in (doc.get("targets") or {}).items():
        if "target_range" in t:
            lo, hi = t["target_range"]
            out.append((name, f"{t['value']:.1%} of {t['n']} ({t['level']:.0%} intervals, target {lo:.0%}-{hi:.0%}: "
                              f"{'met' if t['met'] else 'NOT met'})"))
        elif "target" in t:
            out.append((name, f"{t['value']:.1%} (target <= {t['target']:.0%}: {'met' if t['met'] else 'NOT met'})"))
        elif "median" in t:
            out.append((name, f"{t['value']:.1%}, median {t['median']:.1%} ({t['over']}, n={t['n']})"))
        else:
            out.append((name, f"{t['value']} of {t['of']}"))
    return out


@REPORT_SECTIONS.register("validation", help="predicted against measured, with errors")
def validation_section(doc: dict) -> Section | None:
    parts = [(title, (doc.get(key) or {}).get("rows") or []) for key, title in _PARTS]
    parts = [(t, rows) for t, rows in parts if rows]
    if not parts:
        return None
    title = f"ridgeline validate: {validation_source(doc)} against measurements"
    blocks = [Figure(figures.png_bytes(figures.validation_figure(parts, title=title)),
                     "Predicted against measured; the dashed line is a perfect prediction.", "validation")]
    for title, rows in parts:
        keep = ("name", "family", "role", "hardware", "measured", "predicted", "unit", "error", "how", "source")
        table_rows = [{k: r.get(k) for k in keep if k in r} for r in rows]
        blocks.append(_table(table_rows, title, {"error": "+.1%"}))
        for r in rows:
            if r.get("breakdown"):
                blocks.append(_table([{k: b.get(k) for k in ("op", "ops", "kind", "measured", "predicted", "error",
                                                             "bound")} for b in r["breakdown"]],
                                     f"per operator, {r['name']}", {"error": "+.1%"}))
    classes = _public_classes(doc.get("public") or {})
    if classes:
        blocks.append(Table(["class", "n", "MAPE", "median |error|", "signed mean error", "inside 80% interval"],
                            classes, "Held-out public rows per class: errors (signed: positive = optimistic) and "
                            "how many measurements fall inside the interval built without them",
                            {"MAPE": ".1%", "median |error|": ".1%", "signed mean error": "+.1%"}))
    blocks += [Text(f"note: {n}") for n in doc.get("notes", [])]
    blocks += [Text(f"warning: {w}") for w in doc.get("warnings", [])]
    return Section("validation", "Validation", blocks)


def _public_classes(public: dict) -> list[list]:
    """One row per held-out class: n, MAPE, median, signed mean error, interval coverage."""
    groups = (public.get("groups") or {}).get("held-out") or {}
    cov = public.get("interval_coverage") or {}
    return [[name, g["n"], g["mape"], g["median_abs_error"], g["signed_mean_error"],
             f"{cov[name]['inside']}/{cov[name]['n']}" if name in cov else ""]
            for name, g in groups.items() if g.get("n")]


REPORT_KINDS.register("validate", ReportKind(
    detect=lambda d: "targets" in d and "public" in d, title=_val_title, headline=_val_headline,
    sections=("validation", "manifest")), help="ridgeline validate")
