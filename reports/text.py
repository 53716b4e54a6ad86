"""Results as text for people: the tables ``ridgeline`` prints, as functions that take a result
object (a simulation, a validation report, roofline analyses) and return a string. The CLI
modules only parse arguments, call the layers below and print what these return."""

from __future__ import annotations

from hwmodels.units import format_quantity

from .output import format_fields, format_table

# ------------------------------------------------------------------------------------ simulation

def memory_rows(memory: dict) -> list[dict]:
    """One row per distinct (stage, device) placement of a simulation's ``memory`` document:
    capacity, footprint by role, use and what spilled where (shared by text and HTML)."""
    rows, seen = [], set()
    devices = memory.get("devices") or {}
    for node, d in devices.items():
        key = (d["stage"], d["device"], d["capacity_bytes"], tuple(d["footprint_bytes"].values()),
               tuple(d["spilled_bytes"].items()))
        if key in seen:
            continue
        seen.add(key)
        same = [n for n, o in devices.items() if o["stage"] == d["stage"] and o["device"] == d["device"]]
        spilled = ", ".join(f"{'KV cache' if r == 'kv_cache' else r} {format_quantity(v, 'capacity', 3)}"
                            for r, v in d["spilled_bytes"].items() if v)
        to = (d.get("spilled_to") or {}).get("level", "")
        rows.append({"devices": node if len(same) == 1 else f"{same[0]}..{same[-1]}", "stage": d["stage"],
                     "level": d["level"], "capacity": format_quantity(d["capacity_bytes"], "capacity", 3),
                     **{r: format_quantity(v, "capacity", 3) for r, v in d["footprint_bytes"].items()},
                     "used": f"{d['utilisation']:.1%}", "spilled": f"{spilled} -> {to}" if spilled else ""})
    return rows


def memory_state(memory: dict) -> str:
    return "fits" if memory.get("fits") else "spilled to a lower tier" if memory.get("spilled") else "does NOT fit"


# What a step's figures mean, by phase: the table's labels and the JSON's "figures" say it.
_COMMON = {"energy_per_token_j": "energy over the tokens produced (J per output token)"}
FIGURES = {
    "prefill": {
        "latency_s": "time to first token: one prefill step over every prompt, no queueing",
        "tokens": "first tokens produced (one per prompt and best_of sample)",
        "throughput_tok_s": "first tokens per second",
        "tokens_processed": "prompt tokens run through the model",
        "processed_tok_s": "prefill throughput: prompt tokens processed per second",
    },
    "decode": {
        "latency_s": "one decode step: every sequence's time per output token, TPOT",
        "tokens": "output tokens produced (speculative decoding: the expected accepted tokens + 1 per sequence)",
        "throughput_tok_s": "decode throughput: output tokens per second",
        "tokens_processed": "tokens run through the model (verified draft tokens included)",
        "processed_tok_s": "tokens run through the model per second",
    },
    "chunked": {
        "latency_s": "one mixed step: a prefill chunk together with the batch's decodes",
        "tokens": "output tokens produced (one per decode, and a first token when the chunk ends its prompt)",
        "throughput_tok_s": "output tokens per second",
        "tokens_processed": "tokens run through the model (the chunk's prompt tokens and one per decode)",
        "processed_tok_s": "tokens run through the model per second",
    },
}
HEADLINE = {"prefill": "processed_tok_s", "decode": "throughput_tok_s", "chunked": "processed_tok_s"}
_OTHER = {"latency_s": "makespan of the workload graph", "tokens": "tokens the workload says it produces",
          "throughput_tok_s": "tokens per second of makespan",
          "tokens_processed": "tokens the workload says run through it",
          "processed_tok_s": "processed tokens per second of makespan",
          "samples": "samples (images, items) the workload says a step completes",
          "throughput_samples_s": "samples per second of makespan"}


