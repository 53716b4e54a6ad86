"""Decoder-LLM step graphs from a model config: prefill, decode, chunked prefill.

One graph is one forward step of the model (for pipeline parallelism: one microbatch of it) as
run by one tensor-parallel rank of each pipeline stage. Partitioning is Megatron-style:

* attention: q/k/v column-parallel (heads split over TP ranks), o_proj row-parallel, then an
  all-reduce of the (tokens x hidden) activations; MLP: gate/up column-parallel, down row-parallel,
  all-reduce; embedding and LM head vocab-parallel (the embedding's partial rows are all-reduced,
  the logits all-gathered; a vocabulary that tp does not divide is padded up to a multiple of tp,
  as Megatron pads it). Norms, row-parallel biases, learned positions, MoE router gates and
  MLA's latent down-projection are replicated on every rank.
* pipeline: layers split into ``pp`` contiguous stages (the first stages take one more layer when
  they do not divide evenly), a send/recv of the activations between consecutive stages.
* expert parallelism (``ep`` = 1 or a multiple of ``tp``): the stage's max(tp, ep) ranks are
  ep/tp data-parallel attention groups of tp consecutive ranks (each runs its own batch/(ep/tp)
  sequences through attention, replicated and TP-sharded within the group), and the experts are
  sharded over all ep ranks: each rank holds experts/ep whole experts and routes a 1/tp slice of its
  group's tokens; all-to-all dispatch and combine over the ep group around the expert GEMMs, then an
  all-gather over the tp group restores the replicated activations. With ``ep`` = 1 every expert is
  split over the TP ranks.

MLA (DeepSeek-V2): a step with cached tokens (decode, chunked) uses the weight-absorbed form
(W_UK folded into the query, W_UV into the output), so attention runs MQA-style over the cached
latent of kv_lora_rank + qk_rope_head_dim per token; a prefill from scratch decompresses K and V
with kv_b_proj and runs ordinary multi-head attention (head dim qk_nope + qk_rope, V head dim
v_head_dim), caching only the latent. Both forms read the same kv_b_proj weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hwmodels import limits
from hwmodels.dtypes import DTYPE_BYTES
from hwmodels.errors import InputError

from .configs import ModelConfig, load_config
from .graph import Graph
from .operators import (
    Attention,
    Collective,
    Elementwise,
    Embedding,
    LayerNorm,
    MatMul,
    Operator,
    RMSNorm,
    Router,
    SelectiveScan,
)
from .options import PHASES, StepOptions
from .tensors import QUANTIZED_DTYPES, Tensor

__all__ = ["PHASES", "Segment", "StepOptions", "StepPlan", "build_llm", "builder_knobs", "expected_tokens",
           "plan_step", "step_options"]
SWIGLU = {"flops_per_element": 4.0, "special": True}   # silu(g) * u
GELU = {"flops_per_element": 8.0, "special": True}     # tanh approximation
ROTARY_FLOPS = 3.0


def expected_tokens(spec_tokens: int, acceptance: float) -> float:
    """Tokens produced per verification step with k drafted tokens accepted i.i.d. with rate a:
    (1 - a^(k+1)) / (1 - a) (Leviathan et al. 2023, eq. 1); k+1 when a = 1."""
    if acceptance >= 1.0:
        return float(spec_tokens + 1)
    return (1.0 - acceptance ** (spec_tokens + 1)) / (1.0 - acceptance)


def experts_hit(tokens: float, top_k: int, experts: int, local: int) -> float:
    """Expected experts among ``local`` that receive at least one of ``tokens`` top-k routings
    (uniform routing over ``experts``)."""
    return local * (1.0 - (1.0 - top_k / experts) ** tokens)


@dataclass(frozen=True)
class Segment:
    """Sequences sharing a (q_len, kv_len) in one step; ``shared`` cached prefix per ``group``."""

    batch: int
    q_len: int
    kv_len: int
    shared: int = 0
    group: int = 1


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, min(n, limits.LIMITS["devices"].value) + 1) if n % d == 0]


class _Builder:
    """Adds one model's ops to a graph (used for the target and, prefixed, for a draft model)."""

    def __init__(self, cfg: ModelConfig, graph: Graph, k: dict, *, prefix: str = "", wprefix: str = ""):
        self.cfg, self.g, self.k = cfg, graph, k
        self.prefix, self.wprefix = prefix, wprefix
        self.tp, self.pp, self.ep = k["tp"], k["pp"], k["ep"]
        self.groups = data_parallel_groups(self.tp, self.ep)
        self.dt, self.wdt, self.kvdt = k["dtype"], k["weight_dtype"], k["kv_dtype"]
        self.act_bytes = DTYPE_BYTES[self.dt]
        self.group_size = k["group_size"] if self.wdt in QUANTIZED_DTYPES and self.wdt != self.dt else None
        layers = cfg.layers
        base, extra = divmod(layers, self.pp)
        self.stage_of = [s for s in range(self.pp) for _ in range(base + (1 if s < extra else 0))]

    # -- helpers -------------------------------------------------------------------------------
    def add(self, cls: type[Operator], name: str, deps, stage: int, **fields) -> str:
        param = fields.pop("param", name)
        op = cls(name=self.prefix + name, stage=stage, param_prefix=self.wprefix + param, **fields)
        self.g.add(op, [d for d in deps if d])
        return op.name

    def linear(self, name: str, deps, stage: int, m: float, k: int, n: int, *, quantized: bool = True,
               bias: bool = False, **extra) -> str:
        wdt, gs = (self.wdt, self.group_size) if quantized else (self.dt, None)
        return self.add(MatMul, name, deps, stage, m=m, k=k, n=n, dtype=self.dt, weight_dtype=wdt,
                        group_size=gs, bias=bias, **extra)

    def collective(self, name: str, deps, stage: int, kind: str, payload: float, group: str, size: int,
                   **extra) -> str:
        if size < 2:
            return deps[0]
        return self.add(Collective, name, deps, stage, collective=kind, payload_bytes=payload,
                        group=group, group_size=size, dtype=self.dt, **extra)

    def row_parallel_out(self, name: str, o: str, stage: int, tokens: int, bias: bool) -> str:
        """All-reduce a row-parallel output, then add its bias if it has one (GPT; Llama with
        attention_bias / mlp_bias), replicated on every rank."""
        H = self.cfg.hidden
        o = self.collective(name + ".all_reduce", [o], stage, "all_reduce", tokens * H * self.act_bytes,
                            "tp", self.tp)
        if not bias:
            return o
        return self.add(Elementwise, name + ".bias_add", [o], stage, numel=tokens * H, dtype=self.dt,
                        inputs=[Tensor(f"{self.prefix}{name}.reduced", (tokens, H), self.dt),
                                Tensor(f"{self.wprefix}{name}.bias", (H,), self.dt, "weight")],
                        outputs=[Tensor(f"{self.prefix}{name}.biased", (tokens, H), self.dt)])

    def residual(self, name: str, x: str, y: str, stage: int, tokens: float) -> str:
        return self.add(Elementwise, name, [x, y], stage, numel=math.ceil(tokens * self.cfg.hidden),
                        operands=2, dtype=self.dt)

    def norm(self, name: str, deps, stage: int, rows: float, cols: int) -> str:
        if self.cfg.family == "gpt":
            return self.add(LayerNorm, name, deps, stage, rows=math.ceil(rows), cols=cols, dtype=self.dt)
        return self.add(RMSNorm, name, deps, stage, rows=math.ceil(rows), cols=cols, dtype=self.dt)

    # -- the model -----------------------------------------------------------------------------
    def build(self, segments: list[Segment], logits_rows: int, after: str | None = None) -> str:
        cfg, H = self.cfg, self.cfg.hidden
        T = sum(s.batch * s.q_len for s in segments)
        emb_name = "backbone.embeddings" if cfg.family == "mamba" else "model.embed_tokens"
        x = self.add(Embedding, emb_name, [after], 0, tokens=T, hidden=H,
                     vocab=math.ceil(cfg.vocab / self.tp), dtype=self.dt)
        x = self.collective("model.embed_tokens.all_reduce", [x], 0, "all_reduce", T * H * self.act_bytes,
                            "tp", self.tp)
        if cfg.family == "gpt":
            pos = self.add(Embedding, "model.embed_positions", [after], 0, tokens=T, hidden=H,
                           vocab=cfg.max_positions, dtype=self.dt)
            x = self.residual("model.embed_add", x, pos, 0, T)
        for i in range(cfg.layers):
            stage = self.stage_of[i]
            if i > 0 and stage != self.stage_of[i - 1]:
                x = self.collective(f"pp.send.{stage - 1}", [x], stage - 1, "send_recv",
                                    T * H * self.act_bytes, "pp", 2, peer_stage=stage)
            if cfg.family == "mamba":
                x = self.mamba_layer(i, x, stage, segments, T)
                continue
            x = self.attention_layer(i, x, stage, segments, T)
            if cfg.family in ("moe", "mla") and i >= cfg.first_dense:
                x = self.moe_layer(i, x, stage, T)
            else:
                x = self.mlp_layer(i, x, stage, T)
        last = self.pp - 1
        final = "backbone.norm_f" if cfg.family == "mamba" else "model.norm"
        x = self.norm(final, [x], last, logits_rows, H)
        head_param = (self.wprefix + emb_name) if cfg.tie_embeddings else "lm_head"
        x = self.add(MatMul, "lm_head", [x], last, m=logits_rows, k=H, n=math.ceil(cfg.vocab / self.tp),
                     dtype=self.dt, param=head_param.removeprefix(self.wprefix))
        return self.collective("lm_head.all_gather", [x], last, "all_gather",
                               logits_rows * math.ceil(cfg.vocab / self.tp) * self.tp * self.act_bytes,
                               "tp", self.tp)

    def attention_layer(self, i: int, x: str, stage: int, segments: list[Segment], T: int) -> str:
        cfg, H, tp = self.cfg, self.cfg.hidden, self.tp
        p = f"model.layers.{i}."
        a = p + "self_attn."
        h = self.norm(p + "input_layernorm", [x], stage, T, H)
        hl = cfg.heads // tp
        if cfg.family == "mla":
            qk = cfg.qk_nope_head_dim + cfg.qk_rope_head_dim
            if cfg.q_lora_rank:
                q = self.linear(a + "q_a_proj", [h], stage, T, H, cfg.q_lora_rank)
                q = self.norm(a + "q_a_layernorm", [q], stage, T, cfg.q_lora_rank)
                q = self.linear(a + "q_b_proj", [q], stage, T, cfg.q_lora_rank, hl * qk)
            else:
                q = self.linear(a + "q_proj", [h], stage, T, H, hl * qk)
            kv = self.linear(a + "kv_a_proj_with_mqa", [h], stage, T, H, cfg.kv_lora_rank + cfg.qk_rope_head_dim)
            kv = self.norm(a + "kv_a_layernorm", [kv], stage, T, cfg.kv_lora_rank)
            rot = self.add(Elementwise, a + "rotary", [q, kv], stage,
                           numel=T * (hl + 1) * cfg.qk_rope_head_dim, flops_per_element=ROTARY_FLOPS,
                           dtype=self.dt)
            latent = cfg.kv_lora_rank + cfg.qk_rope_head_dim
            if all(s.q_len == s.kv_len for s in segments):      # nothing cached yet: decompress
                kvb = self.linear(a + "kv_b_proj", [kv], stage, T, cfg.kv_lora_rank,
                                  hl * (cfg.qk_nope_head_dim + cfg.v_head_dim))
                attn = self.attention(a + "attn", [rot, kvb], stage, segments, heads=hl, kv_heads=hl,
                                      head_dim=qk, v_head_dim=cfg.v_head_dim, cache_dim=latent)
                o = self.linear(a + "o_proj", attn, stage, T, hl * cfg.v_head_dim, H)
            else:
                q = self.linear(a + "kv_b_proj.uk", [rot], stage, T, cfg.qk_nope_head_dim, cfg.kv_lora_rank,
                                batch=hl)
                attn = self.attention(a + "attn", [q, rot], stage, segments, heads=hl, kv_heads=1,
                                      head_dim=latent, v_head_dim=cfg.kv_lora_rank, latent_kv=True)
                o = self.linear(a + "kv_b_proj.uv", attn, stage, T, cfg.kv_lora_rank, cfg.v_head_dim, batch=hl)
                o = self.linear(a + "o_proj", [o], stage, T, hl * cfg.v_head_dim, H)
        else:
            d, kvl = cfg.head_dim, cfg.kv_heads // tp
            bias = cfg.qkv_bias
            q = self.linear(a + "q_proj", [h], stage, T, H, hl * d, bias=bias)
            k = self.linear(a + "k_proj", [h], stage, T, H, kvl * d, bias=bias)
            v = self.linear(a + "v_proj", [h], stage, T, H, kvl * d, bias=bias)
            deps = [q, k]
            if cfg.family != "gpt":
                deps = [self.add(Elementwise, a + "rotary", [q, k], stage, numel=T * (hl + kvl) * d,
                                 flops_per_element=ROTARY_FLOPS, dtype=self.dt)]
            attn = self.attention(a + "attn", [*deps, v], stage, segments, heads=hl, kv_heads=kvl,
                                  head_dim=d, window=cfg.sliding_window)
            o = self.linear(a + "o_proj", attn, stage, T, hl * d, H)
        o = self.row_parallel_out(a + "o_proj", o, stage, T, cfg.o_bias)
        return self.residual(p + "attn_residual", x, o, stage, T)

    def attention(self, name: str, deps, stage: int, segments: list[Segment], **dims) -> list[str]:
        """One attention op per segment (a chunked step has its prefill chunk and its decodes)."""
        k = self.k
        names = []
        for j, s in enumerate(segments):
            suffix = f".{j}" if len(segments) > 1 else ""
            names.append(self.add(Attention, name + suffix, deps, stage, batch=s.batch, q_len=s.q_len,
                                  kv_len=s.kv_len, shared_kv_len=s.shared, share_group=s.group,
                                  dtype=self.dt, kv_dtype=self.kvdt, kv_placement=k["kv_placement"],
                                  kv_fraction=k["kv_fraction"], fused=k["fused_attention"],
                                  page_size=k["kv_block"], **dims))
        return names

    def mlp_layer(self, i: int, x: str, stage: int, T: int, intermediate: int | None = None,
                  scope: str = "mlp", reduce: bool = True) -> str:
        cfg, H = self.cfg, self.cfg.hidden
        p = f"model.layers.{i}."
        m = p + scope + "."
        h = self.norm(p + "post_attention_layernorm", [x], stage, T, H) if scope == "mlp" else x
        Il = (intermediate or cfg.intermediate) // self.tp
        if cfg.family == "gpt":
            u = self.linear(m + "fc_in", [h], stage, T, H, Il, bias=True)
            act = self.add(Elementwise, m + "gelu", [u], stage, numel=T * Il, dtype=self.dt, **GELU)
            o = self.linear(m + "fc_out", [act], stage, T, Il, H)
        else:
            g = self.linear(m + "gate_proj", [h], stage, T, H, Il, bias=cfg.mlp_bias)
            u = self.linear(m + "up_proj", [h], stage, T, H, Il, bias=cfg.mlp_bias)
            act = self.add(Elementwise, m + "act", [g, u], stage, numel=T * Il, operands=2, dtype=self.dt,
                           **SWIGLU)
            o = self.linear(m + "down_proj", [act], stage, T, Il, H)
        if not reduce:
            return o
        o = self.row_parallel_out(m + ("fc_out" if cfg.family == "gpt" else "down_proj"), o, stage, T,
                                  cfg.mlp_bias)
        return self.residual(p + "mlp_residual", x, o, stage, T)

    def moe_layer(self, i: int, x: str, stage: int, T: int) -> str:
        cfg, H, ep, tp = self.cfg, self.cfg.hidden, self.ep, self.tp
        p = f"model.layers.{i}."
        if cfg.family == "moe":
            m, inter, names = p + "block_sparse_moe.", cfg.intermediate, ("w1", "w3", "w2")
        else:
            m, inter, names = p + "mlp.", cfg.moe_intermediate, ("gate_proj", "up_proj", "down_proj")
        ex = m + "experts."
        h = self.norm(p + "post_attention_layernorm", [x], stage, T, H)
        shard = tp if ep > 1 else 1       # ranks of the attention group that split its tokens for routing
        Tr = T / shard                    # tokens this rank routes (the whole batch when ep = 1)
        gate = self.linear(m + "gate", [h], stage, Tr, H, cfg.experts, quantized=False)
        route = self.add(Router, m + "router", [gate], stage, tokens=math.ceil(Tr), experts=cfg.experts,
                         top_k=cfg.top_k, dtype=self.dt)
        # expert rows on this rank (expected): every group's T * top_k rows over the ep ranks
        routed = T * cfg.top_k / shard
        local = cfg.experts // ep
        hit = max(1, math.ceil(experts_hit(T * self.groups, cfg.top_k, cfg.experts, local) - 1e-9))
        hit = min(hit, local)
        imb = self.k["moe_imbalance"] if ep > 1 else 1.0
        Il = inter // tp if ep == 1 else inter
        payload = Tr * cfg.top_k * H * self.act_bytes
        d = self.collective(m + "dispatch", [route], stage, "all_to_all", payload, "ep", ep)
        common = {"experts": hit, "experts_held": local, "top_k": cfg.top_k, "imbalance": imb}
        g = self.linear(ex + names[0], [d], stage, routed / hit, H, Il, **common)
        u = self.linear(ex + names[1], [d], stage, routed / hit, H, Il, **common)
        act = self.add(Elementwise, ex + "act", [g, u], stage, numel=math.ceil(routed * imb * Il),
                       operands=2, dtype=self.dt, **SWIGLU)
        o = self.linear(ex + names[2], [act], stage, routed / hit, Il, H, **common)
        o = self.collective(m + "combine", [o], stage, "all_to_all", payload, "ep", ep)
        if ep > 1:
            o = self.collective(m + "all_gather", [o], stage, "all_gather", T * H * self.act_bytes, "tp", tp)
        outs = [o]
        if cfg.shared_experts:
            s = self.mlp_layer(i, h, stage, T, intermediate=cfg.moe_intermediate * cfg.shared_experts,
                               scope="mlp.shared_experts", reduce=False)
            if ep > 1:
                s = self.collective(m + "shared_experts.all_reduce", [s], stage, "all_reduce",
                                    T * H * self.act_bytes, "tp", tp)
            outs.append(s)
            o = self.add(Elementwise, m + "shared_add", outs, stage, numel=T * H, operands=2, dtype=self.dt)
        if ep == 1:
            o = self.collective(m + "all_reduce", [o], stage, "all_reduce", T * H * self.act_bytes, "tp", tp)
        return self.residual(p + "mlp_residual", x, o, stage, T)

    def mamba_layer(self, i: int, x: str, stage: int, segments: list[Segment], T: int) -> str:
        cfg, H, dt = self.cfg, self.cfg.hidden, self.dt
        p = f"backbone.layers.{i}."
        mx = p + "mixer."
        D, N, R, K = cfg.d_inner, cfg.d_state, cfg.dt_rank, cfg.d_conv
        (seg,) = segments
        h = self.norm(p + "norm", [x], stage, T, H)
        xz = self.linear(mx + "in_proj", [h], stage, T, H, 2 * D)
        state = Tensor(f"{self.prefix}{mx}conv_state", (seg.batch, D, K - 1), dt, "state")
        prefill = seg.q_len == seg.kv_len
        conv = self.add(Elementwise, mx + "conv1d", [xz], stage, numel=T * D, flops_per_element=2.0 * K + 3,
                        special=True, dtype=dt,
                        inputs=[Tensor(f"{self.prefix}{mx}conv1d.in", (T, D), dt),
                                Tensor(f"{self.wprefix}{mx}conv1d.weight", (D, 1, K), dt, "weight"),
                                Tensor(f"{self.wprefix}{mx}conv1d.bias", (D,), dt, "weight"),
                                *([] if prefill else [state])],
                        outputs=[Tensor(f"{self.prefix}{mx}conv1d.out", (T, D), dt), state])
        xp = self.linear(mx + "x_proj", [conv], stage, T, D, R + 2 * N)
        delta = self.linear(mx + "dt_proj", [xp], stage, T, R, D, bias=True)
        scan = self.add(SelectiveScan, mx + "scan", [delta, conv], stage, batch=seg.batch, seq_len=seg.q_len,
                        d_inner=D, d_state=N, dtype=dt, initial_state=not prefill, param=mx.rstrip("."))
        gate = self.add(Elementwise, mx + "gate", [scan, xz], stage, numel=T * D, operands=2, dtype=dt, **SWIGLU)
        o = self.linear(mx + "out_proj", [gate], stage, T, D, H)
        return self.residual(p + "residual", x, o, stage, T)


