"""The one cost model: ``cost(op, device) -> Demands``, a registry of cost functions by operator kind.

Each cost function describes an operator's work to a :class:`~roofline.builder.DemandsBuilder`.
Users add kinds with :func:`register_cost`; an operator kind without a cost function of its own
gets :func:`cost_streaming` (its FLOPs at the base efficiency, every tensor read or written once
where it is placed), which is exact for kernels that stream their operands.

GEMM tiling model (:func:`operand_reads`). A GEMM C (m x n) = A (m x k) B (k x n) computes its
output in tiles; the data it re-reads depends on what fits on chip:

* From the memory where an operand lives (HBM, host, CXL), operands are re-read
  ``|A| ceil(n / Tn) + |B| ceil(m / Tm)`` for a block Tm x Tn of C whose operands the cache in front
  of that memory (the outermost on-chip level, usable capacity ``c`` = capacity x
  :data:`~roofline.efficiency.CACHE_USABLE_FRACTION`) lets the units reuse. Two schemes, the kernel
  gets the better:

  - *panels resident*: the cache holds A's Tm x k and B's k x Tn panels. Under
    ``k (a Tm + b Tn) <= c`` (a, b: bytes per element) traffic is smallest at
    ``Tm = c / (2 k a)``, ``Tn = c / (2 k b)`` (half of the cache each); a dimension shorter than
    its share (m < Tm) leaves the rest of the cache to the other. When ``k (a m + b n) <= c`` both
    operands fit and each is read exactly once; when not even one tile's panels fit, the re-reads
    are the tile counts ceil(n / tn), ceil(m / tm).
  - *a wave in lockstep*: the tiles running at once (one per unit, as a near-square block of
    rows x cols tiles, rasterized that way by the kernel) walk k together, so each k-slice of A
    and B is fetched once for the whole block, provided the cache holds
    :data:`~roofline.efficiency.WAVE_K_SLICE` of k of every running tile's panels:
    ``Tm = rows x tm``, ``Tn = cols x tn``. This is why large GEMMs on GPUs move little more than
    their compulsory bytes although their panels do not fit in L2.
* Through the cache level itself every CTA tile (tm x tn) streams its panels:
  ``|A| ceil(n / tn) + |B| ceil(m / tm)``. On an engine with ``operand_multicast = c > 1``
  (Hopper: TMA multicast within a thread-block cluster) the c tiles of a cluster that share a
  panel get it from one cache read: a cluster of c tiles along m reads B
  ``ceil(ceil(m / tm) / c)`` times, one along n reads A ``ceil(ceil(n / tn) / c)`` times
  (:func:`cluster_shapes`). The tile and cluster are the candidate of
  :data:`~roofline.efficiency.CANDIDATE_TILES` x :func:`cluster_shapes` x (split-K or not) with
  the smallest time under this model (:func:`gemm_into`), as a library's heuristics or an
  autotuner would pick it; a split-K candidate pays its reduction kernel (a second launch and the
  fp32 partials through the cache, :func:`~roofline.efficiency.split_k_partial_bytes`).
* From the innermost on-chip level (shared memory, VMEM) the matrix units read operands once per
  register tile (:data:`~roofline.efficiency.REGISTER_TILE`).
* A further on-chip level (MI300X's Infinity Cache, a CPU's L3) sees the traffic the level inside
  it cannot keep: the blocked formula above with the inner level's capacity. With a single
  on-chip level, it carries the CTA-tile traffic.
* C is written once at every level; other inputs (bias) are read once.
* Batched and MoE-expert GEMMs are ``batch x experts`` independent GEMMs in one kernel (their
  tiles share the units); an MoE GEMM's rows are ``m x imbalance``.

Flash (fused) attention: per KV head the queries of its group (q_len x heads/kv_heads rows) are cut
into 128-row tiles, each streaming all of K and V. K/V are read once from memory when the K/V of
the heads in flight fit in the cache; otherwise the query tiles of a head that run at the same
time (up to one per unit) stream the same K/V tiles together, so K/V is read once per wave of
query tiles, ``ceil(q_tiles / units)`` times. Scores stay on chip. A fused kernel's tensor time
includes the softmax its kernel family leaves exposed (:data:`~roofline.efficiency.ATTENTION_KERNELS`,
named by the matrix engine) and, when causal, the masked part of the diagonal KV blocks it
computes. Unfused attention's scores and probabilities are tensors of the operator (written and re-read in memory,
each side in its dtype: the GEMMs' and the softmax's); its softmax's mask, broadcast over the heads, comes from memory
once when what one head streams fits in the cache beside it, else once a head (see :func:`_mask_reads`).
Attention's matrix FLOPs run at the wider of the activation and K/V dtypes (one MMA, one operand
type: fp8 queries over a bf16 KV cache multiply at the bf16 rate).
Decode reads every weight and all the KV once per step because its tensors say so.
"""

