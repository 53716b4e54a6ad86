"""``ridgeline op`` (one operator on one device) and ``ridgeline roofline`` (a workload's roofline).

``ridgeline op KIND --hw ID|FILE [--m --n --k ...] [--format json]``: the shape flags are the
operator kind's own fields (``ridgeline op matmul --help`` lists every kind's fields); a field the
kind does not have is an input error with a suggestion.

``ridgeline roofline --hw ID|FILE [--hw ...] --model M [workload flags] [--out f.png|.svg]``: the
per-operator roofline analysis, bound summary and the hierarchical roofline plot; several ``--hw``
put the devices side by side.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import hwmodels  # the package is light: its models load on first use
from hwmodels.errors import InputError
from roofline.collectives import ALGORITHMS
from workloads.operators import COLLECTIVES, GROUPS, OPERATORS, make_operator

from .cli_workload import add_workload_arguments, workload_from_args
from .commands import COMMANDS
from .emit import add_result_arguments, emit_result
from .output import check_finite, file_name
from .text import op_text, roofline_text

# roofline and matplotlib are imported inside the commands: CLI start-up.

_SKIP_FIELDS = {"name", "inputs", "outputs", "param_prefix"}
# Fields whose names come from one list (checked by the operator, with a did-you-mean).
_FIELD_NAMES = {"collective": COLLECTIVES, "group": GROUPS}


def _number(text: str) -> int | float:
    """An operator field's number: an int when written as one (4096), else a float (1e9, 0.5)."""
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from None


def _size(text: str) -> int | float | str:
    """A size in bytes: a plain number, or a quantity with a unit ("1 GB") that the operator
    converts as YAML does (a bad one is the operator's input error, naming the field)."""
    try:
        return _number(text)
    except argparse.ArgumentTypeError:
        return text


def _operator_fields() -> dict[str, tuple[object, set[str]]]:
    """Every operator field (across kinds) -> (argparse type, or None for a flag; kinds having it)."""
    out: dict[str, tuple[object, set[str]]] = {}
    for kind, cls in OPERATORS.items():
        for f in dataclasses.fields(cls):
            if not f.init or f.name in _SKIP_FIELDS:
                continue
            annotation = str(f.type)
            if "bool" in annotation:
                ftype = None
            elif "bytes" in f.name:
                ftype = _size
            elif "int" in annotation or "float" in annotation:
                ftype = _number
            else:
                ftype = str
            kinds = out.get(f.name, (ftype, set()))[1] | {kind}
            out[f.name] = (ftype, kinds)
    return out


@COMMANDS.register("op", help="cost of one operator on one device: latency, bound, intensity")
def op_command(op) -> None:
    fields = _operator_fields()
    op.description = ("Cost of one operator on one device. Shape flags are the operator's fields: "
                      + "; ".join(f"{k}: {', '.join(sorted(n for n, (_, ks) in fields.items() if k in ks))}"
                                  for k in sorted(OPERATORS)))
    op.add_argument("kind", metavar="KIND", help=f"one of: {', '.join(sorted(OPERATORS))}")
    op.add_argument("--hw", required=True, metavar="ID|FILE", help="catalog id or YAML (overlays too)")
    for name, (ftype, _) in sorted(fields.items()):
        flag = "--" + name.replace("_", "-")
        if ftype is None:
            op.add_argument(flag, dest=f"field_{name}", action=argparse.BooleanOptionalAction, default=None)
        else:
            names = _FIELD_NAMES.get(name)
            op.add_argument(flag, dest=f"field_{name}", type=ftype, default=None, metavar=name.upper(),
                            help=f"one of: {', '.join(names)}" if names else
                            "bytes: a number, or a size with a unit ('1 GB', '64 MiB')" if ftype is _size else None)
    op.add_argument("--algorithm", choices=ALGORITHMS.names(),
                    help="collective algorithm (default: as NCCL picks for the link)")
    op.add_argument("--format", choices=("table", "json"), default="table")
    add_result_arguments(op)
    op.set_defaults(func=cmd_op)


@COMMANDS.register("roofline", help="per-operator roofline of a workload on devices, with a plot")
def roofline_command(rl) -> None:
    rl.add_argument("--hw", required=True, action="append", metavar="ID|FILE",
                    help="catalog id or YAML; repeat to compare devices side by side")
    rl.add_argument("--model", required=True, metavar="MODEL|config.json|workload.yaml|model.onnx")
    add_workload_arguments(rl)
    rl.add_argument("--out", metavar="FILE.png|FILE.svg|FILE.pdf|FILE.json", type=file_name,
                    help="write the roofline plot (.png/.svg/.pdf) or the result's JSON document (.json)")
    rl.add_argument("--top", type=int, default=15, help="operators listed in the table (largest time first)")
    rl.add_argument("--format", choices=("table", "json"), default="table")
    add_result_arguments(rl, out=False)
    rl.set_defaults(func=cmd_roofline)


