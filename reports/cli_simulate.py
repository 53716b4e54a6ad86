"""``ridgeline simulate``: play a workload over a device or a system in time.

Latency (makespan), throughput, energy and power per device, the bottleneck that owns the
critical path, the critical path's top operators, the 2x what-ifs and, with ``--trace``, a
Perfetto trace. ``ridgeline op`` stays the single-operator path.
"""

from __future__ import annotations

import hwmodels  # the package is light: its models load on first use
from hwmodels.errors import InputError
from hwmodels.runtime import RUNTIMES
from roofline.collectives import ALGORITHMS

from .cli_workload import add_workload_arguments, workload_from_args
from .commands import COMMANDS
from .emit import add_result_arguments, emit_result
from .output import check_finite, check_plot_name, file_name, plot_figure, warn
from .text import figure_meanings, interval_span, simulation_intervals, simulation_text

# The simulator is imported inside the command: CLI start-up.


@COMMANDS.register("simulate", help="simulate a workload over hardware in time (contention, "
                                   "parallelism, collectives, energy, bottleneck)")
def simulate_command(p) -> None:
    p.add_argument("--hw", required=True, metavar="ID|FILE", help="device or system (catalog id or YAML)")
    p.add_argument("--model", required=True, metavar="ID|config.json|workload.yaml|model.onnx")
    add_workload_arguments(p)
    p.add_argument("--algorithm", choices=ALGORITHMS.names(),
                   help="collective algorithm, for the collectives it implements (default, and for the others: "
                        "in-switch where the switch reduces, else ring)")
    p.add_argument("--power-limit", metavar="W",
                   help="hold the device to a board power limit below its TDP (e.g. 310W, as nvidia-smi -pl "
                        "sets it): the power cap enforces it; the active baseline and energy per FLOP stay "
                        "the TDP's (a device only; default: its TDP)")
    p.add_argument("--no-spill", dest="spill", action="store_false",
                   help="fail (exit 2) when the workload does not fit in device memory, instead of placing "
                        "the KV cache / weights that overflow in host or CXL memory")
    p.add_argument("--runtime", default="none", metavar="NAME|FILE",
                   help="the inference engine around the kernels (launch costs, CUDA graphs, unfused kernels, "
                        "per-step CPU work and sync), a bundled profile or a YAML file: "
                        + ", ".join(RUNTIMES.names()) + " (default none: the kernels alone)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jitter", type=float, default=0.0,
                   help="relative spread of each operator's work (stragglers), seeded")
    p.add_argument("--trace", metavar="FILE", type=file_name, help="write a Chrome/Perfetto trace JSON")
    p.add_argument("--plot", metavar="FILE", type=file_name, help="write a Gantt chart (PNG/SVG)")
    p.add_argument("--top", type=int, default=10, help="critical-path operators to list")
    p.add_argument("--no-timeline", dest="timeline", action="store_false",
                   help="leave the timeline table (one row per operator and device: op, device, resource, "
                        "bound, start, end) out of --format json")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar on stderr (it appears only when a run takes over 2 s)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    add_result_arguments(p)
    p.set_defaults(func=cmd_simulate)


def load_inputs(args):
    """(graph, hardware) from the command's options."""
    return workload_from_args(args, args.model), hwmodels.load_hardware(args.hw, power_limit=args.power_limit)


def cmd_simulate(args) -> int:
    from simulator import simulate

    if args.top < 0:
        raise InputError("--top must be >= 0", path="top")
    if args.plot:
        check_plot_name(args.plot)
    from simulator.engine import progress

    from .progress import DelayedProgress

    graph, hardware = load_inputs(args)
    with DelayedProgress(enabled=args.progress) as bar, progress(bar.update):
        bar.phase("simulating")
        res = simulate(graph, hardware, seed=args.seed, jitter=args.jitter, algorithm=args.algorithm,
                       spill=args.spill, runtime=args.runtime)
        bar.phase("2x what-ifs")
        res.sensitivity()   # the re-simulations run here, under the progress bar (the answer is kept)
    if args.trace:
        res.write_trace(args.trace)
    if args.plot:
        plot_figure(_gantt_with_interval(res), args.plot)
    for dev, cap in res.power_cap.items():
        warn(f"{dev}: would draw {cap['uncapped_power_w']:.0f} W, above its power limit {res.tdp_w[dev]:.0f} W: clock "
             f"capped at {cap['clock_fraction']:.0%} (compute slowed to stay at the power limit)")
    for dev in res.over_tdp:
        warn(f"{dev}: average power {res.avg_power_w[dev]:.0f} W exceeds its power limit {res.tdp_w[dev]:.0f} W")
    doc = result_document(res, graph, hardware, args) if args.format == "json" or args.out or args.html else None
    if doc is None:
        check_finite(res.to_dict(timeline=False))   # the table shows the same figures
    emit_result(doc, args, simulation_text(res, args.top) if args.format == "table" else None)
    return 0


def result_document(res, graph, hardware, args) -> dict:
    """The JSON document of a simulation: the result, what its figures mean, the roofline of
    its operators (for reports) and the reproducibility manifest."""
    from roofline import analyze

    from .manifest import manifest

    return {"kind": "simulate", **res.to_dict(timeline=args.timeline), **simulation_intervals(res),
            "figures": figure_meanings(res),
            "roofline": analyze(graph, hardware).plot_data(),
            "manifest": manifest(args, hardware=[args.hw], meta=graph.meta, seed=args.seed)}


def _gantt_with_interval(res):
    """The result's Gantt chart with the latency's 80% interval in its title."""
    from .figures import timeline_figure

    title = res.title()
    span = simulation_intervals(res).get("latency_s_interval")
    if span:
        title += f" (80% interval: {interval_span(span, 'time')})"
    return timeline_figure(res.timeline, title=title)