from __future__ import annotations

import dataclasses
import operator as _operator
from collections.abc import Callable

from hwmodels.dtypes import DTYPE_BYTES
from hwmodels.errors import InputError, unknown_name
from hwmodels.registry import Registry
from workloads.operators import attended_keys

from .builder import DemandsBuilder
from .collectives import plan_collective
from .demands import Demands
from .efficiency import (
    ATTENTION_KERNELS,
    ATTENTION_Q_TILE,
    CACHE_USABLE_FRACTION,
    CANDIDATE_TILES,
    DEFAULT_ATTENTION_KERNEL,
    REGISTER_TILE,
    WAVE_K_SLICE,
    causal_block_scores,
    clamp_tile,
    decode_attention_latency_s,
    engine_base_efficiency,
    exposed_softmax_utilization,
    gemm_memory_fraction,
    k_ramp,
    kernel_memory_fraction,
    library_gemm_memory_fraction,
    link_efficiency,
    page_gather_efficiency,
    split_k_partial_bytes,
    tiled_utilization,
)
from .hardware import all_device_infos, device_info
from .mathns import SCALAR

CostFunction = Callable[[object, object], Demands]
# Cost functions by operator kind; a kind without one streams (cost_streaming).
COSTS: Registry[CostFunction] = Registry("cost function")

_SIG_SKIP = frozenset({"name", "inputs", "outputs", "stage", "param_prefix"})
_FIELD_GETTERS: dict[type, tuple] = {}
_TENSOR_FACTS = _operator.attrgetter("shape", "dtype", "role", "placement", "group_size")
# Costs remembered per device (identical operators recur: the same projection in every layer).
MEMO_LIMIT = 20_000


def register_cost(kind: str):
    """Decorator: use the decorated ``fn(op, device) -> Demands`` for operators of ``kind``.

    A cost function must depend only on what :func:`op_signature` captures (the operator's
    fields and its tensors' shapes, dtypes, roles, placements), never on names: costs are
    remembered per signature and device.
    """
    return COSTS.register(kind)


def op_signature(op) -> tuple:
    """What the cost of ``op`` depends on: its kind-specific fields (and any attribute set on it
    beyond them, e.g. a collective's ``algorithm``) and its tensors' shapes, dtypes, roles and
    placements; not names, stage or parameter names."""
    cls = type(op)
    entry = _FIELD_GETTERS.get(cls)
    if entry is None:
        names = [f.name for f in dataclasses.fields(op) if f.name not in _SIG_SKIP]
        getter = _operator.attrgetter(*names) if names else (lambda _op: ())
        entry = _FIELD_GETTERS[cls] = (getter, len(dataclasses.fields(op)))
    getter, n_fields = entry
    inputs = op.inputs
    sig = (cls, getter(op), len(inputs), *map(_TENSOR_FACTS, inputs + op.outputs))
    attrs = op.__dict__
    if len(attrs) != n_fields:
        fields = {f.name for f in dataclasses.fields(op)}
        sig += tuple(sorted((k, v) for k, v in attrs.items() if k not in fields))
    return sig


def clear_memo() -> None:
    """Forget every remembered cost (after a cost function changes)."""
    for info in all_device_infos():
        info.memo.clear()


COSTS.on_change(clear_memo)   # a new or replaced cost function invalidates remembered costs
ATTENTION_KERNELS.on_change(clear_memo)   # so does a replaced attention kernel family


def shared_cost(op, device, memo: dict | None = None) -> tuple[Demands, float, str]:
    """(demands, time_s, bound) of ``op`` on ``device``, remembered per signature: the Demands
    object is shared by every identical operator and must not be modified. ``memo``: the device's
    memo (``device_info(device).memo``) when the caller already has it."""
    if memo is None:
        memo = device_info(device).memo
    key = op_signature(op)
    try:
        entry = memo.get(key)
    except TypeError:      # an unhashable field (a user's operator): cost it every time
        key, entry = None, None
    if entry is None:
        if getattr(device, "kind", None) == "memory" or not getattr(device, "engines", None):
            raise InputError(f"device '{getattr(device, 'id', device)}' has no compute engines; an "
                             "operator runs on a gpu, npu, fpga or cpu", path="hw")
        d = COSTS.get(op.kind, cost_streaming)(op, device)
        launch = getattr(op, "launch_s", None)
        if launch is not None and op.kind != "runtime":
            # the runtime's launch cost for this kernel replaces the device's (part of the signature)
            d.fixed_s = max(d.fixed_s - device.launch_overhead_s, 0.0) + float(launch)
        entry = (d, d.time_s, d.bound)
        if key is not None:
            if len(memo) >= MEMO_LIMIT:
                memo.clear()
            memo[key] = entry
    return entry


