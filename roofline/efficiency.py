"""How much of a peak an operator can actually get: every efficiency assumption, in one place.

Each factor is a physical mechanism; one constant per fused-attention kernel family (its exposed
softmax, below), one per collective algorithm (its pipeline startup per step) and one per decode
attention mechanism (the latency per wave of decode CTAs; the streaming a family loses per paged
KV block) are fitted, on the public rows with role ``fit`` only (``python -m
calibration.kernel_fit``, ``python -m calibration.collective_fit``); nothing else here is fitted
to published measurements.

* **Base efficiency.** A device states the achievable fraction of each engine's and memory
  level's peak (``Engine.efficiency``, ``MemoryLevel.efficiency``; clock throttling, issue
  overhead, DRAM refresh and bank conflicts). A calibrated overlay replaces it with an
  ``efficiency_curve`` in log10 of the operator's FLOPs (or bytes), piecewise linear and clamped,
  measured on this machine.
* **Wave quantization.** A tiled kernel runs ``tiles`` output tiles on ``Engine.units`` parallel
  units in ``ceil(tiles / units)`` waves; the last wave leaves units idle, so only
  ``tiles / (waves x units)`` of the machine works. A small GEMM (few tiles) cannot fill a GPU.
* **Tile padding.** A matrix unit computes whole granules: a dimension of 20 on an engine whose
  granule is 16 occupies 32 lanes. Kernels pick a tile among :data:`CANDIDATE_TILES`, a short
  dimension's tile shrunk to the granules that cover it.
* **Split-K.** A GEMM with too few output tiles to fill the units may split its k loop
  (:func:`split_k`), which fills more units and shortens each tile's k loop, at a price: the
  splits' fp32 partial sums go through the cache and a second (reduction) kernel adds them
  (:func:`split_k_partial_bytes`, a second launch). The kernel runs split or unsplit, whichever
  is faster.
* **Fused attention kernels** (:data:`ATTENTION_KERNELS`, named per matrix engine): the softmax
  time a kernel family leaves exposed next to its MMAs (:func:`exposed_softmax_utilization`;
  FlashAttention-2 serialises it per warp, FlashAttention-3 overlaps it across warpgroups), and
  the whole KV blocks a causal kernel computes on the diagonal (:func:`causal_block_scores`).
* **Decode attention** (one query tile per sequence and KV head: a decode step's attention).
  Each thread block (CTA) makes one short pass over its sequence's KV and pays a fixed latency
  that streaming does not hide: reading its page-table entries and its query, the first K
  round trip, the final rescale and the output's write. The CTAs run in waves of one per unit,
  so the kernel pays :data:`DECODE_CTA_LATENCY_S` per wave (:func:`decode_attention_latency_s`):
  many short sequences cost more than their bytes say (batch 256 x 8 KV heads is 16 waves on an
  H100). A paged KV cache is gathered block by block; a kernel family that cannot stream a
  small block at full rate (FlashAttention-3 leaves its TMA path for a gather when a block is
  shorter than its KV tile) pays ``page_gather_bytes`` of streaming per block read
  (:func:`page_gather_efficiency`). Both fitted on the paged decode rows with role ``fit``.
* **Pipeline ramp along k.** Every output tile pays a prologue (filling the multi-stage operand
  pipeline) and an epilogue (converting and storing the accumulators) that cost about as much as
  :data:`K_OVERHEAD` steps of its k loop; the useful fraction is ``k / (k + K_OVERHEAD)``.
* **Latency.** A transfer cannot finish before its first byte arrives: the latency of the
  farthest memory level (and link) an operator touches is added once (accesses after the first
  are pipelined), as is the device's kernel ``launch_overhead_s``. So small transfers are
  latency-bound: ``time >= latency + bytes / bandwidth``.
* **Link framing.** A link carries payload in packets with headers and CRCs: the achievable
  fraction is ``payload / (payload + overhead)`` per packet (:data:`LINK_FRAMING`).
* **Collective libraries.** A collective run by a library (NCCL) over NVLink reaches its own
  fraction of the line rate, which replaces the framing (:data:`COLLECTIVE_LINK_EFFICIENCY`,
  from NCCL's own topology model); an in-switch reduction a further fraction
  (:data:`IN_NETWORK_EFFICIENCY`, NCCL's); and its chunk pipeline takes a startup before it
  streams (:func:`collective_startup_s`, its per-step time fitted on public rows marked `fit`).
* **Cache reuse** (bytes, not rates; used by the GEMM tiling model in :mod:`roofline.costs`):
  only :data:`CACHE_USABLE_FRACTION` of a cache holds reusable panels, and the tiles of a wave
  share fetches while the cache holds :data:`WAVE_K_SLICE` of k of their panels.

When a calibration curve is present, it replaces the base efficiency *and* the k ramp (it was
measured on real kernels of that size, ramp included); wave quantization and tile padding still
apply because they depend on the shape, not the size. A calibration fit therefore inverts
``roofline.cost`` with a flat curve (efficiency 1): what it fits is the efficiency on top of
the shape factors.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwmodels.registry import Registry

from .mathns import SCALAR

# Output tiles (rows x cols of C) a kernel library offers: a unit (SM, core, MXU) computes one at a
# time. 128 x 128 is the standard tensor-core tile (CUTLASS/cuBLAS defaults) and the MXU width of
# TPUs; 256 x 128 halves operand traffic for large GEMMs within the accumulator registers of an SM
# (32K fp32 accumulators); 64-wide tiles pad less and make more tiles for small GEMMs. The cost
# model lets the kernel pick the candidate with the smallest predicted time (see roofline.costs).
CANDIDATE_TILES: tuple[tuple[float, float], ...] = (
    (256.0, 128.0), (128.0, 256.0), (128.0, 128.0), (128.0, 64.0), (64.0, 128.0), (64.0, 64.0))
# Query rows per unit in flash attention (FlashAttention-2 uses 128-row query blocks).
ATTENTION_Q_TILE = 128.0
# Fraction of the softmax's pipe time each attention kernel family leaves exposed (see
# AttentionKernel): fitted with `python -m calibration.kernel_fit` on the rows with role `fit`.
SOFTMAX_EXPOSED_FA2 = 0.93
SOFTMAX_EXPOSED_FA3 = 0.67
# Latency per wave of decode-attention CTAs (see the module docstring), and the streaming a
# FlashAttention-3 kernel loses per paged KV block (per head and per K or V), in bytes: fitted
# with `python -m calibration.kernel_fit` on the paged decode rows with role `fit`.
DECODE_CTA_LATENCY_S = 1.9e-6
PAGE_GATHER_BYTES_FA3 = 1200.0
# Fraction of its main memory's streaming rate (the level's efficiency: what STREAM reaches) a
# library GEMM's operand traffic reaches on a GPU: an empirical efficiency, as the engines' are.
# A GEMM kernel's loads are paced by its pipeline (a stage is refilled only when the MMAs free it,
# with a prologue and an epilogue per tile); a copy kernel's are not. Not modelled in detail: the
# measured shortfall is one fraction, which is what the data resolve. cuBLAS fp16 GEMMs with
# M = 1..64 rows against 4096-16384 square weights (MLX pull requests 3160, 3173, 3180, 3255)
# stream 1.4-1.7 TB/s on an A100 and 2.6-2.9 TB/s on an H100. Fitted with
# `python -m calibration.kernel_fit` on the GEMM rows with role `fit` and M <= 64 (5 rows, both
# devices); the 12 held-out skinny rows (with gemm-a100-m64): MAPE 7.7% -> 3.5%, mean +5.7% ->
# -1.2%. A runtime's own mat-vec kernel states its fraction of the streaming rate instead
# (`matvec_memory_fraction`, :func:`gemm_memory_fraction`), so the two never multiply.
GEMM_MEMORY_FRACTION = 0.92
# Smallest stretch of k a split-K (or split-KV) kernel gives one split.
SPLIT_K_MIN = 256.0
# A split-K GEMM is two kernels: the split GEMM writes fp32 partial sums (4 bytes per element of C
# per split) to a workspace, and a reduction kernel (cuBLAS's splitKreduce_kernel, CUTLASS's
# GemmSplitKParallel reduction) sums them into C. It pays a second launch and the partials'
# traffic, so a library splits only where that pays; the cost model prices both and lets the
# kernel run split or unsplit, whichever is faster (roofline.costs.gemm_into).
SPLIT_K_PARTIAL_BYTES = 4.0

# Smallest tile a matrix engine (Engine.kind "matrix") computes, per device kind: (rows of A,
# columns of B). GPU tensor cores: the m16n8k16 MMA instruction; TPU-like NPUs: 8 sublanes of a
# 128-wide MXU; CPUs with AMX: 16-row tiles. Vector, scalar and DSP-fabric engines compute single
# elements (an FPGA design sizes its arrays to the problem): granule 1.
TILE_GRANULE: dict[str, tuple[float, float]] = {
    "gpu": (16.0, 16.0),
    "npu": (8.0, 128.0),
    "cpu": (16.0, 16.0),
}
NO_GRANULE = (1.0, 1.0)

# Prologue + epilogue of an output tile, in equivalent k steps: two pipeline stages of 32 along
# k must be loaded before the first MMA, and the accumulators are written out after the last.
K_OVERHEAD = 64.0

# Operands are re-read from the innermost on-chip memory (shared memory, VMEM, L1) once per
# register tile of this many rows and columns of C (a warp's 64x64 fp32 accumulators = 16 KiB).
REGISTER_TILE = 64.0

# Elements of k of every running tile's A and B panels a cache must hold for the tiles of one wave
# to share what they fetch (they walk k in lockstep): a few pipeline stages of 32-64.
WAVE_K_SLICE = 128.0

# Share of a cache that holds reusable operand panels. Streaming data, the output tile, set
# conflicts and (on A100/H100) an L2 split in two partitions leave about half for reuse.
CACHE_USABLE_FRACTION = 0.5

# Link framing: (payload bytes, overhead bytes) of one packet.
LINK_FRAMING: dict[str, tuple[float, float]] = {
    # PCIe TLP with 256 B max payload: 4 framing + 2 sequence + 16 header + 4 LCRC.
    "pcie": (256.0, 26.0),
    # CXL.mem over the PCIe PHY: 64 B cache line in a 68 B flit (plus 2 B CRC).
    "cxl": (64.0, 6.0),
    # NVLink packets carry up to 256 B of data behind a 16 B header/CRC.
    "nvlink": (256.0, 16.0),
    # RoCEv2 at 4096 B MTU: Ethernet 18 + IP 20 + UDP 8 + BTH 12 + preamble/IFG 20.
    "ethernet": (4096.0, 78.0),
    # ICI and Infinity Fabric framing is not public; assume NVLink-like packets.
    "ici": (256.0, 16.0),
    "infinity_fabric": (256.0, 16.0),
}


@dataclass(frozen=True)
class AttentionKernel:
    """A fused-attention kernel family, as data with its source.

    ``softmax_exposed``: the fraction of the softmax's pipe time (exponentials on the special
    function units, max/sum/rescale on the fp32 pipes, at their peak issue rates) that the kernel
    does not hide under its MMAs; 0 = perfectly overlapped, 1 = serial. FlashAttention-2 runs
    QK^T, softmax and PV of a KV block one after the other in each warp; FlashAttention-3 overlaps
    the softmax of one warpgroup with the GEMMs of another (ping-pong) and within a warpgroup.
    ``kv_tile``: keys per KV block; a causal kernel computes whole blocks on the diagonal.
    ``page_gather_bytes``: streaming time lost per block of a paged KV cache (per KV head, per K
    or V), in bytes at the memory's rate; 0 where no paged measurement says otherwise.
    ``warp_mma``: the kernel issues warp-level MMAs (``mma.sync``, Ampere's instruction), so on an
    engine whose full rate needs another instruction it reaches only the engine's
    ``warp_mma_fraction`` of the peak (Hopper: wgmma).
    """

    softmax_exposed: float
    kv_tile: float
    source: str
    page_gather_bytes: float = 0.0
    warp_mma: bool = False


# Fused-attention kernel families; an engine names its own (``attention_kernel`` in the device
# YAML), default :data:`DEFAULT_ATTENTION_KERNEL`. ``softmax_exposed`` is fitted on the public
# rows with role ``fit`` only (``python -m calibration.kernel_fit``), nothing else here is.
ATTENTION_KERNELS: Registry[AttentionKernel] = Registry("attention kernel")
ATTENTION_KERNELS.register("fa2", AttentionKernel(
    softmax_exposed=SOFTMAX_EXPOSED_FA2, kv_tile=64.0,
    source="FlashAttention-2 (Dao 2023): per warp QK^T -> softmax -> PV per KV block, 128 x 64 "
           "blocks at head dim 128 on sm80; the softmax cost is measured by liangan1/GPU_travel "
           "performance/flash-attn/README.md @07d0469e (A100: 1.264 ms without softmax, 1.547 ms "
           "with); it issues mma.sync, which reaches about 2/3 of Hopper's tensor peak (the "
           "FlashAttention-3 post, pytorch/pytorch.github.io _posts/2024-07-11-flashattention-3.md "
           "@125600c3, note 1, citing arXiv 2402.13499)",
    warp_mma=True),
    help="FlashAttention-2 forward (Ampere, Ada and any GPU without a specialised kernel; on Hopper "
         "at the mma.sync rate)")
ATTENTION_KERNELS.register("fa3", AttentionKernel(
    softmax_exposed=SOFTMAX_EXPOSED_FA3, kv_tile=128.0,
    source="FlashAttention-3 (Shah et al. 2024): warp-specialised, ping-pong scheduling between "
           "two warpgroups and intra-warpgroup softmax/GEMM overlap, 128 x 128 blocks at head dim "
           "128 on Hopper; a paged KV cache with blocks shorter than the KV tile is gathered "
           "without TMA: 1849 GB/s at page size 8 on an H100, Dao-AILab/flash-attention issue "
           "1572 (page_gather_bytes fitted on that row)",
    page_gather_bytes=PAGE_GATHER_BYTES_FA3),
    help="FlashAttention-3 forward (Hopper: softmax overlapped with the GEMMs)")
DEFAULT_ATTENTION_KERNEL = "fa2"


def decode_attention_latency_s(ctas, units, latency_s=None):
    """Fixed time of a decode-attention kernel's ``ctas`` thread blocks (one per sequence and KV
    head) on ``units`` SMs: :data:`DECODE_CTA_LATENCY_S` per wave of ``units`` CTAs."""
    per_wave = DECODE_CTA_LATENCY_S if latency_s is None else latency_s
    return SCALAR.ceil(ctas / max(units, 1.0)) * per_wave


def page_gather_efficiency(page_tokens, head_dim, kv_bytes, gather_bytes):
    """Fraction of the memory rate a paged KV read reaches: each block of ``page_tokens`` tokens
    (``page_tokens x head_dim x kv_bytes`` bytes per head for K, likewise V) costs
    ``gather_bytes`` more of streaming. 1 for a contiguous cache (``page_tokens`` None)."""
    if not page_tokens or gather_bytes <= 0:
        return 1.0
    block = float(page_tokens) * head_dim * kv_bytes
    return block / (block + gather_bytes)


def exposed_softmax_utilization(mma_s, softmax_s, exposed):
    """Useful fraction of a fused-attention kernel's MMA time when ``exposed`` x ``softmax_s``
    of softmax work adds to its ``mma_s`` (time = mma_s + exposed x softmax_s)."""
    return mma_s / (mma_s + exposed * softmax_s)


def causal_block_scores(q_len, kv_len, q_tile, kv_tile) -> float:
    """Scores one head of a causal fused-attention kernel computes: query tile i (``q_tile``
    rows of the last ``q_len`` of ``kv_len`` positions) runs every KV block up to the one holding
    its last row's key, whole blocks of ``kv_tile`` (the diagonal block is masked, not skipped)."""
    offset = kv_len - q_len
    total, start = 0.0, 0.0
    while start < q_len:
        rows = min(q_tile, q_len - start)
        last_key = offset + start + rows            # keys the tile's last query sees
        total += rows * min(kv_len, SCALAR.ceil(last_key / kv_tile) * kv_tile)
        start += q_tile
    return total