def figure_meanings(res) -> dict:
    """What the result's latency, token and throughput numbers mean for its phase, and which
    throughput is the step's headline figure."""
    phase = res.meta.get("phase")
    default = "throughput_samples_s" if res.samples else "throughput_tok_s"
    return {"phase": phase, "headline": HEADLINE.get(phase, default),
            **FIGURES.get(phase, _OTHER), **_COMMON}


def simulation_intervals(res) -> dict:
    """``<figure>_interval: [lo, hi]`` for a simulation's latency, throughputs and energies: 80%
    intervals from the held-out public residuals of the step's class and regime."""
    from calibration.intervals import sim_intervals

    return sim_intervals(res.summary(), res.meta.get("phase"), res.regime)


def value_with_interval(values: dict, key: str, scale: float = 1.0) -> str:
    """``7.2 [6.8, 9.1]``: ``values[key]`` x ``scale`` and, when ``values`` has its
    ``<key>_interval``, the interval in brackets (a serving run's figures)."""
    span = values.get(f"{key}_interval")
    return f"{values[key] * scale:.4g}" + (f" [{span[0] * scale:.4g}, {span[1] * scale:.4g}]" if span else "")


def interval_span(pair, kind: str | None = None) -> str:
    lo, hi = pair
    if kind:
        return f"{format_quantity(lo, kind)} - {format_quantity(hi, kind)}"
    return f"{lo:.4g} - {hi:.4g}"


def simulation_text(res, top: int = 10) -> str:
    """The result as text: headline, memory per device, power per device, critical path, what-ifs."""
    meta = res.meta
    head = [("workload", f"{meta.get('model', '')} {meta.get('phase', '')} batch={meta.get('batch', '')}"),
            ("hardware", f"{meta['system']} ({meta['devices']} accelerator(s); tp={meta.get('tp', 1)} "
                         f"pp={meta.get('pp', 1)} ep={meta.get('ep', 1)}"
                         + (f" dp={meta['dp']}" if meta.get("dp", 1) > 1 else "") + ")"),
            ("runtime", res.runtime + (" (CUDA graph)" if meta.get("cuda_graph") else "")),
            *([("collectives", "; ".join(f"{c}: " + ", ".join(f"{a} x{n}" for a, n in algos.items())
                                         for c, algos in res.collectives.items()))] if res.collectives else []),
            ("latency", f"{format_quantity(res.latency_s, 'time')} ({figure_meanings(res)['latency_s']})")]
    spans = simulation_intervals(res)
    if "latency_s_interval" in spans:
        head.append(("80% interval", f"{interval_span(spans['latency_s_interval'], 'time')} ({res.regime}; from held-out "
                                     "public rows of its class)"))
    head += _token_lines(res)
    head += [("energy", f"{res.energy_j:.4g} J (idle {res.static_energy_j:.4g}, active baseline "
                        f"{res.active_energy_j:.4g}, dynamic {res.dynamic_energy_j:.4g})")]
    if res.energy_per_token_j:
        label = "energy/first token" if meta.get("phase") == "prefill" else "energy/token"
        head.append((label, f"{res.energy_per_token_j:.4g} J"
                            + (f" (80%: {interval_span(spans['energy_per_token_j_interval'])} J)"
                               if "energy_per_token_j_interval" in spans else "")))
    b = res.bottleneck
    if b["resource"]:
        head.append(("bottleneck", f"{b['resource']} ({b['bound']}-bound, {b['share']:.1%} of the critical path)"))
    lines = [format_fields(head)]
    power = [{"device": d, "avg_power_w": p, "tdp_w": res.tdp_w[d],
              "over_tdp": "YES" if d in res.over_tdp else "",
              "clock": f"{res.power_cap[d]['clock_fraction']:.0%} (power cap)" if d in res.power_cap else "",
              **{k: f"{u:.1%}" for k, u in sorted(res.utilisation.get(d, {}).items())
                 if k.split(":")[0] in ("compute", "memory") and u > 0.005}}
             for d, p in res.avg_power_w.items()]
    lines += ["", *render_memory(res.memory)]
    lines += ["", format_table(power[:16])]
    if len(power) > 16:
        lines.append(f"... {len(power) - 16} more devices")
    path = sorted(res.critical_path, key=lambda r: -r["time_s"])[:top]
    if path:
        rows = [{"op": r["op"], "kind": r["kind"], "time_s": r["time_s"], "share": f"{r['share']:.1%}",
                 "limited_by": max(r["by_resource"], key=r["by_resource"].get) if r["by_resource"] else ""}
                for r in path]
        lines += ["", f"critical path: top {len(rows)} of {len(res.critical_path)} operators",
                  format_table(rows)]
    sens = res.sensitivity()
    if sens:
        rows = [{"if 2x faster": k, "latency_s": v["latency_s"], "change": f"{v['change']:+.1%}"}
                for k, v in sens.items()]
        lines += ["", format_table(rows)]
    return "\n".join(lines)