def cost(op, device) -> Demands:
    """The demands of operator ``op`` on ``device`` (see :class:`~roofline.demands.Demands`): a
    fresh object the caller may modify."""
    return shared_cost(op, device)[0].copy(op.name)


def _through_chip(b: DemandsBuilder, nbytes, resident: str | None = None) -> None:
    """Bytes that stream between memory and the units pass once through every on-chip cache
    level; the innermost of several is a scratchpad (shared memory, VMEM, L1) they bypass.
    Bytes ``resident`` in an on-chip level pass only through the levels inside it."""
    on_chip = b.info.on_chip
    inside = on_chip[:on_chip.index(resident)] if resident in on_chip else on_chip
    for level in (on_chip[1:] if len(on_chip) > 1 else on_chip):
        if level in inside:
            b.memory(level, nbytes)


def resident_level(op, device) -> str | None:
    """The memory level named by ``op.resident`` (an optional attribute: the level that holds the
    operator's device-placed data, e.g. a working set that fits in a CPU's L2), or None."""
    level = getattr(op, "resident", None)
    if level is None or level == device.main_memory:
        return None
    if level not in device.memory:
        raise unknown_name("memory level", level, list(device.memory), path=f"{op.name}.resident")
    return level


def cost_streaming(op, device) -> Demands:
    """An operator that reads each input and writes each output once (norms, elementwise,
    embedding gathers, copies, scans, routers, pools): FLOPs at base efficiency, bytes where placed.
    With ``op.resident`` naming a memory level (:func:`resident_level`), device-placed tensors are
    read and written there instead of main memory."""
    b = DemandsBuilder(op.name, op.kind, device)
    b.main_memory_fraction = kernel_memory_fraction(op, device)
    b.add_flops(op.flops())
    resident = resident_level(op, device)
    total = near = 0.0
    for t in (*op.inputs, *op.outputs):
        if resident is not None and t.placement == "device":
            b.memory(resident, t.bytes)
            near += t.bytes
        else:
            b.tensor(t)
            total += t.bytes
    _through_chip(b, total)
    _through_chip(b, near, resident)
    return b.build()


# -- GEMM -----------------------------------------------------------------------------------------
def cluster_shapes(multicast: int) -> tuple[tuple[float, float], ...]:
    """(tiles along m, tiles along n) of the clusters a kernel can launch on an engine whose
    operand tiles are multicast to ``multicast`` units: one tile alone, or ``multicast`` tiles in
    a row along m (sharing B's panel) or along n (sharing A's panel)."""
    if multicast <= 1:
        return ((1.0, 1.0),)
    c = float(multicast)
    return ((c, 1.0), (1.0, c))


def operand_reads(m, n, k, ea, eb, capacity, tm, tn, units=1.0, instances=1.0, xp=SCALAR):
    """(times A is read, times B is read) from the memory behind a cache of ``capacity`` bytes,
    for one (m x k) x (k x n) GEMM of tm x tn tiles with ``ea``/``eb`` bytes per element, run by
    ``units`` units next to ``instances - 1`` other GEMMs: the better of the two reuse schemes of
    the module docstring (panels resident in the cache; the tiles of a wave in lockstep)."""
    c = capacity * CACHE_USABLE_FRACTION
    m_tiles, n_tiles = xp.ceil(m / tm), xp.ceil(n / tn)
    # panels resident: a Tm x Tn block of C whose panels fit, half of the cache for each operand
    tm_half = c / (2.0 * k * ea)
    tn_half = c / (2.0 * k * eb)
    rows = xp.where(tn_half > n, (c - k * n * eb) / (k * ea), tm_half)
    cols = xp.where(tm_half > m, (c - k * m * ea) / (k * eb), tn_half)
    rows = xp.minimum(m, xp.maximum(rows, tm))
    cols = xp.minimum(n, xp.maximum(cols, tn))
    ra, rb = xp.ceil(n / cols), xp.ceil(m / rows)
    # a wave in lockstep: the running tiles, a near-square block of them, share each k-slice
    running = xp.maximum(1.0, xp.floor(units / instances))
    w_rows = xp.minimum(m_tiles, xp.ceil(xp.sqrt(running)))
    w_cols = xp.minimum(n_tiles, xp.maximum(1.0, xp.floor(running / w_rows)))
    w_rows = xp.minimum(m_tiles, xp.maximum(w_rows, xp.floor(running / w_cols)))
    slice_fits = (w_rows * tm * ea + w_cols * tn * eb) * WAVE_K_SLICE <= c
    wa = xp.where(slice_fits, xp.ceil(n_tiles / w_cols), n_tiles)
    wb = xp.where(slice_fits, xp.ceil(m_tiles / w_rows), m_tiles)
    wave_better = wa * m * ea + wb * n * eb < ra * m * ea + rb * n * eb
    return xp.where(wave_better, wa, ra), xp.where(wave_better, wb, rb)


