"""``ridgeline workload``: list the bundled models, show a workload's size (params, FLOPs, bytes)."""

from __future__ import annotations

from pathlib import Path

from hwmodels.units import format_quantity

from .commands import COMMANDS
from .dataclass_args import add_dataclass_arguments, given_fields
from .output import format_fields, format_table, print_json, warn

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
    print(format_fields(head))
    print()
    rows = [{"kind": k, "ops": v["ops"], "flops": v["flops"], "bytes": v["bytes"]}
            for k, v in sorted(summary["by_kind"].items(), key=lambda kv: -kv[1]["flops"])]
    print(format_table(rows, ["kind", "ops", "flops", "bytes"]))
    return 0


def _shown(meta: dict, key: str) -> bool:
    """Whether the table shows ``key``: knobs that apply to the step's phase, at a value that says
    something (parallelism and sampling knobs when not 1)."""
    from workloads.options import knob_applies

    if key in ("dp", "spec_tokens", "best_of") and meta[key] in (0, 1):
        return False
    return knob_applies(key, meta.get("phase", ""), best_of=meta.get("best_of", 1))


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
    for r in rows:
        r["params"] = f"{r['params'] / 1e9:.3g} B"
        r["active_params"] = f"{r['active_params'] / 1e9:.3g} B"
    print(format_table(rows, ["id", "family", "params", "active_params", "layers", "hidden", "heads",
                              "kv_heads", "vocab", "max_positions"]))
    return 0