def _token_lines(res) -> list[tuple[str, str]]:
    """Token (or, for a graph that is not a language model, sample) counts and rates, labelled
    by what they are for the phase."""
    phase = res.meta.get("phase")
    lines = []
    if phase == "prefill":
        if res.processed_tok_s:
            lines.append(("prompt tokens", f"{res.tokens_processed:g} processed, {res.processed_tok_s:.4g} tok/s "
                                           f"(prefill throughput)"))
        if res.throughput_tok_s:
            lines.append(("first tokens", f"{res.tokens:g} (one per prompt), {res.throughput_tok_s:.4g} tok/s"))
        return lines
    out = "output tokens" if phase in FIGURES else "tokens"
    if res.throughput_tok_s:
        lines.append((out, f"{res.tokens:g}, {res.throughput_tok_s:.4g} tok/s"
                           + (" (decode throughput)" if phase == "decode" else "")))
    if res.processed_tok_s and res.tokens_processed != res.tokens:
        lines.append(("processed", f"{res.tokens_processed:g} tokens through the model, "
                                   f"{res.processed_tok_s:.4g} tok/s"))
    if res.throughput_samples_s:
        lines.append(("samples", f"{res.samples:g}, {res.throughput_samples_s:.4g} samples/s"))
    return lines


def render_memory(memory) -> list[str]:
    """One row per distinct (stage, device) placement: capacity, footprint by role, use, spills."""
    if memory is None:
        return []
    doc = memory.to_dict()
    return [f"memory: {memory_state(doc)} (per device; activations: the peak live set of one operator)",
            format_table(memory_rows(doc))]


# ------------------------------------------------------------------------------------ calibration

def calibration_text(result) -> str:
    """What a calibration wrote and fitted: the overlay, measurements, fingerprint, launch
    overhead, memory ceilings, compute peaks and efficiency curves."""
    summary, fit = result.summary(), result.fit
    lines = [f"overlay:      {summary['overlay']}   (use: --hw {summary['overlay']})",
             f"measurements: {summary['measurements']}  ({summary['kernels']} kernels, {summary['trusted']} trusted, "
             f"{summary['refused']} refused as too noisy, {summary['held_out']} held out for validation)",
             f"fingerprint:  {summary['fingerprint']}  (BLAS threads: {result.fingerprint.get('threads_pinned')})"]
    if fit.launch_overhead_s is not None:
        lines.append(f"launch overhead: {fit.launch_overhead_s * 1e6:.3g} us")
    rows = [{"level": k, "bandwidth_GB_s": v / 1e9} for k, v in fit.ceilings_bytes_s.items()]
    if rows:
        lines.append("\nmemory ceilings (STREAM plateaus)\n" + format_table(rows))
    rows = [{"dtype": d, "detected_GFLOP_s": p["detected"] / 1e9, "empirical_GFLOP_s": p["empirical"] / 1e9}
            for d, p in fit.peaks_flops.items()]
    if rows:
        lines.append("\ncompute peaks\n" + format_table(rows))
    lines += [f"\ncurve {key}: " + ", ".join(f"({x:g}, {e:.3g})" for x, e in points) for key, points in fit.curves.items()]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ validation