# Collectives run by a communication library over a link: the fraction of the line rate they
# reach, in place of the link's packet framing (the library's protocol: its flags, flow control
# and copy loops). NVLink: NCCL's topology model credits 20.0 (Ampere), 20.6 (Hopper) and 40.1
# (Blackwell) GB/s per NVLink of 25, 25 and 50 GB/s line rate (src/graph/topo.h,
# SM80/SM90/SM100_NVLINK_BW): "the protocol overhead (~20%)", as NCCL's maintainer puts it
# (NVIDIA/nccl-tests issue 212: 370 GB/s of H100's 450). Their mean, 0.81. Links not listed
# keep their framing.
COLLECTIVE_LINK_EFFICIENCY: dict[str, float] = {
    "nvlink": round((20.0 / 25.0 + 20.6 / 25.0 + 40.1 / 50.0) / 3.0, 3),
}
# An in-switch reduction (NVLink SHARP) reaches this fraction of the above: NCCL's
# nvlsEfficiency for Hopper (src/graph/tuning.cc; 0.74 for Blackwell, not told apart here).
IN_NETWORK_EFFICIENCY = 0.85
# ... and waits this latency, once (NCCL's tuner: hwLatencies[NVLINK][NVLS][Simple], 25 us, its
# whole latency on one node; a ring's per-step latency is the link's, already charged per hop).
IN_NETWORK_LATENCY_S = 25e-6
# A library collective streams only once its chunk pipeline is full: each of its steps (a ring
# all-reduce has 2(N-1), an in-switch one 1, a send 1) waits a startup of
# t0 x P / (P + COLLECTIVE_FILL_BYTES) for a payload P per rank (small payloads barely pay it:
# they run in one short chunk; NCCL's tuner charges such a per-step latency too, 3.4 us for a
# ring step and 25 us for NVLS, src/graph/tuning.cc, and misses most of what the rows show). The
# half-way payload is NCCL's default channel buffer (NCCL_BUFFSIZE, 4 MiB), fixed a priori; t0
# per step and algorithm is fitted on the public collective rows marked `fit`
# (python -m calibration.collective_fit prints it; a test checks the figures below are its
# output). Tree steps and sends take the ring's (no rows of theirs).
COLLECTIVE_FILL_BYTES = 4.0 * 2**20
COLLECTIVE_STEP_STARTUP_S: dict[str, float] = {"in_switch": 4.405e-05, "ring": 1.532e-05}


