"""What the cost model derives once per device: which engine runs which dtype, which memory level
and link a placement uses, the on-chip levels that cache GEMM operands.

:func:`device_info` caches a :class:`DeviceInfo` per device object, so a sweep that calls the cost
model millions of times does the lookups once.

Engine mapping. FLOPs come in three classes (``matrix``, ``vector``, ``special``). Each class
tries engine kinds in a preference order and, on each, the dtype first and then the dtypes a
kernel would promote it to (:data:`PROMOTION`): fp8 on an A100 (no fp8 tensor cores) runs as
bf16 on the tensor cores, a bf16 GELU's transcendental runs at fp32 on the SFU. An fp32 GEMM
goes to a matrix engine only if that engine lists an ``fp32`` peak (a device whose fp32 GEMMs
use TF32 says so by listing it); otherwise it runs on the vector (CUDA) cores. Among engines of
the same kind the one with the highest peak at the dtype wins.
"""

from __future__ import annotations

from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field

from hwmodels.errors import InputError

from .efficiency import NO_GRANULE, TILE_GRANULE

# dtype -> dtypes a kernel can run it as, in order of preference (same bits first, then wider).
PROMOTION: dict[str, tuple[str, ...]] = {
    "int4": ("int4", "int8", "fp8", "bf16", "fp16", "fp32"),
    "int8": ("int8", "bf16", "fp16", "fp32"),
    "fp8": ("fp8", "bf16", "fp16", "fp32"),
    "bf16": ("bf16", "fp16", "fp32"),
    "fp16": ("fp16", "bf16", "fp32"),
    "tf32": ("tf32", "fp32"),
    "fp32": ("fp32",),
    "fp64": ("fp64",),
}

# FLOP class -> engine kinds to try, in order.
ENGINE_PREFERENCE: dict[str, tuple[str, ...]] = {
    "matrix": ("matrix", "dsp", "vector", "scalar"),
    "vector": ("vector", "dsp", "scalar", "matrix"),
    "special": ("scalar", "vector", "dsp", "matrix"),
}

# Placement -> (memory-level kind, link kinds to reach it, in order of preference).
PLACEMENT_TIERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "host": ("host", ("pcie", "cxl", "nvlink")),
    "cxl": ("cxl", ("cxl", "pcie")),
}

_CACHE_SIZE = 256


@dataclass(frozen=True)
class EngineChoice:
    """Where a (FLOP class, dtype) runs: the engine's name, the dtype it runs at, the engine."""

    name: str
    dtype: str
    engine: object

    key: str = ""

    @property
    def peak_flops(self) -> float:
        return self.engine.peak_flops[self.dtype]


@dataclass
class DeviceInfo:
    """Per-device constants of the cost model (derived once, see :func:`device_info`)."""

    device: object
    main_memory: str
    on_chip: list[str]
    matrix_granule: tuple[float, float]
    scale_up_link: str | None
    _engines: dict = field(default_factory=dict)
    _placements: dict = field(default_factory=dict)
    memory_key: dict[str, str] = field(default_factory=dict)   # level -> "memory:<level>"
    link_key: dict[str, str] = field(default_factory=dict)     # link -> "link:<link>"
    resource: dict[str, object] = field(default_factory=dict)  # key -> MemoryLevel or Link
    memo: dict = field(default_factory=dict)   # operator signature -> (Demands, time_s, bound)

    def engine_for(self, flop_class: str, dtype: str) -> EngineChoice:
        """The engine and dtype that run FLOPs of ``flop_class`` at ``dtype`` on this device."""
        key = (flop_class, dtype)
        choice = self._engines.get(key)
        if choice is None:
            choice = self._engines[key] = _choose_engine(self.device, flop_class, dtype)
        return choice

    def placement(self, placement: str) -> tuple[str, str | None]:
        """(memory level, link or None) holding tensors with ``placement``."""
        found = self._placements.get(placement)
        if found is None:
            found = self._placements[placement] = _placement_level(self.device, self.main_memory, placement)
        return found

    def granule(self, choice: EngineChoice | None) -> tuple[float, float]:
        """Tile granule (rows, cols) of the engine ``choice``: only matrix engines pad."""
        if choice is not None and choice.engine.kind == "matrix":
            return self.matrix_granule
        return NO_GRANULE

    @property
    def cache_level(self) -> str | None:
        """The outermost on-chip level: the cache in front of main memory (None if none)."""
        return self.on_chip[-1] if self.on_chip else None


