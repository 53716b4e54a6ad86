"""``ridgeline simulate``: play a workload over a device or a system in time.

Latency (makespan), throughput, energy and power per device, the bottleneck that owns the
critical path, the critical path's top operators, the 2x what-ifs and, with ``--trace``, a
Perfetto trace. ``ridgeline op`` stays the single-operator path.
"""

from __future__ import annotations

from hwmodels.units import format_quantity
from roofline.collectives import ALGORITHMS

from .cli_workload import add_workload_arguments, workload_from_args
from .output import add_result_arguments, emit_result, format_fields, format_table, warn


def register(subparsers) -> None:
    """Add ``simulate``."""
    p = subparsers.add_parser("simulate", help="simulate a workload over hardware in time (contention, "
                                               "parallelism, collectives, energy, bottleneck)")
    p.add_argument("--hw", required=True, metavar="ID|FILE", help="device or system (catalog id or YAML)")
    p.add_argument("--model", required=True, metavar="ID|config.json|workload.yaml|model.onnx")
    add_workload_arguments(p)
    p.add_argument("--algorithm", choices=ALGORITHMS.names(),
                   help="collective algorithm, for the collectives it implements (default, and for the others: "
                        "in-switch where the switch reduces, else ring)")
    p.add_argument("--no-spill", dest="spill", action="store_false",
                   help="fail (exit 2) when the workload does not fit in device memory, instead of placing "
                        "the KV cache / weights that overflow in host or CXL memory")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jitter", type=float, default=0.0,
                   help="relative spread of each operator's work (stragglers), seeded")
    p.add_argument("--trace", metavar="FILE", help="write a Chrome/Perfetto trace JSON")
    p.add_argument("--plot", metavar="FILE", help="write a Gantt chart (PNG/SVG)")
    p.add_argument("--top", type=int, default=10, help="critical-path operators to list")
    p.add_argument("--no-timeline", dest="timeline", action="store_false",
                   help="leave the timeline table (one row per operator and device: op, device, resource, "
                        "bound, start, end) out of --format json")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar on stderr (it appears only when a run takes over 2 s)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    add_result_arguments(p)
    p.set_defaults(func=cmd_simulate)


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
          "processed_tok_s": "processed tokens per second of makespan"}


def figures(res) -> dict:
    """What the result's latency, token and throughput numbers mean for its phase, and which
    throughput is the step's headline figure."""
    phase = res.meta.get("phase")
    return {"phase": phase, "headline": HEADLINE.get(phase, "throughput_tok_s"),
            **FIGURES.get(phase, _OTHER), **_COMMON}


def load_inputs(args):
    """(graph, hardware) from the command's options."""
    from hwmodels import load_hardware

    return workload_from_args(args, args.model), load_hardware(args.hw)


def cmd_simulate(args) -> int:
    from hwmodels.errors import InputError
    from simulator import simulate

    if args.top < 0:
        raise InputError("--top must be >= 0", path="top")
    from simulator.engine import progress

    from .progress import DelayedProgress

    graph, hardware = load_inputs(args)
    with DelayedProgress(enabled=args.progress) as bar, progress(bar.update):
        bar.phase("simulating")
        res = simulate(graph, hardware, seed=args.seed, jitter=args.jitter, algorithm=args.algorithm,
                       spill=args.spill)
        bar.phase("2x what-ifs")
        res.sensitivity  # noqa: B018 - the re-simulations run here, under the progress bar
    for message in res.memory.warnings:
        warn(message)
    if args.trace:
        res.write_trace(args.trace)
    if args.plot:
        res.plot().savefig(args.plot)
    for dev in res.over_tdp:
        warn(f"{dev}: average power {res.avg_power_w[dev]:.0f} W exceeds its TDP {res.tdp_w[dev]:.0f} W")
    doc = result_document(res, graph, hardware, args) if args.format == "json" or args.out or args.html else None
    emit_result(doc, args, render(res, args.top) if args.format == "table" else None)
    return 0