def _fmt_err(e):
    return "" if e is None else f"{e:+.1%}"


def _fmt_abs(e):
    return "" if e is None else f"{e:.1%}"


def _table(rows, columns):
    shown = [{**r, "error": _fmt_err(r["error"]),
              "predicted": "-" if r["predicted"] is None else r["predicted"]} for r in rows]
    return format_table(shown, columns)


def validation_text(report) -> str:
    """The validation report as text tables."""
    from calibration.validate import summarize

    out = [f"hardware: {report.hw} (device {report.device_id})"] if report.kernels or report.end_to_end else []
    if report.kernels:
        out.append("\n1) held-out kernels on this machine (seconds)")
        out.append(_table(report.kernels, ["name", "measured", "predicted", "error"]))
        summary = [{"family": k, **v} for k, v in summarize(report.kernels, "family").items()]
        out.append("\nper kernel family\n" + format_table(
            [{**s, "mape": _fmt_abs(s["mape"]), "worst": _fmt_abs(s["worst"])} for s in summary],
            ["family", "n", "mape", "worst", "worst_case"]))
    if report.end_to_end:
        out.append("\n2) end to end on this machine (seconds)")
        out.append(_table(report.end_to_end, ["name", "measured", "predicted", "error"]))
        for row in report.end_to_end:
            if row.get("breakdown"):
                out.append(f"\n   per operator, {row['name']} (each {row.get('backend', 'numpy')} step timed alone)")
                out.append(_table(row["breakdown"], ["op", "ops", "kind", "measured", "predicted", "error", "bound"]))
    if report.public:
        out.append("\n3) public measurements predicted from the catalog")
        out.append(_table(report.public, ["name", "role", "hardware", "measured", "predicted", "unit", "error",
                                          "how", "source"]))
        from calibration.public import public_summary

        s = public_summary(report.public)
        if s["n"]:
            out.append(f"\npublic summary over {s['n']} held-out rows ({len(s['fit_rows'])} fit rows excluded, "
                       f"listed with role 'fit' above): MAPE {s['mape']:.1%}, median |error| "
                       f"{s['median_abs_error']:.1%}, worst {s['worst']:.1%} ({s['worst_case']})")
        out.append(_public_groups_text(report.public))
    if report.serving:
        out.append("\n4) serving: a real vLLM run replayed request by request, offline throughput rows")
        out.append(_table(report.serving, ["name", "measured", "predicted", "unit", "error"]))
        out.append("   sources: " + "; ".join(dict.fromkeys(r["source"] for r in report.serving)))
    targets = report.targets()
    if targets:
        out.append("\ntargets")
        for name, t in targets.items():
            if "target_range" in t:
                lo, hi = t["target_range"]
                out.append(f"  {name}: {t['value']:.1%} of {t['n']} ({t['over']}; {t['level']:.0%} intervals, "
                           f"target {lo:.0%}-{hi:.0%}: {'met' if t['met'] else 'NOT met'})")
            elif "target" in t:
                out.append(f"  {name}: {t['value']:.1%} (target <= {t['target']:.0%}: "
                           f"{'met' if t['met'] else 'NOT met'})")
            elif "median" in t:
                out.append(f"  {name}: {t['value']:.1%}, median {t['median']:.1%} ({t['over']}, n={t['n']})")
            else:
                out.append(f"  {name}: {t['value']} of {t['of']}")
    for note in report.notes:
        out.append(f"note: {note}")
    return "\n".join(out)


