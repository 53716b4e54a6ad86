"""``ridgeline workload``: list the bundled models, show a workload's size (params, FLOPs, bytes)."""

from __future__ import annotations

from pathlib import Path

from hwmodels.units import format_quantity

from .output import format_fields, format_table, print_json, warn

# Workload flags shared by ``workload show``, ``roofline`` and ``simulate``: (flag, dest, type, choices, help).
WORKLOAD_FLAGS = (
    ("--phase", "phase", str, ("prefill", "decode", "chunked"), None),
    ("--batch", "batch", int, None, "sequences (decode) or prompts (prefill); ONNX: dynamic dims"),
    ("--prompt-len", "prompt_len", int, None, "prompt tokens per sequence"),
    ("--context", "context", int, None, "tokens already cached per sequence (decode, chunked)"),
    ("--tp", "tp", int, None, "tensor-parallel ranks"),
    ("--pp", "pp", int, None, "pipeline stages"),
    ("--ep", "ep", int, None, "expert-parallel ranks"),
    ("--microbatches", "microbatches", int, None, "micro-batches through the pipeline"),
    ("--dtype", "dtype", str, None, "activation dtype"),
    ("--weight-dtype", "weight_dtype", str, None, "weight dtype (int4/int8: group-quantized)"),
    ("--kv-dtype", "kv_dtype", str, None, "KV-cache dtype"),
    ("--group-size", "group_size", int, None, "int4/int8 weights: elements per quantization group (default 128)"),
    ("--kv-placement", "kv_placement", str, ("device", "host", "cxl"), "where the KV cache lives"),
    ("--spec-tokens", "spec_tokens", int, None, "speculative tokens verified per step"),
    ("--draft", "draft", str, None, "draft model for speculative decoding"),
    ("--acceptance", "acceptance", float, None, "speculative decoding: per-token acceptance rate"),
    ("--best-of", "best_of", int, None, "samples per prompt sharing its KV prefix"),
    ("--kv-fraction", "kv_fraction", float, None, "sparse attention: fraction of the KV read"),
    ("--chunk-size", "chunk_size", int, None, "chunked prefill: tokens per chunk"),
    ("--moe-imbalance", "moe_imbalance", float, None, "MoE: busiest expert's load over the mean"),
    ("--unknown-ops", "unknown_ops", str, ("error", "elementwise"), "ONNX: how to treat unsupported ops"),
)
MODEL_KNOBS = {dest: dest for _, dest, *_ in WORKLOAD_FLAGS if dest != "unknown_ops"} | {
    "fused_attention": "fused_attention"}
ONNX_KNOBS = {"batch": "batch", "unknown_ops": "unknown_ops"}


def add_workload_arguments(parser) -> None:
    """Add the workload flags (phase, batch, lengths, parallelism, dtypes, LLM knobs) to ``parser``."""
    for flag, dest, ftype, choices, text in WORKLOAD_FLAGS:
        parser.add_argument(flag, dest=dest, type=ftype, choices=choices, help=text)
    parser.add_argument("--unfused-attention", dest="fused_attention", action="store_const", const=False,
                        help="materialize attention scores (no flash-style fusion)")


def workload_from_args(args, ref: str):
    """The workload graph for ``ref`` built with the flags in ``args``; its warnings go to stderr."""
    from hwmodels.errors import InputError
    from workloads import load_workload

    suffix = Path(ref).suffix.lower()
    table = ONNX_KNOBS if suffix == ".onnx" else {} if suffix in (".yaml", ".yml") else MODEL_KNOBS
    given = {dest for dest in set(MODEL_KNOBS) | set(ONNX_KNOBS) if getattr(args, dest, None) is not None}
    extra = sorted("--" + d.replace("_", "-") for d in given - set(table))
    if extra:
        raise InputError(f"option(s) {', '.join(extra)} do not apply to {ref}", path="options")
    graph = load_workload(ref, **{table[d]: getattr(args, d) for d in given})
    for message in graph.meta.get("warnings", []):
        warn(message)
    return graph


def register(subparsers) -> None:
    """Add ``workload list`` and ``workload show``."""
    p = subparsers.add_parser("workload", help="bundled models and workload summaries")
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
    if graph.meta.get("tp", 1) > 1 or graph.meta.get("pp", 1) > 1:
        summary["scope"] = "one tensor-parallel rank of each pipeline stage"
    if args.format == "json":
        print_json(summary)
        return 0
    meta = summary["meta"]
    head = [("workload", summary["name"])]
    head += [(k, meta[k]) for k in ("phase", "batch", "prompt_len", "context", "tp", "pp", "ep", "dtype",
                                    "weight_dtype", "kv_dtype", "tokens") if meta.get(k) is not None]
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