def collective_link_efficiency(link, in_network: bool = False) -> float:
    """Achievable fraction of ``link``'s bandwidth for a collective run by a library over it
    (:data:`COLLECTIVE_LINK_EFFICIENCY`, times :data:`IN_NETWORK_EFFICIENCY` when the switch
    reduces); the link's own (:func:`link_efficiency`) where no library figure is known."""
    library = COLLECTIVE_LINK_EFFICIENCY.get(link.kind)
    if library is None or getattr(link, "efficiency", None):
        return link_efficiency(link)
    return library * (IN_NETWORK_EFFICIENCY if in_network else 1.0)


def collective_startup_s(algorithm: str, payload_bytes: float, steps: int, link, in_network: bool = False) -> float:
    """Startup of a library collective of ``payload_bytes`` per rank in ``steps`` pipeline
    steps with ``algorithm`` over ``link`` (0 where no library figure is known for the link):
    the pipeline fill, and an in-switch reduction's latency (:data:`IN_NETWORK_LATENCY_S`)."""
    if link.kind not in COLLECTIVE_LINK_EFFICIENCY:
        return 0.0
    latency = IN_NETWORK_LATENCY_S if in_network else 0.0
    if payload_bytes <= 0:
        return latency
    t0 = COLLECTIVE_STEP_STARTUP_S.get(algorithm, COLLECTIVE_STEP_STARTUP_S["ring"])
    return latency + steps * t0 * payload_bytes / (payload_bytes + COLLECTIVE_FILL_BYTES)