def gemm_into(b: DemandsBuilder, *, m, n, k, instances, flops: dict, a, bm, c, others=(), xp=SCALAR):
    """Describe a (batched) GEMM to builder ``b``.

    ``m, n, k``: one GEMM's dimensions (floats or arrays); ``instances``: independent GEMMs in the
    kernel (batch x experts); ``a``, ``bm``, ``c``: (total bytes, bytes per element, placement) of
    A, B and C; ``others``: the same for other inputs read once (bias); ``flops``:
    {(class, dtype): FLOPs}. The kernel runs the candidate output tile
    (:data:`~roofline.efficiency.CANDIDATE_TILES`) with the smallest time under this very model,
    as a library's heuristics or an autotuner would; so a faster resource never makes it slower.
    """
    choice = _matrix_engine(b, flops)[0]
    g_m, g_n = b.info.granule(choice)
    multicast = choice.engine.operand_multicast if choice and choice.engine.kind == "matrix" else 1
    candidates, seen = [], set()
    best_busy = None
    floor_s = _compulsory_floor_s(b, (a, bm, c, *others)) if xp is SCALAR else 0.0
    for (cand_m, cand_n), cluster in ((t, cl) for t in CANDIDATE_TILES for cl in cluster_shapes(multicast)):
        tm, tn = clamp_tile(m, cand_m, g_m, xp), clamp_tile(n, cand_n, g_n, xp)
        if xp is SCALAR:
            if (tm, tn, cluster) in seen:   # a short dimension makes several candidates the same tile
                continue
            seen.add((tm, tn, cluster))
        runs = []   # (builder, k splits) of this tile run unsplit and split along k
        for split in (False, True):
            cand = b.spawn()
            splits = _gemm_compute(cand, m, n, k, instances, flops, tm, tn, xp, split)
            if split and not _splits_any(splits):
                continue   # the unsplit run of this tile is the same kernel (for every shape)
            # a run whose compute time (or the time to move every operand once) is no better than
            # the best so far cannot win: skip costing its traffic
            if xp is SCALAR and best_busy is not None and max(cand.busy_s(), floor_s) >= best_busy:
                continue
            runs.append((cand, splits))
        if not runs:
            continue
        traffic = b.spawn()   # the tile's operand traffic, the same split or not
        _gemm_traffic(traffic, m, n, k, instances, flops, a, bm, c, others, tm, tn, xp, cluster)
        for cand, splits in runs:
            cand.include(traffic)
            _split_k_reduction(cand, m, n, instances, splits, xp)
            if xp is SCALAR:
                busy = cand.busy_s() + cand.extra_fixed_s
                best_busy = busy if best_busy is None else min(best_busy, busy)
            candidates.append(cand)
    b.adopt_fastest(candidates)


def _splits_any(splits) -> bool:
    """Whether a GEMM's k splits (a float, or an array of them in vector mode) split anywhere."""
    return bool((splits > 1.0).any()) if hasattr(splits, "any") else splits > 1.0


def _split_k_reduction(b: DemandsBuilder, m, n, instances, splits, xp) -> None:
    """A split-K GEMM's partial sums through the cache and its reduction kernel's launch
    (:data:`~roofline.efficiency.SPLIT_K_PARTIAL_BYTES`)."""
    level = b.info.cache_level or b.device.main_memory
    if xp is SCALAR:
        if splits > 1.0:
            b.memory(level, split_k_partial_bytes(m, n, instances, splits, xp))
            b.fixed(b.device.launch_overhead_s)
        return
    b.memory(level, split_k_partial_bytes(m, n, instances, splits, xp))
    b.fixed(xp.where(splits > 1.0, b.device.launch_overhead_s, 0.0))


