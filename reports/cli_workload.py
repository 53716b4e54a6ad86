"""``ridgeline workload``: list the bundled models, show a workload's size (params, FLOPs, bytes)."""

from __future__ import annotations

from pathlib import Path

from hwmodels.units import format_quantity

from .output import format_table, print_json, warn

MODEL_KNOBS = {  # flag dest -> build_llm keyword
    "phase": "phase", "batch": "batch", "prompt_len": "prompt_len", "context": "context", "tp": "tp",
    "pp": "pp", "ep": "ep", "dtype": "dtype", "weight_dtype": "weight_dtype", "kv_dtype": "kv_dtype",
    "group_size": "group_size", "kv_placement": "kv_placement", "spec_tokens": "spec_tokens",
    "draft": "draft", "acceptance": "acceptance", "best_of": "best_of", "kv_fraction": "kv_fraction",
    "chunk_size": "chunk_size", "microbatches": "microbatches", "moe_imbalance": "moe_imbalance",
    "fused_attention": "fused_attention",
}
ONNX_KNOBS = {"batch": "batch", "unknown_ops": "unknown_ops"}


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
    show.add_argument("--phase", choices=("prefill", "decode", "chunked"))
    show.add_argument("--batch", type=int, help="sequences (decode) or prompts (prefill); ONNX: dynamic dims")
    show.add_argument("--prompt-len", dest="prompt_len", type=int)
    show.add_argument("--context", type=int, help="tokens already cached per sequence (decode, chunked)")
    show.add_argument("--tp", type=int)
    show.add_argument("--pp", type=int)
    show.add_argument("--ep", type=int)
    show.add_argument("--microbatches", type=int)
    show.add_argument("--dtype")
    show.add_argument("--weight-dtype", dest="weight_dtype")
    show.add_argument("--kv-dtype", dest="kv_dtype")
    show.add_argument("--group-size", dest="group_size", type=int, help="int4/int8 quantization group")
    show.add_argument("--kv-placement", dest="kv_placement", choices=("device", "host", "cxl"))
    show.add_argument("--spec-tokens", dest="spec_tokens", type=int)
    show.add_argument("--draft", help="draft model for speculative decoding")
    show.add_argument("--acceptance", type=float)
    show.add_argument("--best-of", dest="best_of", type=int)
    show.add_argument("--kv-fraction", dest="kv_fraction", type=float, help="sparse attention: KV read")
    show.add_argument("--chunk-size", dest="chunk_size", type=int)
    show.add_argument("--moe-imbalance", dest="moe_imbalance", type=float)
    show.add_argument("--unfused-attention", dest="fused_attention", action="store_const", const=False,
                      help="materialize attention scores (no flash-style fusion)")
    show.add_argument("--unknown-ops", dest="unknown_ops", choices=("error", "elementwise"))
    show.add_argument("--format", choices=("table", "json"), default="table")
    show.set_defaults(func=cmd_show)


def _knobs(args, table: dict) -> dict:
    return {kw: getattr(args, dest) for dest, kw in table.items() if getattr(args, dest, None) is not None}


def _given(args, table: dict) -> list[str]:
    every = set(MODEL_KNOBS) | set(ONNX_KNOBS)
    return sorted("--" + d.replace("_", "-") for d in every - set(table) if getattr(args, d, None) is not None)


def cmd_show(args) -> int:
    from hwmodels.errors import InputError
    from workloads import load_workload

    suffix = Path(args.ref).suffix.lower()
    table = ONNX_KNOBS if suffix == ".onnx" else {} if suffix in (".yaml", ".yml") else MODEL_KNOBS
    extra = _given(args, table)
    if extra:
        raise InputError(f"option(s) {', '.join(extra)} do not apply to {args.ref}", path="options")
    graph = load_workload(args.ref, **_knobs(args, table))
    for message in graph.meta.get("warnings", []):
        warn(message)
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
    width = max(len(k) for k, _ in head)
    print("\n".join(f"{k.ljust(width)}  {v}" for k, v in head))
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