def data_parallel_groups(tp: int, ep: int) -> int:
    """Attention groups of ``tp`` ranks that the ``ep`` expert ranks span (1 unless ep > tp)."""
    return ep // tp if ep > tp else 1


# -- validation against the model ------------------------------------------------------------------
def _check_parallel(cfg: ModelConfig, tp: int, pp: int, ep: int, what: str = "model") -> None:
    if pp > cfg.layers:
        raise InputError(f"pp={pp} exceeds the {cfg.layers} layers of {cfg.id}", path="pp")
    if cfg.family == "mamba":
        if tp > 1:
            raise InputError(f"tensor parallelism is not modelled for Mamba ({cfg.id}); use pp", path="tp")
        if ep > 1:
            raise InputError(f"{cfg.id} has no experts; ep must be 1", path="ep")
        return
    dims = {"num_attention_heads": cfg.heads}
    if cfg.family != "mla":
        dims["num_key_value_heads"] = cfg.kv_heads
    dims["intermediate_size"] = cfg.intermediate
    if cfg.family == "mla":
        dims["moe_intermediate_size"] = cfg.moe_intermediate
    bad = [f"{k}={v}" for k, v in dims.items() if v % tp]
    if bad:
        common = math.gcd(*dims.values())
        raise InputError(f"tp={tp} does not divide {', '.join(bad)} of {what} {cfg.id}: Megatron-style "
                         f"tensor parallelism gives each rank whole heads and an equal slice of the MLP; "
                         f"tp values that work: {', '.join(map(str, _divisors(common)))}", path="tp")
    if ep > 1:
        if not cfg.experts:
            raise InputError(f"{cfg.id} has no experts; ep must be 1", path="ep")
        if ep % tp:
            raise InputError(f"ep={ep} must be 1 or a multiple of tp={tp}: the experts are sharded over ep "
                             f"ranks that each run attention as one of ep/tp data-parallel groups of tp "
                             f"ranks (expert tensor parallelism, ep < tp, is not modelled)", path="ep")
        if cfg.experts % ep:
            raise InputError(f"ep={ep} does not divide the {cfg.experts} experts of {cfg.id}; ep values "
                             f"that work: {', '.join(map(str, _divisors(cfg.experts)))}", path="ep")