def _compulsory_floor_s(b: DemandsBuilder, operands) -> float:
    """A lower bound on any tile's time: every operand moved once where it is placed, at the best
    efficiency the level (or link) can reach."""
    nbytes: dict[str, float] = {}
    for size, _, place in operands:
        level, link = b.info.placement(place)
        nbytes[b.info.memory_key[level]] = nbytes.get(b.info.memory_key[level], 0.0) + size
        if link is not None:
            nbytes[b.info.link_key[link]] = nbytes.get(b.info.link_key[link], 0.0) + size
    floor = 0.0
    for key, amount in nbytes.items():
        res = b.info.resource[key]
        if key.startswith("memory:"):
            curve = res.efficiency_curve
            best = max(p[1] for p in curve.points) if curve is not None else res.efficiency
        else:
            best = link_efficiency(res)
        floor = max(floor, amount / (res.bandwidth_bytes_s * best))
    return floor


def _gemm_compute(b: DemandsBuilder, m, n, k, instances, flops, tm, tn, xp, split=True):
    """A GEMM's FLOPs when it runs output tiles of tm x tn, split along k or not (``split``):
    shape utilization and k ramp. Returns the number of k splits."""
    choice, _ = _matrix_engine(b, flops)
    units = float(choice.engine.units) if choice else 1.0
    util, splits = tiled_utilization(m, n, k, instances, units, tm, tn, xp, split)
    b.add_flops(flops, util, k_ramp(k / splits, xp))
    return splits


def _gemm_traffic(b: DemandsBuilder, m, n, k, instances, flops, a, bm, c, others, tm, tn, xp,
                  cluster=(1.0, 1.0)) -> None:
    """A GEMM's bytes per memory level when it runs output tiles of tm x tn in clusters of
    ``cluster`` = (tiles along m, tiles along n) that share operand reads (module docstring)."""
    info = b.info
    choice, _ = _matrix_engine(b, flops)
    units = float(choice.engine.units) if choice else 1.0
    a_bytes, ea, a_place = a
    b_bytes, eb, b_place = bm
    c_bytes, _, c_place = c
    cache = info.cache_level
    capacity = info.device.memory[cache].capacity_bytes if cache else 0.0
    reads_a, reads_b = operand_reads(m, n, k, ea, eb, capacity, tm, tn, units, instances, xp)
    b.placed(a_place, a_bytes * reads_a)
    b.placed(b_place, b_bytes * reads_b)
    b.placed(c_place, c_bytes)
    other_bytes = 0.0
    for nbytes, _, place in others:
        b.placed(place, nbytes)
        other_bytes += nbytes
    # on-chip: register-tile traffic at the innermost level, CTA-tile traffic at the next, and
    # beyond that each level sees what the level inside it cannot keep (blocked by its capacity)
    on_chip = info.on_chip
    # a cluster along n reads A's panel once for its tiles, one along m B's (multicast)
    cta = (a_bytes * xp.ceil(xp.ceil(n / tn) / cluster[1]) + b_bytes * xp.ceil(xp.ceil(m / tm) / cluster[0])
           + c_bytes + other_bytes)
    if len(on_chip) == 1:
        b.memory(on_chip[0], cta)
    elif on_chip:
        rt_m, rt_n = xp.minimum(m, REGISTER_TILE), xp.minimum(n, REGISTER_TILE)
        b.memory(on_chip[0], a_bytes * xp.ceil(n / rt_n) + b_bytes * xp.ceil(m / rt_m) + c_bytes + other_bytes)
        b.memory(on_chip[1], cta)
        for inner, level in zip(on_chip[1:], on_chip[2:]):
            ra, rb = operand_reads(m, n, k, ea, eb, info.device.memory[inner].capacity_bytes, tm, tn,
                                   units, instances, xp)
            b.memory(level, a_bytes * ra + b_bytes * rb + c_bytes + other_bytes)


def _matrix_engine(b: DemandsBuilder, flops: dict):
    """(engine choice, matrix FLOPs) of an operator's matrix work (None, 0 when it has none)."""
    choice, total = None, 0.0
    for (flop_class, dtype), amount in flops.items():
        if flop_class == "matrix":
            choice = choice or b.info.engine_for(flop_class, dtype)
            total = total + amount
    return choice, total


def _elem(t) -> float:
    """Bytes per element of a tensor, quantization scales included."""
    return t.bytes / t.numel if t.numel else DTYPE_BYTES[t.dtype]


def _tensor_operand(t):
    return (t.bytes, _elem(t), t.placement)