def _public_groups_text(rows: list[dict]) -> str:
    """The public rows' errors per role and row class, one table per role."""
    from calibration.intervals import coverage
    from calibration.public import public_groups

    parts = []
    cov = coverage(rows)
    for role, groups in public_groups(rows).items():
        table = [{"class": name, "n": g["n"], "not_predicted": g["not_predicted"], "mape": _fmt_abs(g["mape"]),
                  "median_abs_error": _fmt_abs(g["median_abs_error"]),
                  "signed_mean_error": "-" if g["signed_mean_error"] is None else f"{g['signed_mean_error']:+.1%}",
                  "interval_coverage": f"{cov[name]['inside']}/{cov[name]['n']}" if name in cov else "-"}
                 for name, g in groups.items()]
        parts.append(f"\n{role} rows per class (interval_coverage: held-out rows inside the 80% interval built "
                     "without them)\n" if role == "held-out" else f"\n{role} rows per class\n")
        parts[-1] += format_table(table, ["class", "n", "not_predicted", "mape", "median_abs_error",
                                          "signed_mean_error", *(["interval_coverage"] if role == "held-out" else [])])
    return "\n".join(parts)


# ------------------------------------------------------------------------------------ roofline

def roofline_text(analyses, graph, top: int) -> str:
    """The analyses as text: per device, the totals, time share by bound and the top operators."""
    lines = []
    for a in analyses:
        summary = a.bound_summary()
        lines.append(f"{graph.name} on {a.device.id}: {a.total_time_s * 1e3:.4g} ms (operators back to back), "
                     f"dominant bound {summary['dominant']}")
        lines.append("  time share by bound: " + ", ".join(f"{k} {v:.1%}" for k, v in summary.items()
                                                           if k != "dominant"))
        rows = sorted(a.rows(), key=lambda r: -r["time_s"])[:top]
        main = f"intensity_memory_{a.device.main_memory}"
        lines.append(format_table([{"op": r["op"], "kind": r["kind"], "time_us": r["time_s"] * 1e6, "bound": r["bound"],
                                    "intensity": r[main], "attainable_TF": r["attainable_flops"] / 1e12,
                                    "achieved_TF": r["achieved_flops"] / 1e12} for r in rows],
                                  ["op", "kind", "time_us", "bound", "intensity", "attainable_TF", "achieved_TF"]))
        lines.append("")
    return "\n".join(lines)


def op_text(op, device, demands, report: dict) -> str:
    """One operator on one device (``ridgeline op``): its figures, then time per resource.
    ``report`` is the command's JSON document of it."""
    shape = " ".join(f"{k}={v}" for k, v in op.fields().items()
                     if v is not None and k not in ("name", "stage", "param_prefix"))
    rows = [("operator", f"{op.kind} {shape}"), ("device", device.id),
            ("latency", f"{report['latency_s'] * 1e6:.4g} us"
                        + (" (80% interval {:.4g} - {:.4g} us)".format(*(x * 1e6 for x in report["latency_s_interval"]))
                           if "latency_s_interval" in report else "")),
            ("bound", f"{report['bound']} ({report['regime']})" if "regime" in report else report["bound"]),
            ("FLOPs", f"{report['flops']:.4g}"),
            *((f"bytes {k}", f"{v:.4g}") for k, v in report["bytes"].items()),
            *((f"bytes link {k}", f"{v:.4g}") for k, v in report["link_bytes"].items()),
            *((f"intensity {k}", f"{v:.4g} FLOP/B") for k, v in report["intensity"].items()),
            ("peak FLOP/s", f"{report['peak_flops']:.4g}"),
            ("attainable FLOP/s", f"{report['attainable_flops']:.4g}"),
            ("achieved FLOP/s", f"{report['achieved_flops']:.4g}" + _interval_of(report, "achieved_flops")),
            ("fixed latency", f"{report['fixed_s'] * 1e6:.4g} us"),
            ("energy", f"{report['energy_j']:.4g} J" + _interval_of(report, "energy_j"))]
    table = format_table([{"resource": k, "work": demands.work[k], "rate": demands.rates[k], "time_s": t}
                          for k, t in report["times_s"].items()], ["resource", "work", "rate", "time_s"])
    return format_fields(rows) + "\n\n" + table