def _check_model(cfg: ModelConfig, opts: StepOptions) -> None:
    """The options' checks that need the model: parallelism that fits its shapes, knobs its
    family has no use for."""
    if opts.moe_imbalance is not None and not cfg.experts:
        raise InputError(f"moe_imbalance applies to mixture-of-experts models; {cfg.id} has no experts",
                         path="moe_imbalance")
    _check_parallel(cfg, opts.tp, opts.pp, opts.ep)
    groups = data_parallel_groups(opts.tp, opts.ep)
    if groups > 1 and opts.phase == "chunked":
        raise InputError(f"chunked prefill is modelled with ep <= tp (got ep={opts.ep}, tp={opts.tp}: "
                         f"{groups} attention groups would not share one chunk)", path="ep")
    if groups > 1 and opts.batch % (groups * opts.microbatches):
        raise InputError(f"batch ({opts.batch}) must be a multiple of the {groups} data-parallel attention "
                         f"groups (ep/tp = {opts.ep}/{opts.tp})"
                         + (f" times microbatches ({opts.microbatches})" if opts.microbatches > 1 else ""),
                         path="batch")
    if cfg.family == "mamba" and (opts.spec_tokens or opts.best_of > 1 or opts.phase == "chunked"):
        raise InputError(f"{cfg.id} (Mamba) supports prefill and plain decode only", path="phase")