@register_cost("matmul")
def cost_matmul(op, device) -> Demands:
    """A (batched, MoE-expert) GEMM with the tiling model of the module docstring."""
    b = DemandsBuilder(op.name, op.kind, device)
    matmul_into(b, op)
    return b.build()


def matmul_into(b: DemandsBuilder, op, xp=SCALAR) -> None:
    """Describe MatMul ``op`` to builder ``b`` (``xp=VECTOR``: a builder whose device rates are
    arrays, see :mod:`roofline.variants`)."""
    a_t, b_t = op.inputs[0], op.inputs[1]
    out = op.outputs[0]
    b.main_memory_fraction = gemm_memory_fraction(op, b.device)
    gemm_into(b, m=float(op.m * op.imbalance), n=float(op.n), k=float(op.k),
              instances=float(op.batch * op.experts), flops=op.flops(),
              a=_tensor_operand(a_t), bm=_tensor_operand(b_t), c=_tensor_operand(out),
              others=[_tensor_operand(t) for t in op.inputs[2:]], xp=xp)


@register_cost("runtime")
def cost_runtime(op, device) -> Demands:
    """Host work of a runtime around the kernels (:class:`~workloads.operators.RuntimeWork`): its
    ``host_s`` as a fixed latency, no device resource, no launch, no dynamic energy."""
    return Demands(op.name, {}, {}, float(op.host_s), 0.0, op.kind)


@register_cost("conv2d")
def cost_conv2d(op, device) -> Demands:
    """A convolution as an implicit GEMM: m = batch x out_h x out_w, n = out_channels / groups,
    k = in_channels / groups x kernel^2, one GEMM per group."""
    b = DemandsBuilder(op.name, op.kind, device)
    conv2d_into(b, op)
    return b.build()