def _interval_of(report: dict, key: str) -> str:
    pair = report.get(f"{key}_interval")
    return f" (80% interval {interval_span(pair)})" if pair else ""


# ------------------------------------------------------------------------------------ serving

def serving_text(res) -> str:
    """Headline fields and one row per latency metric, in ms; each figure with its 80% interval
    in brackets when the result has them (``res.intervals``), and the group they came from."""
    m, c = res.merged_metrics(), res.config

    def fig(block: str, key: str, scale: float = 1.0) -> str:
        return value_with_interval(m[block], key, scale)

    head = [("deployment", f"{c['model']} on {c['hardware']}: {c['replicas']} replica(s) x tp={c['tp']} "
                           f"pp={c['pp']}, scheduler {c['scheduler']}, profile {c['profile']}"),
            ("requests", f"{m['completed']} completed, {m['rejected']} rejected, {m['preemptions']} preemptions"),
            ("duration", f"{m['duration_s']:.4g} s"),
            ("throughput", f"{fig('throughput', 'requests_per_s')} req/s, "
                           f"{fig('throughput', 'output_tokens_per_s')} output tok/s, "
                           f"{fig('throughput', 'total_tokens_per_s')} total tok/s"),
            ("kv cache", f"{m['kv']['blocks_total']} blocks of {m['kv']['block_size']} tokens, peak "
                         f"{m['kv']['peak_used_fraction']:.1%} used"),
            ("energy", f"{fig('energy', 'total_j')} J, {fig('energy', 'j_per_output_token')} J/output token")]
    steady = m["energy"].get("steady_state")
    if steady:
        head.append(("steady state", f"{steady['j_per_output_token']:.4g} J/output token, {steady['avg_power_w']:.4g} W "
                                     f"from {steady['start_s']:.4g} s to {steady['end_s']:.4g} s (every seat taken)"))
    if m["goodput"]["slo"]:
        head.append(("goodput", f"{fig('goodput', 'requests_per_s')} req/s meeting {m['goodput']['slo']}"))
    if "interval_basis" in m:
        head.append(("80% intervals", f"[lo, hi] ({m.get('regime') or 'regime unknown'}): "
                                      + "; ".join(_basis_text(b) for b in m["interval_basis"].values())))
    rows = [{"metric": key.removesuffix("_s").upper(), **{k: fig(key, k, scale=1e3) for k in m[key] if not k.endswith("_interval")}}
            for key in ("ttft_s", "tpot_s", "itl_s", "e2e_s")]
    return "\n".join([format_fields(head), "", "latency (ms)", format_table(rows)])


def _basis_text(basis: dict) -> str:
    """``serving from llm/memory-bound (6 held-out rows; too few of its own)``."""
    return (f"{basis['class']} from {basis['group']} ({basis['n']} held-out rows"
            + ("; its own too few" if basis["fallback"] else "") + ")")


# ------------------------------------------------------------------------------------ workloads and hardware

def workload_text(summary: dict) -> str:
    """A workload's size (``ridgeline workload show``): its knobs, params, FLOPs per engine,
    bytes per role, KV cache and state, and one row per operator kind. ``summary``: ``Graph.summary()``
    (with ``scope`` when the graph is one rank)."""
    meta = summary["meta"]
    head = [("workload", summary["name"])]
    head += [(k, meta[k]) for k in ("phase", "batch", "prompt_len", "context", "tp", "pp", "ep", "dp", "dtype",
                                    "weight_dtype", "kv_dtype", "spec_tokens", "best_of", "tokens")
             if meta.get(k) is not None and _shown(meta, k)]
    if "scope" in summary:
        head.append(("scope", summary["scope"]))
    head += [("params", f"{summary['params'] / 1e9:.4g} B"),
             ("active params", f"{summary['active_params'] / 1e9:.4g} B"),
             ("FLOPs", f"{summary['flops']:.4g}"),
             *((f"  {e}", f"{v:.4g}") for e, v in summary["flops_by_engine"].items()),
             *((f"bytes {r}", format_quantity(v, "capacity")) for r, v in summary["bytes"].items() if v),
             ("KV cache", format_quantity(summary["kv_cache_bytes"], "capacity")),
             ("recurrent state", format_quantity(summary["state_bytes"], "capacity")),
             ("ops", summary["ops"])]
    rows = [{"kind": k, "ops": v["ops"], "flops": v["flops"], "bytes": v["bytes"]}
            for k, v in sorted(summary["by_kind"].items(), key=lambda kv: -kv[1]["flops"])]
    return format_fields(head) + "\n\n" + format_table(rows, ["kind", "ops", "flops", "bytes"])