# -- the step: segments per phase ---------------------------------------------------------------
@dataclass(frozen=True)
class StepPlan:
    """What one rank runs: ``segments`` of one micro-batch of one data-parallel attention group,
    ``logits_rows`` through the LM head; ``produced``: tokens the whole step yields (every group
    and micro-batch); ``longest``: the longest sequence it touches."""

    segments: list[Segment]
    logits_rows: int
    produced: float
    longest: int
    groups: int = 1


def plan_step(opts: StepOptions) -> StepPlan:
    """The segments of ``opts``'s phase (prefill, decode, chunked)."""
    groups = data_parallel_groups(opts.tp, opts.ep)
    mb = opts.batch // opts.microbatches // groups
    context, prompt_len = opts.effective("context"), opts.prompt_len
    if opts.phase == "prefill":
        return StepPlan([Segment(mb, prompt_len, prompt_len)], mb, float(opts.batch * opts.best_of),
                        prompt_len, groups)
    if opts.phase == "decode":
        q = opts.spec_tokens + 1
        shared = prompt_len if opts.best_of > 1 else 0
        produced = opts.batch * opts.best_of * expected_tokens(opts.spec_tokens, opts.effective("acceptance"))
        return StepPlan([Segment(mb * opts.best_of, q, context + q, shared, opts.best_of)],
                        mb * opts.best_of * q, produced, context + q, groups)
    chunk, start = opts.effective("chunk_size"), opts.chunk_start
    logits_rows = opts.batch + (1 if start + chunk == prompt_len else 0)   # a last chunk yields a token
    return StepPlan([Segment(1, chunk, start + chunk), Segment(opts.batch, 1, context + 1)], logits_rows,
                    float(logits_rows), max(prompt_len, context + 1), groups)