def curve_value(curve, x, xp=SCALAR):
    """The efficiency a calibration ``Curve`` gives at ``x`` (piecewise linear, clamped)."""
    return xp.interp(x, curve.xs, curve.ys)


def wave_utilization(tiles, units, xp=SCALAR):
    """Fraction of ``units`` busy over a kernel of ``tiles`` equal tiles run in whole waves."""
    tiles = xp.maximum(tiles, 1.0)
    return tiles / (xp.ceil(tiles / units) * units)


def padding_utilization(size, tile, xp=SCALAR):
    """Useful fraction of ``ceil(size / tile)`` tiles covering a dimension of ``size``."""
    return size / (xp.ceil(size / tile) * tile)


def clamp_tile(size, tile, granule, xp=SCALAR):
    """The tile side a kernel with nominal ``tile`` uses for a dimension of ``size``: a dimension
    shorter than the tile is covered by the smallest multiple of the engine's granule (skinny
    kernels size their tile to the problem; the matrix unit still computes whole granules)."""
    return xp.where(size < tile, xp.minimum(xp.ceil(size / granule) * granule, tile), tile)


def split_k(tiles, k, units, xp=SCALAR):
    """How many ways a kernel splits its k loop when its output tiles cannot fill the units
    (split-K in cuBLAS, split-KV in flash-decoding): up to ``units / tiles`` ways, keeping at least
    :data:`SPLIT_K_MIN` of k per split."""
    return xp.maximum(1.0, xp.minimum(xp.floor(units / tiles), xp.ceil(k / SPLIT_K_MIN)))


