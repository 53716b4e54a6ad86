"""``ridgeline workload``: list the bundled models, show a workload's size (params, FLOPs, bytes)."""

from __future__ import annotations

from pathlib import Path

from .commands import COMMANDS
from .dataclass_args import add_dataclass_arguments, given_fields
from .output import print_json, warn
from .text import models_text, workload_text

# ONNX models take these flags; LLM models take the StepOptions fields (generated flags).
ONNX_KNOBS = ("batch", "unknown_ops")


def add_workload_arguments(parser) -> None:
    """Add the workload flags: every field of :class:`workloads.options.StepOptions` (phase, batch,
    lengths, parallelism, dtypes, LLM knobs), and ``--unknown-ops`` for ONNX models."""
    from workloads.options import StepOptions

    add_dataclass_arguments(parser, StepOptions, group="workload options (LLM step; ONNX: --batch)")
    parser.add_argument("--unknown-ops", dest="unknown_ops", choices=("error", "elementwise"), default=None,
                        help="ONNX: how to treat unsupported ops")


def workload_from_args(args, ref: str):
    """The workload graph for ``ref`` built with the flags in ``args``; its warnings go to stderr."""
    from hwmodels.errors import InputError
    from workloads import load_workload
    from workloads.options import StepOptions

    suffix = Path(ref).suffix.lower()
    step = given_fields(args, StepOptions)
    given = set(step) | {d for d in ONNX_KNOBS if getattr(args, d, None) is not None}
    allowed = set(ONNX_KNOBS) if suffix == ".onnx" else set() if suffix in (".yaml", ".yml") else set(step)
    extra = sorted("--" + d.replace("_", "-") for d in given - allowed)
    if extra:
        raise InputError(f"option(s) {', '.join(extra)} do not apply to {ref}", path="options")
    if suffix == ".onnx":
        graph = load_workload(ref, **{d: getattr(args, d) for d in given})
    elif suffix in (".yaml", ".yml"):
        graph = load_workload(ref)
    else:
        graph = load_workload(ref, StepOptions(**step))
    for message in graph.meta.get("warnings", []):
        warn(message)
    return graph


@COMMANDS.register("workload", help="bundled models and workload summaries")
def workload_command(p) -> None:
    """Fill ``workload`` with ``workload list`` and ``workload show``."""
    sub = p.add_subparsers(dest="workload_command", metavar="ACTION", parser_class=type(p))
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    ls = sub.add_parser("list", help="the bundled model configs")
    ls.add_argument("--format", choices=("table", "json"), default="table")
    ls.set_defaults(func=cmd_list)

    show = sub.add_parser("show", help="params, FLOPs, bytes by role, KV cache and ops of a workload")
    show.add_argument("ref", metavar="MODEL|config.json|workload.yaml|model.onnx")
    add_workload_arguments(show)
    show.add_argument("--format", choices=("table", "json"), default="table")
    show.set_defaults(func=cmd_show)


def cmd_show(args) -> int:
    graph = workload_from_args(args, args.ref)
    summary = graph.summary()
    if graph.meta.get("dp", 1) > 1:
        summary["scope"] = (f"one rank of each pipeline stage: a tensor-parallel rank of one of "
                            f"{graph.meta['dp']} data-parallel attention groups, holding 1/{graph.meta['ep']} "
                            f"of the experts")
    elif graph.meta.get("tp", 1) > 1 or graph.meta.get("pp", 1) > 1:
        summary["scope"] = "one tensor-parallel rank of each pipeline stage"
    if args.format == "json":
        print_json(summary)
        return 0
    print(workload_text(summary))
    return 0


def cmd_list(args) -> int:
    from workloads import build_llm, bundled_ids, load_config

    rows = []
    for model_id in bundled_ids():
        cfg = load_config(model_id)
        graph = build_llm(cfg, "decode", context=1, prompt_len=1)
        rows.append({"id": model_id, "family": cfg.family, "params": graph.params(),
                     "active_params": graph.params(active=True), "layers": cfg.layers, "hidden": cfg.hidden,
                     "heads": cfg.heads or None, "kv_heads": cfg.kv_heads or None, "vocab": cfg.vocab,
                     "max_positions": cfg.max_positions, "source": cfg.source})
    if args.format == "json":
        print_json(rows)
        return 0
    print(models_text(rows))
    return 0