# -- what the graph says about itself -------------------------------------------------------------
def builder_knobs(opts: StepOptions) -> dict:
    """The options :class:`_Builder` reads, defaults filled in."""
    return {"tp": opts.tp, "pp": opts.pp, "ep": opts.ep, "dtype": opts.dtype,
            "weight_dtype": opts.effective("weight_dtype"), "kv_dtype": opts.effective("kv_dtype"),
            "group_size": opts.effective("group_size"), "kv_placement": opts.kv_placement,
            "kv_fraction": opts.kv_fraction, "fused_attention": opts.fused_attention,
            "kv_block": opts.kv_block, "moe_imbalance": float(opts.effective("moe_imbalance"))}


def _meta(cfg: ModelConfig, opts: StepOptions, plan: StepPlan) -> dict:
    kv_dtype = opts.effective("kv_dtype")
    return {
        "model": cfg.id, "family": cfg.family, "phase": opts.phase, "batch": opts.batch,
        "tokens": plan.produced,
        "tokens_processed": sum(s.batch * s.q_len for s in plan.segments) * opts.microbatches * plan.groups,
        "tp": opts.tp, "pp": opts.pp, "ep": opts.ep, "dp": plan.groups, "microbatches": opts.microbatches,
        "prompt_len": opts.prompt_len, "context": opts.effective("context") if opts.phase != "prefill" else None,
        "dtype": opts.dtype, "weight_dtype": opts.effective("weight_dtype"), "kv_dtype": kv_dtype,
        "kv_placement": opts.kv_placement, "spec_tokens": opts.spec_tokens,
        "acceptance": opts.effective("acceptance") if opts.spec_tokens else None,
        "best_of": opts.best_of, "kv_fraction": opts.kv_fraction, "warnings": [],
        "kv_bytes_per_token": cfg.kv_bytes_per_token(DTYPE_BYTES[kv_dtype]),
    }