def result_document(res, graph, hardware, args) -> dict:
    """The JSON document of a simulation: the result, what its figures mean, the roofline of
    its operators (for reports) and the reproducibility manifest."""
    from roofline import analyze

    from .manifest import manifest

    return {"kind": "simulate", **res.to_dict(timeline=args.timeline), "figures": figures(res),
            "roofline": analyze(graph, hardware).plot_data(),
            "manifest": manifest(args, hardware=[args.hw], meta=graph.meta, seed=args.seed)}


def render(res, top: int = 10) -> str:
    """The result as text: headline, memory per device, power per device, critical path, what-ifs."""
    meta = res.meta
    head = [("workload", f"{meta.get('model', '')} {meta.get('phase', '')} batch={meta.get('batch', '')}"),
            ("hardware", f"{meta['system']} ({meta['devices']} accelerator(s); tp={meta.get('tp', 1)} "
                         f"pp={meta.get('pp', 1)} ep={meta.get('ep', 1)}"
                         + (f" dp={meta['dp']}" if meta.get("dp", 1) > 1 else "") + ")"),
            ("latency", f"{format_quantity(res.latency_s, 'time')} ({figures(res)['latency_s']})")]
    head += _token_lines(res)
    head += [("energy", f"{res.energy_j:.4g} J (idle {res.static_energy_j:.4g}, active baseline "
                        f"{res.active_energy_j:.4g}, dynamic {res.dynamic_energy_j:.4g})")]
    if res.energy_per_token_j:
        label = "energy/first token" if meta.get("phase") == "prefill" else "energy/token"
        head.append((label, f"{res.energy_per_token_j:.4g} J"))
    b = res.bottleneck
    if b["resource"]:
        head.append(("bottleneck", f"{b['resource']} ({b['bound']}-bound, {b['share']:.1%} of the critical path)"))
    lines = [format_fields(head)]
    power = [{"device": d, "avg_power_w": p, "tdp_w": res.tdp_w[d],
              "over_tdp": "YES" if d in res.over_tdp else "",
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
    sens = res.sensitivity
    if sens:
        rows = [{"if 2x faster": k, "latency_s": v["latency_s"], "change": f"{v['change']:+.1%}"}
                for k, v in sens.items()]
        lines += ["", format_table(rows)]
    return "\n".join(lines)


def _token_lines(res) -> list[tuple[str, str]]:
    """Token counts and rates, labelled by what they are for the phase."""
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
    return lines


def render_memory(memory) -> list[str]:
    """One row per distinct (stage, device) placement: capacity, footprint by role, use, spills."""
    if memory is None:
        return []
    rows, seen = [], set()
    for node, d in memory.devices.items():
        key = (d.stage, d.device, d.capacity_bytes, tuple(d.footprint_bytes.values()), tuple(d.spilled_bytes.items()))
        if key in seen:
            continue
        seen.add(key)
        same = [n for n, o in memory.devices.items() if o.stage == d.stage and o.device == d.device]
        spilled = ", ".join(f"{'KV cache' if r == 'kv_cache' else r} {format_quantity(v, 'capacity', 3)}"
                            for r, v in d.spilled_bytes.items() if v)
        rows.append({"devices": node if len(same) == 1 else f"{same[0]}..{same[-1]}", "stage": d.stage,
                     "level": d.level, "capacity": format_quantity(d.capacity_bytes, "capacity", 3),
                     **{r: format_quantity(v, "capacity", 3) for r, v in d.footprint_bytes.items()},
                     "used": f"{d.utilisation:.1%}",
                     "spilled": f"{spilled} -> {d.spill.level}" if spilled else ""})
    state = "fits" if memory.fits else "spilled to a lower tier" if memory.spilled else "does NOT fit"
    return [f"memory: {state} (per device; activations: the peak live set of one operator)", format_table(rows)]