def tiled_utilization(m, n, k, instances, units, tm, tn, xp=SCALAR, split=True):
    """(fraction of an engine's peak a tiled kernel's shape allows, k splits).

    Tile padding in m and n times wave quantization of ``instances x tiles x splits`` work items
    over ``units``; ``instances`` counts independent GEMMs in one kernel (batch x experts).
    ``split=False``: a kernel that does not split k (one split).
    """
    tiles = instances * xp.ceil(m / tm) * xp.ceil(n / tn)
    splits = split_k(tiles, k, units, xp) if split else 1.0
    pad = padding_utilization(m, tm, xp) * padding_utilization(n, tn, xp)
    return pad * wave_utilization(tiles * splits, units, xp), splits


def split_k_partial_bytes(m, n, instances, splits, xp=SCALAR):
    """Bytes a split-K GEMM moves through the cache for its partial sums: each of ``splits``
    splits writes an fp32 m x n partial to a workspace and a reduction kernel reads them back
    (cuBLAS's split-K reduction, CUTLASS's parallel split-K); none without a split."""
    return xp.where(splits > 1.0, 2.0 * splits * m * n * instances * SPLIT_K_PARTIAL_BYTES, 0.0)


def k_ramp(k, xp=SCALAR):
    """Useful fraction of a tile's time once its prologue and epilogue are paid."""
    return k / (k + K_OVERHEAD)


