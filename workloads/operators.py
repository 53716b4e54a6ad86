"""Operators: units of work with exact FLOP counts and the tensors they read and write.

Every operator says what it computes (``flops()``: FLOPs per (engine class, dtype), engine class
in ``matrix`` / ``vector`` / ``special``) and which bytes it touches (``inputs`` read, ``outputs``
written, each a :class:`~workloads.tensors.Tensor` with role and placement). Nothing here knows a
device or a time; the cost model in ``roofline/`` turns these into demands.

Counting conventions (one multiply-add = 2 FLOPs throughout):

* GEMM of (m x k) by (k x n): ``2 m n k`` matrix FLOPs.
* exp, erf, tanh, rsqrt, the sigmoid's exponential: 1 ``special`` FLOP per evaluation; the
  surrounding adds/multiplies/divides are ``vector`` FLOPs.
* softmax: per score 1 exp (special) + 4 vector (max, subtract, sum, divide); attention adds 1
  vector FLOP per score for the 1/sqrt(d) scaling.
* Group-quantized int4/int8 weights: 2 vector FLOPs per weight element to dequantize (subtract the
  zero-point, multiply by the scale); another narrower weight format (e.g. fp8 weights with bf16
  compute) costs 1 vector FLOP per weight element to convert.

Users add kinds by subclassing :class:`Operator` and decorating with :func:`register_operator`.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import ClassVar

from hwmodels import limits
from hwmodels.dtypes import DTYPE_BYTES, normalize_dtype
from hwmodels.errors import InputError, did_you_mean
from hwmodels.registry import Registry
from hwmodels.units import parse_quantity

from .tensors import PLACEMENTS, QUANTIZED_DTYPES, Tensor

ENGINE_CLASSES = ("matrix", "vector", "special")
DEQUANT_FLOPS_PER_WEIGHT = 2.0
CONVERT_FLOPS_PER_WEIGHT = 1.0
SOFTMAX_VECTOR_FLOPS = 4.0
ATTENTION_SCALE_FLOPS = 1.0
# Raw byte buffers (collectives, copies) are counted as 1-byte elements.
RAW = "int8"

OPERATORS: Registry[type[Operator]] = Registry("operator kind")


def register_operator(cls: type[Operator]) -> type[Operator]:
    """Class decorator: make ``cls`` available under ``cls.kind`` in :data:`OPERATORS` (its help:
    the first line of the class docstring)."""
    if not cls.kind:
        raise ValueError(f"{cls.__name__} has no kind")
    return OPERATORS.register(cls.kind, cls)


@dataclass(kw_only=True)
class Operator:
    """Base of all operators.

    ``inputs`` are the tensors read, ``outputs`` the tensors written; when both are left empty
    the operator derives them from its fields (:meth:`default_tensors`). ``stage`` is the
    pipeline stage the operator runs on. ``param_prefix`` names the operator's parameters
    (``<prefix>.weight``, ``<prefix>.bias``; default: the operator's name), so that two operators
    sharing a weight (tied embeddings, a draft model's steps) count it once.
    """

    kind: ClassVar[str] = ""
    name: str
    inputs: list[Tensor] = field(default_factory=list)
    outputs: list[Tensor] = field(default_factory=list)
    stage: int = 0
    param_prefix: str | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise InputError("an operator needs a non-empty name", path="name")
        if not isinstance(self.stage, int) or isinstance(self.stage, bool) or self.stage < 0:
            raise InputError(f"stage must be a non-negative integer, got {self.stage!r}", path="stage")
        limits.check("stages", self.stage + 1, path="stage")
        self.check()
        if not self.inputs and not self.outputs:
            self.inputs, self.outputs = self.default_tensors()

    # -- validation helpers -------------------------------------------------------------------
    def _require(self, *names: str, positive: bool = True, integer: bool = True) -> None:
        for attr in names:
            value = getattr(self, attr)
            ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
            if isinstance(value, bool) or not ok_type or (isinstance(value, float) and not math.isfinite(value)):
                kind = "an integer" if integer else "a number"
                raise InputError(f"must be {kind}, got {value!r}", path=attr)
            if value < 0 or (positive and value == 0):
                raise InputError(f"must be {'positive' if positive else 'non-negative'}, got {value}",
                                 path=attr)
            limits.check(attr if attr in limits.LIMITS else "dimension", value, path=attr)

    def _dtype(self, *names: str) -> None:
        for attr in names:
            value = getattr(self, attr)
            if value is not None:
                setattr(self, attr, normalize_dtype(value, path=attr))

    def _choice(self, attr: str, choices) -> None:
        value = getattr(self, attr)
        if value not in choices:
            names = [str(c) for c in choices]
            raise InputError(f"'{value}' is not one of: {', '.join(names)}", path=attr,
                             suggestion=did_you_mean(str(value), names))

    def _bytes(self, *names: str) -> None:
        """Sizes in bytes: a plain number, or a string with a unit as YAML hardware takes it
        ("1 GB", "64 MiB"), converted to bytes."""
        for attr in names:
            value = getattr(self, attr)
            if isinstance(value, str):
                setattr(self, attr, parse_quantity(value, "capacity", path=attr))

    def param(self, suffix: str) -> str:
        """Name of this operator's parameter ``suffix`` (``weight``, ``bias``, ...)."""
        return f"{self.param_prefix or self.name}.{suffix}"

    # -- what subclasses define ---------------------------------------------------------------
    def check(self) -> None:
        """Validate fields (raise InputError naming the field)."""

    def default_tensors(self) -> tuple[list[Tensor], list[Tensor]]:
        """The tensors read and written, derived from the fields."""
        return [], []

    def flops(self) -> dict[tuple[str, str], float]:
        """FLOPs per (engine class, dtype)."""
        return {}

    def param_counts(self) -> dict[str, float]:
        """Parameters this operator owns on this device: name -> element count."""
        return {t.name: t.numel for t in self.inputs if t.role == "weight"}

    def active_param_counts(self) -> dict[str, float]:
        """Parameters used per token (differs from :meth:`param_counts` for MoE experts)."""
        return self.param_counts()

    def cache_bytes(self) -> dict[str, float]:
        """Bytes of per-sequence cache held after this step, by role (``kv`` or ``state``): by
        default the recurrent state tensors the operator writes (e.g. a causal conv's window)."""
        state = sum(t.bytes for t in self.outputs if t.role == "state")
        return {"state": state} if state else {}

    # -- derived -------------------------------------------------------------------------------
    @property
    def total_flops(self) -> float:
        return sum(self.flops().values())

    def bytes_by_role(self) -> dict[str, float]:
        """Bytes read plus written, by tensor role."""
        out: dict[str, float] = defaultdict(float)
        for t in self.inputs:
            out[t.role] += t.bytes
        for t in self.outputs:
            out[t.role] += t.bytes
        return dict(out)

    @property
    def bytes_total(self) -> float:
        return sum(t.bytes for t in self.inputs) + sum(t.bytes for t in self.outputs)

    def fields(self) -> dict:
        """The kind-specific fields (everything but tensors), for reports and JSON."""
        skip = {"inputs", "outputs"}
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in skip}

    def to_dict(self) -> dict:
        flops = {f"{e}:{d}": v for (e, d), v in self.flops().items()}
        return {"kind": self.kind, **self.fields(), "flops": flops,
                "inputs": [_tensor_dict(t) for t in self.inputs],
                "outputs": [_tensor_dict(t) for t in self.outputs]}


def _tensor_dict(t: Tensor) -> dict:
    return {"name": t.name, "shape": list(t.shape), "dtype": t.dtype, "role": t.role,
            "placement": t.placement, "group_size": t.group_size, "bytes": t.bytes}


def _add(out: dict, engine: str, dtype: str, value: float) -> None:
    if value:
        out[(engine, dtype)] = out.get((engine, dtype), 0.0) + float(value)


# ------------------------------------------------------------------------------------------------
@register_operator
@dataclass(kw_only=True)
class MatMul(Operator):
    """(batch x) an (m x k) by (k x n) product; the (k x n) operand is a weight unless ``b_role`` says.

    ``weight_dtype`` int4/int8 with ``group_size``: group-quantized weights (scale and zero-point
    bytes on the weight tensor, dequantization vector FLOPs). MoE expert GEMMs: ``experts`` is the
    number of experts whose weights this GEMM reads (those that received tokens), ``m`` the mean
    rows per such expert (may be fractional), ``experts_held`` the experts resident on the device
    (for parameter counts), ``top_k`` experts per token (for active parameters) and ``imbalance``
    the load of the most loaded expert group over the mean: with expert parallelism the step waits
    for the busiest device, so the operator's rows are ``m x imbalance``. ``bias`` adds a bias of n.
    """

    kind: ClassVar[str] = "matmul"
    m: float
    n: int
    k: int
    batch: int = 1
    dtype: str = "bf16"
    weight_dtype: str | None = None
    group_size: int | None = None
    experts: int = 1
    experts_held: int | None = None
    top_k: int | None = None
    imbalance: float = 1.0
    bias: bool = False
    b_role: str = "weight"
    weight_placement: str = "device"

    def check(self):
        self._require("n", "k", "batch", "experts")
        self._require("m", "imbalance", integer=False)
        self._dtype("dtype", "weight_dtype")
        if self.weight_dtype is None:
            self.weight_dtype = self.dtype
        if self.experts_held is None:
            self.experts_held = self.experts
        self._require("experts_held")
        if self.experts_held < self.experts:
            raise InputError(f"experts_held ({self.experts_held}) is less than experts read ({self.experts})",
                             path="experts_held")
        if self.imbalance < 1:
            raise InputError(f"imbalance is max/mean load and must be >= 1, got {self.imbalance}",
                             path="imbalance")
        self._choice("b_role", ("weight", "activation", "kv"))
        self._choice("weight_placement", PLACEMENTS)
        if self.group_size is not None:
            self._require("group_size")
            if self.weight_dtype not in QUANTIZED_DTYPES:
                raise InputError(f"group_size needs an int4/int8 weight_dtype, not {self.weight_dtype}",
                                 path="group_size")

    @property
    def rows(self) -> float:
        """Rows of the activation operand per batch entry (all experts, imbalance included)."""
        return self.m * self.experts * self.imbalance

    @property
    def weight_copies(self) -> int:
        """(k x n) operands read: one per expert read for an expert GEMM, else one per batch entry."""
        return self.experts if self.experts > 1 else self.batch

    @property
    def weight_elements(self) -> int:
        """Elements of the (k x n) operand read."""
        return self.weight_copies * self.k * self.n

    def default_tensors(self):
        rows = max(1, round(self.rows))
        a = Tensor(f"{self.name}.in", (self.batch, rows, self.k), self.dtype)
        if self.b_role == "weight":
            b = Tensor(self.param("weight"), (self.weight_copies, self.k, self.n), self.weight_dtype, "weight",
                       self.weight_placement, self.group_size)
        else:
            b = Tensor(f"{self.name}.b", (self.batch, self.k, self.n), self.dtype, self.b_role)
        ins = [a, b]
        if self.bias:
            ins.append(Tensor(self.param("bias"), (self.experts, self.n), self.dtype, "weight",
                              self.weight_placement))
        return ins, [Tensor(f"{self.name}.out", (self.batch, rows, self.n), self.dtype)]

    def flops(self):
        out: dict = {}
        _add(out, "matrix", self.dtype, 2.0 * self.batch * self.rows * self.n * self.k)
        if self.bias:
            _add(out, "vector", self.dtype, self.batch * self.rows * self.n)
        if self.b_role == "weight" and self.weight_dtype != self.dtype:
            per = (DEQUANT_FLOPS_PER_WEIGHT if self.weight_dtype in QUANTIZED_DTYPES and self.group_size
                   else CONVERT_FLOPS_PER_WEIGHT)
            _add(out, "vector", self.dtype, per * self.weight_elements)
        return out

    def _weights(self, experts: int) -> dict[str, float]:
        if self.b_role != "weight":
            return {}
        copies = experts if self.experts_held > 1 else self.batch
        out = {self.param("weight"): copies * self.k * self.n}
        if self.bias:
            out[self.param("bias")] = experts * self.n
        return out

    def param_counts(self):
        return self._weights(self.experts_held)

    def active_param_counts(self):
        return self._weights(min(self.top_k or self.experts_held, self.experts_held))


# ------------------------------------------------------------------------------------------------
def attended_keys(q_len: int, kv_len: int, causal: bool, window: int | None) -> float:
    """Sum over the ``q_len`` queries of the keys each attends to.

    The queries are the last ``q_len`` positions of a sequence of ``kv_len``. Causal: the query
    at position p (0-based) sees keys 0..p, so causal prefill (q_len == kv_len) counts the
    unmasked half including the diagonal, q(q+1)/2 per head. ``window`` w: each query sees at
    most its w most recent keys (itself included).
    """
    if not causal:
        return float(q_len * (min(kv_len, window) if window else kv_len))
    lo, hi = kv_len - q_len + 1, kv_len  # keys visible to the first and last query

    def tri(a: int, b: int) -> float:  # sum of a..b
        return (a + b) * (b - a + 1) / 2 if b >= a else 0.0

    if not window or window >= hi:
        return tri(lo, hi)
    if window <= lo:
        return float(q_len * window)
    return tri(lo, window - 1) + (hi - window + 1) * window


@register_operator
@dataclass(kw_only=True)
class Attention(Operator):
    """Scaled dot-product attention of ``q_len`` new queries against ``kv_len`` keys per sequence.

    MHA/GQA/MQA by ``kv_heads``; MLA in its weight-absorbed form with ``latent_kv``: K and V are
    one cached latent of ``head_dim`` per token (``v_head_dim`` of it doubles as V), kv_heads 1.
    MLA in its decompressed form (prefill) sets ``cache_dim``: attention runs on per-head K/V
    decompressed from the latent, and the cache holds (reads and appends) that latent of
    ``cache_dim`` elements per token instead of K and V.
    FLOPs: QK^T and PV on the matrix engine, 2 x scores x head_dim and 2 x scores x v_head_dim,
    where scores counts only what is computed: causal attention counts the unmasked half
    (see :func:`attended_keys`); a sliding ``window`` limits each query to its w most recent keys;
    ``kv_fraction`` (sparse attention) attends to and reads that fraction of the keys. Unfused
    attention (``fused=False``) computes the full q_len x kv_len score matrix (the mask is applied
    afterwards) and writes and re-reads the scores and the probabilities: its GEMMs write the scores
    and read the probabilities in ``dtype``, its softmax reads the scores and writes the
    probabilities (and does its arithmetic) in ``softmax_dtype`` (default ``dtype``; ggml: fp32,
    with conversions between as separate kernels) and, with ``mask_dtype``, reads an additive
    q_len x kv_len mask of each sequence in that dtype, the same for every head (ggml_soft_max_ext).
    ``kernel`` names the fused-attention kernel family that runs it (a runtime's choice, e.g.
    FlashAttention-2 under vLLM 0.6 on a Hopper GPU; default: the device's).

    Bytes: the new K/V (inputs, activations) are appended to the cache (outputs, role kv); the
    cached past keys that the queries need are read from ``kv_placement``. Best-of-N: groups of
    ``share_group`` sequences share the first ``shared_kv_len`` cached tokens, read once per group.
    """

    kind: ClassVar[str] = "attention"
    batch: int
    heads: int
    kv_heads: int
    q_len: int
    kv_len: int
    head_dim: int
    v_head_dim: int | None = None
    causal: bool = True
    window: int | None = None
    kv_fraction: float = 1.0
    fused: bool = True
    dtype: str = "bf16"
    kv_dtype: str | None = None
    kv_placement: str = "device"
    shared_kv_len: int = 0
    share_group: int = 1
    latent_kv: bool = False
    cache_dim: int | None = None
    page_size: int | None = None
    softmax_dtype: str | None = None
    mask_dtype: str | None = None
    kernel: str | None = None

    def check(self):
        self._require("batch", "heads", "kv_heads", "q_len", "kv_len", "head_dim", "share_group")
        if self.kernel is not None and not self.fused:
            raise InputError("kernel names a fused-attention kernel family; unfused attention (fused: false) "
                             "runs none", path="kernel")
        if self.page_size is not None:
            self._require("page_size")
        if self.cache_dim is not None:
            self._require("cache_dim")
            if self.latent_kv:
                raise InputError("cache_dim (decompressed MLA) and latent_kv (absorbed MLA) exclude each "
                                 "other", path="cache_dim")
        self._require("shared_kv_len", positive=False)
        self._dtype("dtype", "kv_dtype", "softmax_dtype", "mask_dtype")
        if self.kv_dtype is None:
            self.kv_dtype = self.dtype
        if self.fused and (self.softmax_dtype or self.mask_dtype):
            raise InputError("softmax_dtype and mask_dtype describe unfused attention (fused: false)",
                             path="softmax_dtype" if self.softmax_dtype else "mask_dtype")
        if self.v_head_dim is None:
            self.v_head_dim = self.head_dim
        self._require("v_head_dim")
        if self.window is not None:
            self._require("window")
        self._require("kv_fraction", integer=False)
        if self.kv_fraction > 1:
            raise InputError(f"kv_fraction is a fraction of the KV in (0, 1], got {self.kv_fraction}",
                             path="kv_fraction")
        if self.heads % self.kv_heads:
            raise InputError(f"heads ({self.heads}) must be a multiple of kv_heads ({self.kv_heads})",
                             path="kv_heads")
        if self.q_len > self.kv_len:
            raise InputError(f"q_len ({self.q_len}) exceeds kv_len ({self.kv_len}); kv_len counts the "
                             "new tokens too", path="q_len")
        if self.batch % self.share_group:
            raise InputError(f"batch ({self.batch}) must be a multiple of share_group ({self.share_group})",
                             path="share_group")
        self._choice("kv_placement", PLACEMENTS)

    @property
    def scores(self) -> float:
        """Query-key scores computed (all heads, all sequences)."""
        if self.fused:
            per_head = attended_keys(self.q_len, self.kv_len, self.causal, self.window)
        else:
            per_head = float(self.q_len * self.kv_len)
        return self.batch * self.heads * per_head * self.kv_fraction

    def _past_read(self) -> tuple[float, float]:
        """(cached tokens read per sequence, of which in the shared prefix)."""
        past = self.kv_len - self.q_len
        need = min(past, self.window - 1) if self.window else past
        overlap = max(0, min(self.shared_kv_len, past) - (past - need))
        return need * self.kv_fraction, overlap * self.kv_fraction

    def default_tensors(self):
        b, q, d, dv, h, hk = self.batch, self.q_len, self.head_dim, self.v_head_dim, self.heads, self.kv_heads
        ins = [Tensor(f"{self.name}.q", (b, q, h, d), self.dtype)]
        parts = [("kv", d)] if self.latent_kv else [("k", d), ("v", dv)]
        outs = [Tensor(f"{self.name}.o", (b, q, h, dv), self.dtype)]
        need, overlap = self._past_read()
        groups = b // self.share_group
        if self.cache_dim:  # decompressed K/V come in as activations; the cache holds the latent
            ins += [Tensor(f"{self.name}.{part}_new", (b, q, hk, dim), self.dtype) for part, dim in parts]
            parts, hk = [("latent", self.cache_dim)], 1
        for part, dim in parts:
            if not self.cache_dim:
                ins.append(Tensor(f"{self.name}.{part}_new", (b, q, hk, dim), self.dtype))
            if overlap:
                ins.append(Tensor(f"{self.name}.{part}_cache_shared", (groups, round(overlap), hk, dim),
                                  self.kv_dtype, "kv", self.kv_placement))
            if need - overlap > 0:
                ins.append(Tensor(f"{self.name}.{part}_cache", (b, round(need - overlap), hk, dim),
                                  self.kv_dtype, "kv", self.kv_placement))
            outs.append(Tensor(f"{self.name}.{part}_append", (b, q, hk, dim), self.kv_dtype, "kv",
                               self.kv_placement))
        if not self.fused:
            keys = round(self.kv_len * self.kv_fraction)
            soft = self.softmax_dtype or self.dtype
            # (written, read back): the QK GEMM writes the scores the softmax reads, the softmax
            # writes the probabilities the PV GEMM reads
            for inter, written, read in (("scores", self.dtype, soft), ("probs", soft, self.dtype)):
                outs.append(Tensor(f"{self.name}.{inter}", (b, h, q, keys), written))
                ins.append(Tensor(f"{self.name}.{inter}", (b, h, q, keys), read))
            if self.mask_dtype:
                ins.append(Tensor(self.mask_name, (b, q, keys), self.mask_dtype))
        return ins, outs

    @property
    def mask_name(self) -> str:
        """The name of the unfused softmax's mask tensor (an input with ``mask_dtype``)."""
        return f"{self.name}.mask"

    def flops(self):
        s = self.scores
        out: dict = {}
        _add(out, "matrix", self.dtype, 2.0 * s * (self.head_dim + self.v_head_dim))
        soft = self.softmax_dtype or self.dtype
        _add(out, "vector", soft, s * (SOFTMAX_VECTOR_FLOPS + ATTENTION_SCALE_FLOPS))
        _add(out, "special", soft, s)
        return out

    def cache_bytes(self):
        held = min(self.kv_len, self.window) if self.window else self.kv_len
        shared = min(self.shared_kv_len, held)
        tokens = self.batch * held - (self.batch - self.batch // self.share_group) * shared
        if self.cache_dim:
            per_token = self.cache_dim
        else:
            per_token = self.kv_heads * (self.head_dim if self.latent_kv else self.head_dim + self.v_head_dim)
        return {"kv": tokens * per_token * DTYPE_BYTES[self.kv_dtype]}


# ------------------------------------------------------------------------------------------------
@dataclass(kw_only=True)
class _RowOp(Operator):
    """An operator over a (rows x cols) activation."""

    rows: int
    cols: int
    dtype: str = "bf16"

    def check(self):
        self._require("rows", "cols")
        self._dtype("dtype")

    def _io(self, *weights: str):
        ins = [Tensor(f"{self.name}.in", (self.rows, self.cols), self.dtype)]
        ins += [Tensor(self.param(w), (self.cols,), self.dtype, "weight") for w in weights]
        return ins, [Tensor(f"{self.name}.out", (self.rows, self.cols), self.dtype)]


@register_operator
@dataclass(kw_only=True)
class Softmax(_RowOp):
    """Row-wise softmax: per element 1 exp (special) and 4 vector FLOPs (max, subtract, sum, divide)."""

    kind: ClassVar[str] = "softmax"

    def default_tensors(self):
        return self._io()

    def flops(self):
        n = self.rows * self.cols
        return {("vector", self.dtype): SOFTMAX_VECTOR_FLOPS * n, ("special", self.dtype): float(n)}


@register_operator
@dataclass(kw_only=True)
class LayerNorm(_RowOp):
    """LayerNorm over ``cols``: per element mean, subtract, square, sum, scale, gamma, beta
    (7 vector FLOPs; 6 without ``bias``), and one rsqrt per row (special)."""

    kind: ClassVar[str] = "layernorm"
    bias: bool = True

    def default_tensors(self):
        return self._io("weight", "bias") if self.bias else self._io("weight")

    def flops(self):
        per = 7.0 if self.bias else 6.0
        return {("vector", self.dtype): per * self.rows * self.cols, ("special", self.dtype): float(self.rows)}


@register_operator
@dataclass(kw_only=True)
class RMSNorm(_RowOp):
    """RMSNorm over ``cols``: per element square, sum, scale, gamma (4 vector FLOPs); one rsqrt
    per row (special)."""

    kind: ClassVar[str] = "rmsnorm"

    def default_tensors(self):
        return self._io("weight")

    def flops(self):
        return {("vector", self.dtype): 4.0 * self.rows * self.cols, ("special", self.dtype): float(self.rows)}


@register_operator
@dataclass(kw_only=True)
class Elementwise(Operator):
    """An elementwise function over ``numel`` elements of ``operands`` inputs.

    ``flops_per_element`` vector FLOPs per element; with ``special`` the function also evaluates
    ``special_per_element`` special functions (exp, erf, tanh) per element on the SFU.
    Examples: add 1 vector; SwiGLU silu(g)*u 4 vector + 1 special; tanh-GELU 8 vector + 1
    special; rotary embedding 3 vector.
    """

    kind: ClassVar[str] = "elementwise"
    numel: int
    flops_per_element: float = 1.0
    special: bool = False
    special_per_element: float = 1.0
    operands: int = 1
    dtype: str = "bf16"

    def check(self):
        self._require("numel", "operands")
        self._require("flops_per_element", "special_per_element", positive=False, integer=False)
        self._dtype("dtype")

    def default_tensors(self):
        ins = [Tensor(f"{self.name}.in{i}", (self.numel,), self.dtype) for i in range(self.operands)]
        return ins, [Tensor(f"{self.name}.out", (self.numel,), self.dtype)]

    def flops(self):
        out: dict = {}
        _add(out, "vector", self.dtype, self.flops_per_element * self.numel)
        if self.special:
            _add(out, "special", self.dtype, self.special_per_element * self.numel)
        return out


@register_operator
@dataclass(kw_only=True)
class Embedding(Operator):
    """Lookup of ``tokens`` rows of a (vocab x hidden) table: reads only the rows it gathers, no FLOPs.

    ``vocab`` is the rows held on this device (a vocab-parallel shard under tensor parallelism).
    """

    kind: ClassVar[str] = "embedding"
    tokens: int
    hidden: int
    vocab: int
    dtype: str = "bf16"

    def check(self):
        self._require("tokens", "hidden", "vocab")
        self._dtype("dtype")

    def default_tensors(self):
        rows = Tensor(self.param("weight"), (min(self.tokens, self.vocab), self.hidden), self.dtype, "weight")
        return [rows], [Tensor(f"{self.name}.out", (self.tokens, self.hidden), self.dtype)]

    def param_counts(self):
        return {self.param("weight"): self.vocab * self.hidden}


def conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output extent of a convolution or pooling window."""
    return (size + 2 * padding - kernel) // stride + 1


@dataclass(kw_only=True)
class _Spatial(Operator):
    batch: int
    in_channels: int
    out_channels: int | None = None
    height: int
    width: int
    kernel: int
    stride: int | None = None
    padding: int = 0
    dtype: str = "bf16"

    def check(self):
        if self.out_channels is None:
            self.out_channels = self.in_channels
        self._require("batch", "in_channels", "out_channels", "height", "width", "kernel")
        self._require("padding", positive=False)
        if self.stride is not None:
            self._require("stride")
        self._dtype("dtype")
        if self.out_h <= 0 or self.out_w <= 0:
            raise InputError(f"kernel {self.kernel} does not fit a {self.height}x{self.width} input "
                             f"with padding {self.padding}", path="kernel")

    @property
    def out_h(self) -> int:
        return conv_out(self.height, self.kernel, self.stride or 1, self.padding)

    @property
    def out_w(self) -> int:
        return conv_out(self.width, self.kernel, self.stride or 1, self.padding)

    @property
    def out_elements(self) -> int:
        """Elements of the output (batch x out_channels x out_h x out_w)."""
        return self.batch * self.out_channels * self.out_h * self.out_w

    def _io(self):
        x = Tensor(f"{self.name}.in", (self.batch, self.in_channels, self.height, self.width), self.dtype)
        y = Tensor(f"{self.name}.out", (self.batch, self.out_channels, self.out_h, self.out_w), self.dtype)
        return x, y


@register_operator
@dataclass(kw_only=True)
class Conv2d(_Spatial):
    """2-D convolution: 2 x batch x out_c x out_h x out_w x (in_c / groups) x kernel^2 matrix FLOPs
    (implicit GEMM), plus one vector FLOP per output element for the bias."""

    kind: ClassVar[str] = "conv2d"
    groups: int = 1
    bias: bool = False

    def check(self):
        super().check()
        self.stride = self.stride or 1
        self._require("groups")
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise InputError(f"groups ({self.groups}) must divide in_channels ({self.in_channels}) and "
                             f"out_channels ({self.out_channels})", path="groups")

    def default_tensors(self):
        x, y = self._io()
        w = Tensor(self.param("weight"), (self.out_channels, self.in_channels // self.groups,
                                          self.kernel, self.kernel), self.dtype, "weight")
        ins = [x, w]
        if self.bias:
            ins.append(Tensor(self.param("bias"), (self.out_channels,), self.dtype, "weight"))
        return ins, [y]

    def flops(self):
        outputs = self.out_elements
        out: dict = {}
        _add(out, "matrix", self.dtype, 2.0 * outputs * self.in_channels // self.groups * self.kernel ** 2)
        if self.bias:
            _add(out, "vector", self.dtype, outputs)
        return out


@register_operator
@dataclass(kw_only=True)
class Pool(_Spatial):
    """Max or average pooling: kernel^2 vector FLOPs (compare or add) per output element; stride
    defaults to the kernel. A global pool has kernel = height = width."""

    kind: ClassVar[str] = "pool"
    mode: str = "max"

    def check(self):
        self.stride = self.stride or self.kernel
        super().check()
        self._choice("mode", ("max", "avg"))
        if self.out_channels != self.in_channels:
            raise InputError("pooling keeps the channel count: out_channels must equal in_channels",
                             path="out_channels")

    def default_tensors(self):
        x, y = self._io()
        return [x], [y]

    def flops(self):
        return {("vector", self.dtype): float(self.out_elements * self.kernel ** 2)}


@register_operator
@dataclass(kw_only=True)
class SelectiveScan(Operator):
    """Mamba's selective scan over ``seq_len`` steps of a (d_inner x d_state) state per sequence.

    Per (token, channel, state) element: exp(delta*A) (1 special + 1 vector), delta*B*u (2),
    h = dA*h + dBu (2), y += C*h (2): 7 vector + 1 special. Per (token, channel): softplus of
    delta (2 vector + 1 special) and the D*u skip (2 vector). Reads the recurrent state unless
    ``initial_state`` is False (a prefill from scratch), and writes it back.
    """

    kind: ClassVar[str] = "selective_scan"
    batch: int
    seq_len: int
    d_inner: int
    d_state: int
    dtype: str = "bf16"
    state_dtype: str | None = None
    initial_state: bool = True

    def check(self):
        self._require("batch", "seq_len", "d_inner", "d_state")
        self._dtype("dtype", "state_dtype")
        if self.state_dtype is None:
            self.state_dtype = self.dtype

    def default_tensors(self):
        b, L, d, n = self.batch, self.seq_len, self.d_inner, self.d_state
        ins = [Tensor(f"{self.name}.u", (b, L, d), self.dtype),
               Tensor(f"{self.name}.delta", (b, L, d), self.dtype),
               Tensor(f"{self.name}.B", (b, L, n), self.dtype),
               Tensor(f"{self.name}.C", (b, L, n), self.dtype),
               Tensor(self.param("A_log"), (d, n), self.dtype, "weight"),
               Tensor(self.param("D"), (d,), self.dtype, "weight")]
        state = Tensor(f"{self.name}.ssm_state", (b, d, n), self.state_dtype, "state")
        if self.initial_state:
            ins.append(state)
        return ins, [Tensor(f"{self.name}.y", (b, L, d), self.dtype), state]

    def flops(self):
        bl_d = self.batch * self.seq_len * self.d_inner
        return {("vector", self.dtype): 7.0 * bl_d * self.d_state + 4.0 * bl_d,
                ("special", self.dtype): float(bl_d * self.d_state + bl_d)}

    def cache_bytes(self):
        return {"state": self.batch * self.d_inner * self.d_state * DTYPE_BYTES[self.state_dtype]}


@register_operator
@dataclass(kw_only=True)
class Router(Operator):
    """MoE routing of ``tokens`` over ``experts``: softmax of the gate logits (4 vector + 1 special
    per logit), top-k selection (k compares per logit) and renormalization (2 per selected).
    Outputs the routing weights and the expert indices (4-byte integers, stored as fp32-sized)."""

    kind: ClassVar[str] = "router"
    tokens: int
    experts: int
    top_k: int
    dtype: str = "bf16"

    def check(self):
        self._require("tokens", "experts", "top_k")
        self._dtype("dtype")
        if self.top_k > self.experts:
            raise InputError(f"top_k ({self.top_k}) exceeds experts ({self.experts})", path="top_k")

    def default_tensors(self):
        logits = Tensor(f"{self.name}.logits", (self.tokens, self.experts), self.dtype)
        return [logits], [Tensor(f"{self.name}.weights", (self.tokens, self.top_k), self.dtype),
                          Tensor(f"{self.name}.indices", (self.tokens, self.top_k), "fp32")]

    def flops(self):
        logits = self.tokens * self.experts
        vec = (SOFTMAX_VECTOR_FLOPS + self.top_k) * logits + 2.0 * self.tokens * self.top_k
        return {("vector", self.dtype): vec, ("special", self.dtype): float(logits)}


COLLECTIVES = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "send_recv")
GROUPS = ("tp", "ep", "pp", "dp")


@register_operator
@dataclass(kw_only=True)
class Collective(Operator):
    """A collective over ``group_size`` ranks of ``group``; ``payload_bytes`` as nccl-tests' "size".

    all_reduce: the buffer each rank contributes and receives; all_gather: the gathered output
    (each rank contributes payload/group_size); reduce_scatter: the input (each rank keeps
    payload/group_size); all_to_all: each rank's send buffer; send_recv: the bytes sent from this
    ``stage`` to ``peer_stage``. Reductions cost (n-1)/n x elements vector FLOPs per rank (ring).
    """

    kind: ClassVar[str] = "collective"
    collective: str
    payload_bytes: float
    group: str = "tp"
    group_size: int = 2
    dtype: str = "bf16"
    peer_stage: int | None = None

    def check(self):
        self._choice("collective", COLLECTIVES)
        self._choice("group", GROUPS)
        self._bytes("payload_bytes")
        self._require("payload_bytes", integer=False)
        self._require("group_size")
        limits.check("devices", self.group_size, path="group_size")   # one rank per device
        self._dtype("dtype")
        if self.group_size < 2:
            raise InputError("a collective needs a group of at least 2 ranks", path="group_size")
        if self.collective == "send_recv" and self.peer_stage is None:
            raise InputError("send_recv needs peer_stage (the receiving pipeline stage)", path="peer_stage")

    def default_tensors(self):
        full = math.ceil(self.payload_bytes)
        part = math.ceil(self.payload_bytes / self.group_size)
        sizes = {"all_gather": (part, full), "reduce_scatter": (full, part)}.get(self.collective, (full, full))
        return ([Tensor(f"{self.name}.send", (sizes[0],), RAW)],
                [Tensor(f"{self.name}.recv", (sizes[1],), RAW)])

    def flops(self):
        if self.collective not in ("all_reduce", "reduce_scatter"):
            return {}
        n = self.group_size
        elements = self.payload_bytes / DTYPE_BYTES[self.dtype]
        return {("vector", self.dtype): elements * (n - 1) / n}


@register_operator
@dataclass(kw_only=True)
class MemCopy(Operator):
    """A copy of ``bytes_moved`` bytes from placement ``src`` to ``dst`` (host<->device, device<->CXL)."""

    kind: ClassVar[str] = "memcopy"
    bytes_moved: float
    src: str = "host"
    dst: str = "device"
    role: str = "activation"

    def check(self):
        self._bytes("bytes_moved")
        self._require("bytes_moved", integer=False)
        self._choice("src", PLACEMENTS)
        self._choice("dst", PLACEMENTS)
        if self.src == self.dst:
            raise InputError(f"src and dst are both '{self.src}'", path="dst")

    def default_tensors(self):
        n = math.ceil(self.bytes_moved)
        return ([Tensor(f"{self.name}.src", (n,), RAW, self.role, self.src)],
                [Tensor(f"{self.name}.dst", (n,), RAW, self.role, self.dst)])


def make_operator(kind: str, **fields) -> Operator:
    """An operator of registered ``kind`` built from keyword fields (typos get a suggestion)."""
    cls = OPERATORS.get(kind, path="kind")
    allowed = {f.name for f in dataclasses.fields(cls) if f.init}
    for key in fields:
        if key not in allowed:
            raise InputError(f"unknown field for {kind}; expected one of: {', '.join(sorted(allowed))}",
                             path=key, suggestion=did_you_mean(key, allowed))
    missing = [f.name for f in dataclasses.fields(cls)
               if f.init and f.name not in fields
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise InputError(f"{kind} needs field(s): {', '.join(missing)}", path=missing[0])
    return cls(**fields)


RUNTIME_ACTIVITIES = ("step", "output", "sync", "dispatch")


@register_operator
@dataclass(kw_only=True)
class RuntimeWork(Operator):
    """Work a runtime (inference engine) does around the kernels of a step, on the host:
    ``activity`` ``step`` (scheduling, input preparation, sampling), ``output`` (the step's output
    processing: appending sampled tokens, detokenization, stop checks), ``sync``
    (waiting for the device at the end of the step) or ``dispatch`` (issuing kernels eagerly),
    taking ``host_s`` seconds as the runtime profile says (:mod:`hwmodels.runtime`). No FLOPs and
    no device bytes; the cost model charges ``host_s`` as a fixed latency."""

    kind: ClassVar[str] = "runtime"
    host_s: float = 0.0
    activity: str = "step"

    def check(self):
        if not (self.host_s >= 0 and math.isfinite(self.host_s)):
            raise InputError(f"host_s must be a finite time >= 0 s, got {self.host_s!r}", path="host_s")
        self._choice("activity", RUNTIME_ACTIVITIES)