def _warnings(cfg: ModelConfig, opts: StepOptions, plan: StepPlan, graph: Graph) -> list[str]:
    """What is legal but probably not what was meant."""
    out = []
    imbalance = opts.effective("moe_imbalance")
    if imbalance > 1 and opts.ep == 1:
        out.append(f"moe_imbalance {imbalance:g} has no effect with ep=1: every rank holds a slice of "
                   f"every expert, so the ranks' work is equal")
    if cfg.max_positions and plan.longest > cfg.max_positions:
        out.append(f"{cfg.id}: sequence length {plan.longest} exceeds max_position_embeddings "
                   f"{cfg.max_positions}")
    ragged = sorted({op.k for op in graph.ops if op.kind == "matmul" and op.group_size and op.k % op.group_size})
    if ragged:
        gs = opts.effective("group_size")
        out.append(f"group_size {gs} does not divide the input features {ragged} of some quantized GEMMs "
                   f"(per tensor-parallel rank); GPTQ/AWQ kernels refuse such shards; the scales are counted "
                   f"as one per {gs} weights")
    return out


# -- the draft model of speculative decoding --------------------------------------------------------
def _add_draft(graph: Graph, opts: StepOptions, knobs: dict, plan: StepPlan) -> str | None:
    """The draft model's ``spec_tokens`` one-token steps before the target verifies them; the
    name of the last draft op (the target waits for it), or None without a draft."""
    if opts.draft is None:
        return None
    dcfg = opts.draft if isinstance(opts.draft, ModelConfig) else load_config(opts.draft)
    _check_parallel(dcfg, opts.tp, 1, 1, "draft model")
    graph.meta["draft"] = dcfg.id
    mb, context, after = plan.segments[0].batch, opts.effective("context"), None
    for j in range(opts.spec_tokens):
        b = _Builder(dcfg, graph, {**knobs, "pp": 1, "ep": 1}, prefix=f"draft.step{j}.", wprefix="draft.")
        after = b.build([Segment(mb, 1, context + j + 1)], mb, after)
    return after