def compute_device(ref: str):
    """The device that runs operators for ``--hw``: a device, or a system's first accelerator."""
    hw = hwmodels.load_hardware(ref)
    if isinstance(hw, hwmodels.Device):
        return hw
    return hw.first_accelerator()


def op_report(op, device, demands) -> dict:
    """The JSON of ``ridgeline op``: latency, FLOPs, bytes per level and link, bound, intensity."""
    memory = {k.split(":", 1)[1]: v for k, v in demands.work.items() if k.startswith("memory:")}
    links = {k.split(":", 1)[1]: v for k, v in demands.work.items() if k.startswith("link:")}
    intensity = {(k.split(":", 1)[1] if k.startswith("memory:") else k): v
                 for k, v in demands.intensity().items()}
    return {
        "op": op.to_dict(), "device": device.id, "latency_s": demands.time_s, "bound": demands.bound,
        "flops": demands.flops, "flops_by_dtype": demands.flops_by_dtype, "bytes": memory,
        "link_bytes": links, "intensity": intensity, "peak_flops": demands.peak_flops,
        "attainable_flops": demands.attainable_flops, "achieved_flops": demands.achieved_flops,
        "fixed_s": demands.fixed_s, "energy_j": demands.energy_j, "times_s": demands.times(),
        "rates": demands.rates,
    }


def cmd_op(args) -> int:
    from roofline.costs import cost, cost_collective

    OPERATORS.check(args.kind, path="kind")
    fields = {k[len("field_"):]: v for k, v in vars(args).items() if k.startswith("field_") and v is not None}
    if args.algorithm is not None and args.kind != "collective":
        raise InputError("--algorithm applies to collectives only", path="algorithm")
    device = compute_device(args.hw)
    op = make_operator(args.kind, name=args.kind, **fields)
    if args.algorithm is not None:
        demands = cost_collective(op, device, algorithm=args.algorithm)
    else:
        demands = cost(op, device)
    report = op_report(op, device, demands)
    from calibration.intervals import op_intervals

    report.update(op_intervals(report, op.kind, demands.regime))
    report["regime"] = demands.regime
    text = op_text(op, device, demands, report) if args.format == "table" else None
    from roofline import analyze

    from .manifest import manifest

    # the document a report is made from: the operator's roofline panel and how to redo it
    panel = {**analyze([op], device).plot_data(), "workload": f"{op.kind} on {device.id}"}
    emit_result({"kind": "op", **report, "roofline": panel, "manifest": manifest(args, hardware=[args.hw])},
                args, text)
    return 0


def cmd_roofline(args) -> int:
    from roofline import analyze, plot_rooflines

    if args.top < 0:
        raise InputError("--top must be >= 0", path="top")
    graph = workload_from_args(args, args.model)
    analyses = [analyze(graph, compute_device(ref)) for ref in args.hw]
    for a in analyses:
        check_finite(a.to_dict())   # before any plot, table or document goes out
    suffix = Path(args.out).suffix.lower() if args.out else ""
    if args.out and suffix not in (".png", ".svg", ".pdf", ".json"):
        raise InputError(f"--out must end in .png, .svg, .pdf or .json, got '{args.out}'", path="out")
    if args.out and suffix != ".json":
        import matplotlib
        matplotlib.use("Agg")
        fig = plot_rooflines(analyses)
        try:
            fig.savefig(args.out, dpi=130)
        except OSError as err:
            raise InputError(f"cannot write the plot: {err.strerror}", path="out") from None
        print(f"wrote {args.out}", file=sys.stderr)
    json_out = args.out if suffix == ".json" else None
    doc = result_document(analyses, graph, args) if args.format == "json" or json_out or args.html else None
    emit_result(doc, args, roofline_text(analyses, graph, args.top) if args.format == "table" else None, out=json_out or "")
    return 0


def result_document(analyses, graph, args) -> dict:
    """The JSON document of a roofline analysis (one device, or ``analyses`` for several): the
    operator rows, the plot's data and the reproducibility manifest."""
    from .manifest import manifest

    docs = [{**a.to_dict(), "plot": a.plot_data()} for a in analyses]
    body = docs[0] if len(docs) == 1 else {"analyses": docs}
    return {"kind": "roofline", **body, "manifest": manifest(args, hardware=args.hw, meta=graph.meta)}