def _choose_engine(device, flop_class: str, dtype: str) -> EngineChoice:
    if flop_class == "special" and "sfu" in device.engines:
        order = [("sfu", device.engines["sfu"])]
    else:
        order = []
    promotion = PROMOTION.get(dtype, (dtype,))

    def fastest_first(item):
        # among engines of one kind, the highest peak at the first dtype of the promotion it runs
        _name, engine = item
        return -next((engine.peak_flops[d] for d in promotion if d in engine.peak_flops), 0.0)

    for kind in ENGINE_PREFERENCE[flop_class]:
        same_kind = [(n, e) for n, e in device.engines.items() if e.kind == kind]
        order += sorted(same_kind, key=fastest_first)
    # An fp32 GEMM may not silently drop to TF32: only an explicit fp32 peak counts.
    for name, engine in order:
        candidates = [d for d in promotion if d in engine.peak_flops]
        if candidates:
            best = candidates[0]
            return EngineChoice(name, best, engine, f"compute:{name}")
    raise InputError(f"device '{device.id}' has no engine that runs {flop_class} FLOPs at {dtype} "
                     f"(engines: {', '.join(device.engines) or 'none'})", path="engines")


def _placement_level(device, main_memory: str, placement: str) -> tuple[str, str | None]:
    if placement == "device":
        return main_memory, None
    if placement not in PLACEMENT_TIERS:
        raise InputError(f"unknown placement '{placement}'; expected device, host or cxl", path="placement")
    level_kind, link_kinds = PLACEMENT_TIERS[placement]
    level = next((n for n, lv in device.memory.items() if lv.kind == level_kind), None)
    if level is None:
        raise InputError(f"a tensor is placed in {placement} memory but device '{device.id}' has no memory "
                         f"level of kind '{level_kind}'; add one under 'memory' or place the tensor on "
                         f"the device", path="memory")
    link = None
    for kind in link_kinds:
        link = next((n for n, lk in device.links.items() if lk.kind == kind), None)
        if link is not None:
            break
    return level, link


def _scale_up_link(device) -> str | None:
    """The fastest link that joins accelerators (CXL links lead to memory, not to peers)."""
    peers = {n: lk for n, lk in device.links.items() if lk.kind != "cxl"}
    if not peers:
        return None
    return max(peers, key=lambda n: peers[n].bandwidth_bytes_s)


_INFO: OrderedDict[int, DeviceInfo] = OrderedDict()


def all_device_infos() -> list[DeviceInfo]:
    """Every cached DeviceInfo (for clearing their cost memos)."""
    return list(_INFO.values())


def device_info(device) -> DeviceInfo:
    """The cost model's derived constants for ``device`` (cached per device object)."""
    key = id(device)
    info = _INFO.get(key)
    if info is not None and info.device is device:
        _INFO.move_to_end(key)
        return info
    info = DeviceInfo(
        device=device,
        main_memory=device.main_memory,
        on_chip=[n for n, lv in device.memory.items() if lv.on_chip],
        matrix_granule=TILE_GRANULE.get(device.kind, NO_GRANULE),
        scale_up_link=_scale_up_link(device),
        memory_key={name: f"memory:{name}" for name in device.memory},
        link_key={name: f"link:{name}" for name in device.links},
    )
    info.resource = {**{f"memory:{n}": lv for n, lv in device.memory.items()},
                     **{f"link:{n}": lk for n, lk in device.links.items()}}
    _INFO[key] = info
    if len(_INFO) > _CACHE_SIZE:
        _INFO.popitem(last=False)
    return info


@contextmanager
def register_info(device, info: DeviceInfo):
    """Within the block, :func:`device_info` of ``device`` is ``info`` (a view of a device whose
    rates are arrays, see :mod:`roofline.variants`: its choices come from the base device)."""
    key = id(device)
    _INFO[key] = info
    try:
        yield info
    finally:
        _INFO.pop(key, None)