def step_options(options: StepOptions | str | None = None, **knobs) -> StepOptions:
    """A :class:`StepOptions` from what :func:`build_llm` was given: options, a phase name, and/or
    keyword knobs (which override the options' fields)."""
    if isinstance(options, str):
        if "phase" in knobs:
            raise InputError("phase given twice (positionally and as phase=)", path="phase")
        knobs["phase"] = options
        options = None
    if options is None:
        return StepOptions.from_kwargs(**knobs)
    if not isinstance(options, StepOptions):
        raise InputError(f"options must be a StepOptions or a phase name, got {options!r}", path="options")
    return options.replace(**knobs) if knobs else options


def build_llm(model: str | ModelConfig, options: StepOptions | str | None = None, **knobs) -> Graph:
    """The operator graph of one step of ``model`` (a bundled id, a config.json path or a config).

    ``build_llm(model, StepOptions(phase="decode", batch=8))``, ``build_llm(model, "decode", batch=8)``
    and ``build_llm(model, phase="decode", batch=8)`` are the same step; each knob is documented on
    :class:`~workloads.options.StepOptions`.

    Phases: ``prefill`` runs ``batch`` prompts of ``prompt_len`` tokens; ``decode`` runs ``batch``
    sequences that each have ``context`` tokens cached (default ``prompt_len``; 0: an empty cache)
    and adds one token each, or verifies ``spec_tokens`` drafted tokens (+1) each; ``chunked``
    (SARATHI) runs one prefill chunk of ``chunk_size`` tokens of a ``prompt_len`` prompt, starting
    at ``chunk_start``, together with ``batch`` decodes at ``context``.

    ``draft``: a draft model that proposes ``spec_tokens`` tokens one at a time before the target
    verifies them; ``acceptance``: the per-token acceptance rate (tokens produced per step follow
    :func:`expected_tokens`, default 0.8); without a draft the proposals are taken as free (n-gram or
    prompt lookup) and only the verification is modelled. ``moe_imbalance``: the busiest expert's
    load over the mean (expert parallelism only; default 1). ``best_of`` N: each prompt's N samples
    share its KV prefix (read once per step). ``kv_fraction``: sparse attention reads that fraction
    of the KV. ``kv_placement``: device, host or cxl. int4/int8 ``weight_dtype`` is group-quantized
    with ``group_size`` (default 128; linear layers of the blocks; embeddings, LM head, norms and
    router gates stay in ``dtype``). A knob that does not apply is an error, not ignored.
    """
    opts = step_options(options, **knobs)
    cfg = model if isinstance(model, ModelConfig) else load_config(model)
    _check_model(cfg, opts)
    plan = plan_step(opts)
    graph = Graph(f"{cfg.id}-{opts.phase}", meta=_meta(cfg, opts, plan))
    builder = builder_knobs(opts)
    after = _add_draft(graph, opts, builder, plan)
    _Builder(cfg, graph, builder).build(plan.segments, plan.logits_rows, after)
    graph.meta["warnings"] = _warnings(cfg, opts, plan, graph)
    return graph
