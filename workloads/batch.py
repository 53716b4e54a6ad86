"""One serving step's operator graph: a mix of prefill chunks and decodes in one forward pass.

A continuous-batching engine (Orca, vLLM, Sarathi-Serve) runs, in each step, some prefill chunks
(``tokens`` new prompt tokens of a request that already has ``cached`` tokens in its KV cache) and
some decodes (one new token of a request whose context is ``context`` tokens). All of them share
the linear layers (``T`` = the step's tokens, stacked), each runs its own attention:

* a prefill chunk is one attention segment (1 sequence, ``tokens`` queries over ``cached +
  tokens`` keys);
* the decodes are one segment of ``n`` sequences at their mean context, rounded up to a multiple
  of :data:`DECODE_CONTEXT_GRANULE` (16 tokens, vLLM's default KV block): a varlen decode kernel
  (FlashAttention's, FlashInfer's) reads every sequence's K/V once, ``sum(context)`` tokens in all,
  which ``n x mean`` matches; one kernel launch, as in the engines. The rounding (at most 15
  tokens a sequence) keeps the number of distinct decode shapes a serving run asks the cost
  model about small.

The LM head runs on one row per scheduled request (vLLM v1 computes the logits of every
scheduled request's last token, and drops the sample of a chunk that does not end its prompt).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hwmodels.dtypes import DTYPE_BYTES
from hwmodels.errors import InputError

from .configs import ModelConfig, load_config
from .graph import Graph
from .llm import Segment, _Builder, _check_parallel, builder_knobs
from .options import StepOptions

DECODE_CONTEXT_GRANULE = 16


@dataclass(frozen=True)
class PrefillChunk:
    """``tokens`` prompt tokens of one request on top of ``cached`` tokens already in its cache;
    ``last``: the chunk ends the prompt (so the step samples the request's first token)."""

    tokens: int
    cached: int = 0
    last: bool = True


def step_knobs(cfg: ModelConfig, *, tp: int = 1, pp: int = 1, dtype: str = "bf16",
               weight_dtype: str | None = None, kv_dtype: str | None = None,
               group_size: int | None = None, fused_attention: bool = True, kv_block: int | None = None) -> dict:
    """The builder knobs of a serving step, checked as :class:`~workloads.options.StepOptions`
    checks them (dtypes, a group size only for int4/int8 weights) and against the model
    (parallelism that divides it; an attention model, since serving pages a KV cache)."""
    opts = StepOptions(phase="prefill", tp=tp, pp=pp, dtype=dtype, weight_dtype=weight_dtype,
                       kv_dtype=kv_dtype, group_size=group_size, fused_attention=fused_attention,
                       kv_block=kv_block)
    if cfg.family == "mamba":
        raise InputError(f"{cfg.id} (Mamba) has no KV cache to page; serving models attention LLMs",
                         path="model")
    _check_parallel(cfg, tp, pp, 1)
    return builder_knobs(opts)


def _count(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}", path=name)
    return value


def decode_context(n: int, total: int) -> int:
    """The context a step's ``n`` decodes run at: their mean (``total`` / n), rounded up to a
    multiple of :data:`DECODE_CONTEXT_GRANULE`."""
    g = DECODE_CONTEXT_GRANULE
    return -(-total // (n * g)) * g


def step_segments(prefills: Sequence[PrefillChunk], decodes: Sequence[int]) -> tuple[list[Segment], int]:
    """(attention segments, LM-head rows) of a step; see the module docstring."""
    segments = []
    for i, p in enumerate(prefills):
        _count(f"prefills[{i}].tokens", p.tokens)
        _count(f"prefills[{i}].cached", p.cached, 0)
        segments.append(Segment(1, p.tokens, p.cached + p.tokens))
    if decodes:
        if min(decodes) < 1:
            raise InputError(f"a decode's context must be >= 1 token, got {min(decodes)}", path="decodes")
        mean = decode_context(len(decodes), sum(decodes))
        segments.append(Segment(len(decodes), 1, mean + 1))
    if not segments:
        raise InputError("a step needs at least one prefill chunk or decode", path="batch")
    return segments, len(decodes) + len(prefills)


def build_step(model: str | ModelConfig, prefills: Sequence[PrefillChunk] = (), decodes: Sequence[int] = (),
               *, knobs: dict | None = None, **kw) -> Graph:
    """The operator graph of one mixed step of ``model`` (per TP rank and pipeline stage).

    ``prefills``: :class:`PrefillChunk` entries; ``decodes``: the context (tokens cached) of each
    decoding request. ``knobs`` from :func:`step_knobs` (or its keyword arguments in ``kw``).
    """
    cfg = model if isinstance(model, ModelConfig) else load_config(model)
    knobs = knobs or step_knobs(cfg, **kw)
    segments, rows = step_segments(prefills, decodes)
    tokens = sum(s.batch * s.q_len for s in segments)
    graph = Graph(f"{cfg.id}-step", meta={
        "model": cfg.id, "family": cfg.family, "phase": "mixed", "batch": len(prefills) + len(decodes),
        "tokens": float(len(decodes) + sum(1 for p in prefills if p.last)), "tokens_processed": tokens,
        "tp": knobs["tp"], "pp": knobs["pp"], "ep": 1, "microbatches": 1, "dtype": knobs["dtype"],
        "weight_dtype": knobs["weight_dtype"], "kv_dtype": knobs["kv_dtype"], "kv_placement": "device",
        "warnings": [], "kv_bytes_per_token": cfg.kv_bytes_per_token(DTYPE_BYTES[knobs["kv_dtype"]]),
    })
    _Builder(cfg, graph, knobs).build(segments, rows)
    return graph