def _shown(meta: dict, key: str) -> bool:
    """Whether the table shows ``key``: knobs that apply to the step's phase, at a value that says
    something (parallelism and sampling knobs when not 1)."""
    from workloads.options import knob_applies

    if key in ("dp", "spec_tokens", "best_of") and meta[key] in (0, 1):
        return False
    return knob_applies(key, meta.get("phase", ""), best_of=meta.get("best_of", 1))


def models_text(rows: list[dict]) -> str:
    """The bundled models (``ridgeline workload list``), params in billions."""
    shown = [{**r, "params": f"{r['params'] / 1e9:.3g} B", "active_params": f"{r['active_params'] / 1e9:.3g} B"}
             for r in rows]
    return format_table(shown, ["id", "family", "params", "active_params", "layers", "hidden", "heads",
                                "kv_heads", "vocab", "max_positions"])


def catalog_text(rows: list[dict]) -> str:
    """The hardware catalog (``ridgeline hw list``): one row per device or system, headline figures
    with units. ``rows``: ``reports.cli_hw.headline`` of each."""
    table = [{"id": r["id"], "kind": r["kind"], "name": r["name"],
              "bf16 peak": format_quantity(r["peak_bf16_flops"], "compute_rate", 4) if r["peak_bf16_flops"] else "-",
              "memory": format_quantity(r["memory_capacity_bytes"], "capacity", 4),
              "bandwidth": format_quantity(r["memory_bandwidth_bytes_s"], "bandwidth", 4),
              "TDP": format_quantity(r["tdp_w"], "power", 4)} for r in rows]
    return format_table(table)


def sweep_summary_text(summary: dict, folder, not_inputs: set[str]) -> str:
    """``sweep run`` / ``sweep show``: where the results are, points per status, the best point per
    objective (its inputs: every column not in ``not_inputs``)."""
    statuses = ", ".join(f"{n} {s}" for s, n in summary["status"].items())
    head = [("results", f"{folder}/results.parquet"), ("points", f"{summary['points']} ({statuses})"),
            ("feasible", str(summary["feasible"]))]
    if summary.get("planned") is not None and summary["planned"] != summary["points"]:
        head.append(("planned", f"{summary['planned']} (resume with ridgeline sweep run --resume)"))
    lines = [format_fields(head)]
    rows = []
    for objective, row in summary["best"].items():
        name = objective.split(":")[0]
        inputs = {k: v for k, v in row.items() if k not in not_inputs and v is not None and v == v}
        rows.append({"best": objective, "value": row[name],
                     "point": ", ".join(f"{k}={_short(v)}" for k, v in inputs.items())})
    if rows:
        lines += ["", format_table(rows)]
    return "\n".join(lines)


def pareto_text(front_rows: list[dict], ok_points: int, objectives: dict, plot) -> str:
    """``sweep pareto``: how many points are non-dominated, then the front as a table."""
    head = (f"{len(front_rows)} non-dominated of {ok_points} ok points "
            f"({', '.join(f'{k}: {v}' for k, v in objectives.items())}); plot: {plot}")
    return head + "\n" + format_table(front_rows)


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
