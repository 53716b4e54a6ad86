"""``ridgeline serve``: requests over time on replicas of a model (see docs/serving.md).

TTFT, TPOT, ITL and end-to-end latency as vLLM's ``benchmark_serving`` reports them, throughput,
goodput under ``--slo-*``, energy (each figure with its 80% interval, ``<key>_interval``, and the
``interval_basis`` it came from: :func:`calibration.intervals.attach_serve_intervals`), KV-cache use and preemptions; ``--format json`` with one object
per request (``--no-requests`` leaves them out), ``--trace`` a Perfetto trace, ``--plot`` a figure.
"""

from __future__ import annotations

from .commands import COMMANDS
from .emit import add_result_arguments, emit_result
from .output import warn
from .text import serving_text


def _rate(text: str) -> float:
    from hwmodels.errors import InputError

    try:
        value = float(text)
    except ValueError:
        raise InputError(f"--rate must be a number of requests/s or 'inf', got '{text}'", path="rate") from None
    if not value > 0:
        raise InputError(f"--rate must be > 0 requests/s (inf: all at once), got {text}", path="rate")
    return value


@COMMANDS.register("serve", help="simulate serving: requests over time, schedulers, KV blocks, "
                                "TTFT/TPOT/ITL/E2E, throughput, goodput, energy")
def serve_command(p) -> None:
    # scheduler and router names are checked when the command runs (did-you-mean from their
    # registries): importing the simulator here would slow every ridgeline call
    p.add_argument("--hw", required=True, metavar="ID|FILE", help="device or system (catalog id or YAML)")
    p.add_argument("--model", required=True, metavar="ID|config.json")
    p.add_argument("--tp", type=int, default=1)
    p.add_argument("--pp", type=int, default=1)
    p.add_argument("--replicas", type=int, default=1, help="data-parallel replicas behind the router")
    p.add_argument("--prefill-replicas", type=int, help="disaggregated: replicas in the prefill pool "
                                                        "(default half)")
    p.add_argument("--router", default="round_robin", metavar="NAME",
                   help="a registered router (simulator.serving.ROUTERS; default round_robin)")
    p.add_argument("--requests", metavar="FILE|ID", help="trace file (JSONL or CSV), a bundled trace "
                                                         "(azure-conv, azure-code, vllm-rtx4090) or a request "
                                                         "length mix drawn --num-requests times at --rate (sharegpt)")
    p.add_argument("--num-requests", type=int, help="requests to draw (or the first N of --requests)")
    p.add_argument("--rate", type=str, help="requests/s (Poisson; default 'inf': all at once)")
    p.add_argument("--burstiness", type=float, help="gamma shape of the gaps (default 1: Poisson)")
    p.add_argument("--concurrency", type=int, help="closed loop: keep this many requests in flight")
    p.add_argument("--input-len", metavar="L", help="N (default 512), uniform:LO,HI, normal:MEAN,STD, "
                                                    "lognormal:MEDIAN,SIGMA or empirical:FILE")
    p.add_argument("--output-len", metavar="L", help="as --input-len (default 128)")
    p.add_argument("--dtype", default="bf16")
    p.add_argument("--weight-dtype")
    p.add_argument("--kv-dtype")
    p.add_argument("--scheduler", default="vllm", metavar="NAME",
                   help="a registered scheduler (simulator.serving.SCHEDULERS, see docs/serving.md; default vllm)")
    p.add_argument("--max-num-seqs", type=int, default=256)
    p.add_argument("--max-num-batched-tokens", type=int, help="token budget per step (default 8192; "
                                                              "sarathi: --chunk-size)")
    p.add_argument("--chunk-size", type=int, default=512, help="sarathi's token budget per step")
    p.add_argument("--block-size", type=int, default=16)
    p.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    p.add_argument("--kv-blocks", type=int, help="KV blocks per replica (default: derived as vLLM does)")
    p.add_argument("--kv-free-fraction", type=float, metavar="F",
                   help="size the KV cache as TensorRT-LLM does: this fraction of the memory left after "
                        "weights, activations and the runtime reserve (its kv_cache_free_gpu_mem_fraction; "
                        "--gpu-memory-utilization is then unused)")
    p.add_argument("--preemption", default="recompute", choices=("recompute", "swap"))
    p.add_argument("--no-prefix-caching", dest="prefix_caching", action="store_false",
                   help="a request preempted by recompute prefills everything again (default: it takes "
                        "back what of its blocks is still untouched, as vLLM v1's prefix cache does)")
    p.add_argument("--runtime", "--profile", dest="profile", default="vllm-v1", metavar="NAME|FILE",
                   help="the engine around the kernels (the runtime profile, as simulate --runtime): a bundled "
                        "profile (none, vllm-v0.6, vllm-v1, trtllm, sglang) or a YAML file (default vllm-v1)")
    p.add_argument("--scheduler-steps", type=int, metavar="N",
                   help="multi-step scheduling: the engine schedules once for N steps, sharing the step's CPU "
                        "work (vLLM 0.6's --num-scheduler-steps; default: the profile's scheduler_steps)")
    p.add_argument("--slo-ttft", type=float, metavar="S")
    p.add_argument("--slo-tpot", type=float, metavar="S")
    p.add_argument("--slo-e2e", type=float, metavar="S")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--trace", metavar="FILE", help="write a Perfetto/Chrome trace JSON")
    p.add_argument("--plot", metavar="FILE", help="write latency CDFs, throughput and KV use (PNG/SVG)")
    p.add_argument("--no-requests", dest="with_requests", action="store_false",
                   help="leave the per-request objects out of --format json")
    p.add_argument("--format", choices=("table", "json"), default="table")
    add_result_arguments(p)
    p.set_defaults(func=cmd_serve)