def conv2d_into(b: DemandsBuilder, op, xp=SCALAR) -> None:
    """Describe Conv2d ``op`` to builder ``b`` (see :func:`matmul_into`)."""
    x, w = op.inputs[0], op.inputs[1]
    m = float(op.batch * op.out_h * op.out_w)
    n = float(op.out_channels // op.groups)
    k = float(op.in_channels // op.groups * op.kernel ** 2)
    # the im2col view of the input is k elements per output row; its bytes in memory are the input's
    b.main_memory_fraction = gemm_memory_fraction(op, b.device)
    gemm_into(b, m=m, n=n, k=k, instances=float(op.groups), flops=op.flops(),
              a=(x.bytes, x.bytes / (m * k * op.groups), x.placement), bm=_tensor_operand(w),
              c=_tensor_operand(op.outputs[0]), others=[_tensor_operand(t) for t in op.inputs[2:]], xp=xp)


# -- attention ------------------------------------------------------------------------------------
@register_cost("attention")
def cost_attention(op, device) -> Demands:
    """Fused (flash) or unfused attention, see the module docstring."""
    b = DemandsBuilder(op.name, op.kind, device)
    info = b.info
    kv_heads = 1 if op.latent_kv else op.kv_heads
    rows = float(op.q_len * (op.heads // kv_heads))    # query rows per (sequence, KV head)
    instances = float(op.batch * kv_heads)
    keys = max(1.0, float(min(op.kv_len, op.window) if op.window else op.kv_len) * op.kv_fraction)
    flops = _attention_mma_flops(op)
    choice, _ = _matrix_engine(b, flops)
    units = float(choice.engine.units) if choice else 1.0
    tm = clamp_tile(rows, ATTENTION_Q_TILE, info.granule(choice)[0])
    util, splits = tiled_utilization(rows, 1.0, keys, instances, units, tm, 1.0)
    if op.fused and op.causal and not op.window:
        # a causal tile's k loop runs only to its diagonal block: the ramp is paid on the mean loop
        kernel = _attention_kernel(b, op, choice)
        keys = causal_block_scores(op.q_len, op.kv_len, ATTENTION_Q_TILE, kernel.kv_tile) / op.q_len
    ramp = k_ramp(keys / splits)
    if op.fused and choice is not None:
        util = util * _fused_attention_utilization(b, op, flops, choice, util, ramp)
    b.add_flops(flops, util, ramp)
    q_tiles = SCALAR.ceil(rows / tm)

    q = op.inputs[0]
    # K/V (new and cached) are the inputs after Q that the operator does not write (unfused scores
    # and probabilities it does) and that are not the unfused softmax's mask
    written = {t.name for t in op.outputs}
    mask = [t for t in op.inputs[1:] if t.name == op.mask_name]
    kv_in = [t for t in op.inputs[1:] if t.name not in written and t not in mask]
    rest = [t for t in op.inputs[1:] if t.name in written]
    kv_bytes = sum(t.bytes for t in kv_in)
    cache = info.cache_level
    capacity = info.device.memory[cache].capacity_bytes * CACHE_USABLE_FRACTION if cache else 0.0
    heads_in_flight = min(instances, SCALAR.ceil(units / q_tiles))
    fits = heads_in_flight * kv_bytes / instances <= capacity
    # query tiles of one head running together stream the same K/V tiles: one read per wave
    kv_reads = 1.0 if fits or not op.fused else SCALAR.ceil(q_tiles / units)
    levels = {b.tensor(t, kv_reads) for t in kv_in}
    for t in (q, *rest, *op.outputs):
        b.tensor(t)
    mask_reads = _mask_reads(op, mask, capacity)
    for t in mask:
        b.tensor(t, mask_reads)
    if not op.fused:
        b.main_memory_fraction = _unfused_memory_fraction(op, device, kv_bytes * kv_reads, mask_reads)
    _through_chip(b, kv_bytes * q_tiles + sum(t.bytes for t in (q, *rest, *op.outputs))
                  + op.heads * sum(t.bytes for t in mask))
    if op.fused and q_tiles == 1:
        # a decode kernel: one short pass over its KV per CTA, a fixed latency per wave of CTAs
        b.fixed(decode_attention_latency_s(instances, units))
    d = b.build()
    if op.fused and op.page_size:
        _gather_pages(d, b, op, choice, kv_in, kv_reads, levels)
    return d


def _unfused_memory_fraction(op, device, kv_read_bytes: float, mask_reads: float) -> float:
    """Fraction of the main memory's rate unfused attention's traffic reaches: its two GEMMs'
    bytes (Q, K/V, the scores they write and the probabilities they read, the output) at a library
    GEMM's (:func:`~roofline.efficiency.library_gemm_memory_fraction`), its softmax's (the scores
    and probabilities in ``softmax_dtype``, the mask) at the runtime's kernel's
    (:func:`~roofline.efficiency.kernel_memory_fraction`): the time-weighted blend of the two."""
    scores, probs = f"{op.name}.scores", f"{op.name}.probs"
    softmax_side = [t for t in op.inputs if t.name == scores] + [t for t in op.outputs if t.name == probs]
    softmax_bytes = (sum(t.bytes for t in softmax_side)
                     + sum(t.bytes for t in op.inputs if t.name == op.mask_name) * mask_reads)
    gemm_side = [op.inputs[0], *(t for t in op.inputs if t.name == probs),
                 *(t for t in op.outputs if t.name != probs)]
    gemm_bytes = kv_read_bytes + sum(t.bytes for t in gemm_side)
    fg, fk = library_gemm_memory_fraction(device), kernel_memory_fraction(op, device)
    return (gemm_bytes + softmax_bytes) / (gemm_bytes / fg + softmax_bytes / fk)


def _mask_reads(op, mask, capacity) -> float:
    """Times the unfused softmax reads its mask from memory: the kernel walks its rows head by
    head, each head reading the whole mask (one element a score of the head: it is broadcast over
    heads), so the cache keeps the mask from one head to the next when what one head streams (its
    scores read and probabilities written in ``softmax_dtype``, and the mask) fits in it: one
    read; else one a head."""
    if not mask:
        return 1.0
    elements = sum(t.numel for t in mask)
    soft = DTYPE_BYTES[op.softmax_dtype or op.dtype]
    streamed = elements * 2 * soft + sum(t.bytes for t in mask)
    return 1.0 if streamed <= capacity else float(op.heads)


def _gather_pages(d: Demands, b: DemandsBuilder, op, choice, kv_in, kv_reads, levels) -> None:
    """A paged KV cache read block by block: the memory holding the cache gives the kernel
    family's :func:`~roofline.efficiency.page_gather_efficiency` on those bytes (the operator's
    other bytes there, the query and output, stream at the full rate)."""
    gather = _attention_kernel(b, op, choice).page_gather_bytes
    # elements per token and head of one cached part: MLA's latent, else the mean of K and V
    dim = op.cache_dim or (op.head_dim if op.latent_kv else (op.head_dim + op.v_head_dim) / 2.0)
    eff = page_gather_efficiency(op.page_size, dim, DTYPE_BYTES[op.kv_dtype], gather)
    if eff >= 1.0:
        return
    for level in levels:
        key = b.info.memory_key[level]
        paged = sum(t.bytes * kv_reads for t in kv_in
                    if t.role == "kv" and b.info.placement(t.placement)[0] == level)
        total = d.work.get(key, 0.0)
        if paged and total:
            # time on the level: (other bytes + paged bytes / eff) at the level's rate
            d.rates[key] *= total / (total - paged + paged / eff)


def _fused_attention_utilization(b: DemandsBuilder, op, flops: dict, choice, shape_util, ramp) -> float:
    """What a fused-attention kernel family (:data:`~roofline.efficiency.ATTENTION_KERNELS`, named
    by the matrix engine) does to its MMAs' useful fraction beyond tiling: the causal diagonal's
    whole KV blocks (computed, then masked) and the softmax time it leaves exposed. The softmax
    (exponentials on the special-function units, max/sum/rescale on the CUDA cores) runs on the
    fp32 scores at those pipes' peak rates."""
    kernel = _attention_kernel(b, op, choice)
    util = 1.0
    if op.causal and not op.window:
        computed = causal_block_scores(op.q_len, op.kv_len, ATTENTION_Q_TILE, kernel.kv_tile)
        util = attended_keys(op.q_len, op.kv_len, True, None) / computed
    # a kernel of warp-level MMAs runs at the fraction of the peak that instruction reaches
    instruction = choice.engine.warp_mma_fraction if kernel.warp_mma else 1.0
    mma_s = softmax_s = 0.0
    for (flop_class, dtype), amount in flops.items():
        if flop_class == "matrix":
            eff = engine_base_efficiency(choice.engine, choice.dtype, amount, SCALAR, ramp)
            mma_s = mma_s + amount / (choice.peak_flops * instruction * eff * shape_util * util)
        else:
            pipe = b.info.engine_for(flop_class, "fp32" if "fp32" in _pipe_dtypes(b, flop_class) else dtype)
            softmax_s = softmax_s + amount / pipe.peak_flops
    return instruction * util * exposed_softmax_utilization(mma_s, softmax_s, kernel.softmax_exposed)


def _attention_kernel(b: DemandsBuilder, op, choice):
    """The fused-attention kernel family (:class:`~roofline.efficiency.AttentionKernel`) that runs
    ``op``: the one the operator names (its runtime's), else the one the matrix engine of
    ``choice`` runs; an unknown name is an InputError naming where it came from."""
    if op.kernel:
        return ATTENTION_KERNELS.get(op.kernel, path="kernel")
    name = (choice.engine.attention_kernel if choice is not None else None) or DEFAULT_ATTENTION_KERNEL
    return ATTENTION_KERNELS.get(name, path=f"engines.{choice.name}.attention_kernel" if choice else None,
                                 file=getattr(b.device, "origin", None) or None)


def _pipe_dtypes(b: DemandsBuilder, flop_class: str) -> set:
    """Dtypes some engine of ``b``'s device runs ``flop_class`` FLOPs at, natively."""
    kinds = {"vector": ("vector",), "special": ("scalar", "vector")}.get(flop_class, ())
    return {d for e in b.device.engines.values() if e.kind in kinds for d in e.peak_flops}


def _attention_mma_flops(op) -> dict:
    """The operator's FLOPs with its matrix work at the dtype its MMAs run in: a tensor-core MMA
    takes both operands in one type, so Q.K^T and P.V run at the wider of the activation dtype
    and the K/V dtype (fp8 activations over a bf16 KV cache run at the bf16 rate: TensorRT-LLM's
    and vLLM's fp8 GEMM recipes keep attention in 16 bits unless the KV cache is fp8 too)."""
    flops = op.flops()
    kv_dtype = getattr(op, "kv_dtype", None) or op.dtype
    if DTYPE_BYTES.get(kv_dtype, 0.0) <= DTYPE_BYTES.get(op.dtype, 0.0):
        return flops
    out: dict = {}
    for (flop_class, dtype), amount in flops.items():
        key = (flop_class, kv_dtype if flop_class == "matrix" else dtype)
        out[key] = out.get(key, 0.0) + amount
    return out


# -- collectives ----------------------------------------------------------------------------------
@register_cost("collective")
def cost_collective(op, device, algorithm: str | None = None) -> Demands:
    """A collective over the device's scale-up link: the demands of its
    :func:`~roofline.collectives.plan_collective` (link bytes and per-hop latency of its
    algorithm's steps, memory traffic, reduction FLOPs). The algorithm is ``algorithm`` if
    given, else the operator's pinned ``algorithm``, else what NCCL picks for the link
    (:func:`~roofline.collectives.choose_algorithm`)."""
    return plan_collective(op, device, algorithm=algorithm).demands