def engine_base_efficiency(engine, dtype: str, flops, xp=SCALAR, ramp=1.0):
    """Achievable fraction of ``engine``'s peak at ``dtype`` for an operator of ``flops`` FLOPs,
    before shape effects. ``ramp`` (e.g. :func:`k_ramp`) applies only without a calibration curve."""
    curves = getattr(engine, "efficiency_curve", None) or {}
    curve = curves.get(dtype)
    if curve is not None:
        return curve_value(curve, xp.log10(xp.maximum(flops, 1.0)), xp)
    return engine.efficiency * ramp


def gemm_memory_fraction(op, device) -> float:
    """Fraction of the main memory's streaming rate GEMM ``op`` reaches on ``device``: the
    runtime's own kernel's where ``op`` carries one for the device's main-memory kind (the
    optional attribute ``memory_fraction``: memory kind -> fraction, set by a runtime profile's
    ``matvec_memory_fraction`` on one-row GEMMs), else a library GEMM's
    (:data:`GEMM_MEMORY_FRACTION`, on a GPU: the devices it was fitted on; 1 elsewhere)."""
    return _stated_memory_fraction(op, device, library_gemm_memory_fraction(device))


def library_gemm_memory_fraction(device) -> float:
    """:data:`GEMM_MEMORY_FRACTION` on a GPU (the devices it was fitted on), 1 elsewhere."""
    return GEMM_MEMORY_FRACTION if device.kind == "gpu" else 1.0


def kernel_memory_fraction(op, device) -> float:
    """Fraction of the main memory's streaming rate a streaming kernel ``op`` (norm, elementwise,
    conversion, copy, unfused softmax) reaches on ``device``: the runtime's own kernel's where
    ``op`` carries one for the device's main-memory kind (the optional attribute
    ``memory_fraction``, set by a runtime profile's ``kernel_memory_fraction``), else 1 (what
    STREAM reaches: the memory level's efficiency)."""
    return _stated_memory_fraction(op, device, 1.0)


def _stated_memory_fraction(op, device, default: float) -> float:
    """The fraction ``op``'s optional attribute ``memory_fraction`` (memory kind -> fraction) gives
    the main memory of ``device``, else ``default``."""
    stated = dict(getattr(op, "memory_fraction", None) or ())
    return float(stated.get(device.memory[device.main_memory].kind, default))


def memory_efficiency(level, nbytes, xp=SCALAR):
    """Achievable fraction of a memory level's bandwidth for a transfer of ``nbytes``."""
    curve = getattr(level, "efficiency_curve", None)
    if curve is not None:
        return curve_value(curve, xp.log10(xp.maximum(nbytes, 1.0)), xp)
    return level.efficiency


def link_efficiency(link) -> float:
    """Achievable fraction of a link's bandwidth: packet framing, unless the link states its own."""
    stated = getattr(link, "efficiency", None)
    if stated:
        return float(stated)
    payload, overhead = LINK_FRAMING.get(link.kind, (256.0, 16.0))
    return payload / (payload + overhead)