def cmd_serve(args) -> int:
    from calibration.intervals import attach_serve_intervals
    from simulator.serving import serve

    _check_workload(args)
    profile = _profile(args)
    res = serve(args.model, args.hw, requests=args.requests, num_requests=args.num_requests,
                rate=_rate(args.rate or "inf"), burstiness=1.0 if args.burstiness is None else args.burstiness,
                concurrency=args.concurrency, input_len=args.input_len or "512",
                output_len=args.output_len or "128", tp=args.tp, pp=args.pp,
                replicas=args.replicas, prefill_replicas=args.prefill_replicas, dtype=args.dtype,
                weight_dtype=args.weight_dtype, kv_dtype=args.kv_dtype, scheduler=args.scheduler,
                router=args.router, max_num_seqs=args.max_num_seqs,
                max_num_batched_tokens=args.max_num_batched_tokens, chunk_size=args.chunk_size,
                block_size=args.block_size, gpu_memory_utilization=args.gpu_memory_utilization,
                kv_blocks=args.kv_blocks, kv_free_fraction=args.kv_free_fraction, preemption=args.preemption,
                prefix_caching=args.prefix_caching, slo_ttft=args.slo_ttft,
                slo_tpot=args.slo_tpot, slo_e2e=args.slo_e2e, seed=args.seed, profile=profile)
    attach_serve_intervals(res)
    if res.metrics["rejected"]:
        first = res.rejected[0]
        warn(f"{res.metrics['rejected']} request(s) rejected (request {first[0]}: {first[1]})")
    if args.trace:
        res.write_trace(args.trace)
    if args.plot:
        res.plot().savefig(args.plot)
    doc = result_document(res, args) if args.format == "json" or args.out or args.html else None
    emit_result(doc, args, serving_text(res) if args.format == "table" else None)
    return 0


def result_document(res, args) -> dict:
    """The JSON document of a serving run: metrics, config, requests (unless --no-requests), each
    completed request's latencies and the per-second time series (for reports) and the manifest."""
    from .manifest import manifest
    from .serving_figures import latencies_of

    knobs = {k: v for k, v in res.config.items() if isinstance(v, (str, int, float, bool))}
    return {"kind": "serve", **res.to_dict(requests=args.with_requests), "latencies": latencies_of(res),
            "timeseries": res.timeseries().to_dict(orient="records"),
            "manifest": manifest(args, hardware=[args.hw], meta=knobs, seed=args.seed)}


def _profile(args):
    """The runtime profile by name or file, with ``--scheduler-steps`` when given."""
    if args.scheduler_steps is None:
        return args.profile
    from hwmodels.runtime import load_runtime

    return load_runtime(args.profile).with_scheduler_steps(args.scheduler_steps, path="--scheduler-steps")


def _check_workload(args) -> None:
    """The request options that go together: a trace brings its own arrivals and lengths, a mix its
    lengths (it needs --num-requests); an open loop (--rate, --burstiness) and a closed one
    (--concurrency) exclude each other."""
    from hwmodels.errors import InputError
    from simulator.serving.mixes import REQUEST_MIXES

    if args.requests is None and args.num_requests is None:
        raise InputError("give --requests FILE or --num-requests N", path="requests")
    drawn = {"--rate": args.rate, "--burstiness": args.burstiness, "--input-len": args.input_len,
             "--output-len": args.output_len}
    if args.requests in REQUEST_MIXES:
        if args.num_requests is None:
            raise InputError(f"the request mix {args.requests} needs --num-requests N", path="num_requests")
        given = [k for k in ("--input-len", "--output-len") if drawn[k] is not None]
        if given:
            raise InputError(f"{', '.join(given)}: the request mix {args.requests} has its own lengths",
                             path=given[0].lstrip("-"))
    elif args.requests is not None:
        given = [k for k, v in drawn.items() if v is not None]
        if given:
            raise InputError(f"{', '.join(given)} apply to drawn requests; the trace {args.requests} has its own "
                             "arrivals and lengths", path=given[0].lstrip("-"))
    if args.concurrency is not None and (args.rate is not None or args.burstiness is not None):
        raise InputError("--rate/--burstiness (open loop) and --concurrency (closed loop) exclude each other",
                         path="concurrency")
