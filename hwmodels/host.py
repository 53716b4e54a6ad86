"""The ``host`` device: this machine's CPU, detected at run time.

Facts are read from ``/proc/cpuinfo``, ``/proc/meminfo``, ``/sys/devices/system/cpu`` and
``os.cpu_count`` (with numpy's CPU feature detection as a fallback for SIMD flags). Peaks are
arithmetic on those facts: physical cores x clock x SIMD lanes x 2 (FMA) x FMA pipes; the ``sfu``
engine (kind ``scalar``) prices transcendental functions as the SIMD instruction sequences that
evaluate them on a CPU (:data:`TRANSCENDENTAL_SLOTS` FMA-pipe slots each). What
cannot be detected (FMA pipes per core, DRAM bandwidth, TDP, latencies) takes a conservative
default, listed in the device's ``notes``; ``ridgeline calibrate`` replaces them with
measurements.
"""

from __future__ import annotations

import contextlib
import os
import platform
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from .units import format_quantity_exact

DEFAULT_CLOCK_HZ = 2.0e9
DEFAULT_DRAM_BYTES = 8 * 2**30
DRAM_BYTES_S_PER_CORE = 6e9       # conservative share of DRAM bandwidth per core when undetectable
DRAM_BYTES_S_MAX = 200e9
WATTS_PER_CORE = 5.0              # conservative TDP share per core when undetectable
# Bytes per cycle per core that each cache level can deliver (typical of recent x86/Arm cores).
CACHE_BYTES_PER_CYCLE = {1: None, 2: 32, 3: 16}   # L1: two loads of one SIMD vector per cycle
CACHE_LATENCY_CYCLES = {1: 5, 2: 14, 3: 50}
DEFAULT_CACHES = {1: 32 * 1024, 2: 1024 * 1024, 3: 8 * 1024 * 1024}   # per instance when undetectable
# A CPU has no special-function unit: a transcendental (exp, tanh, erf, log) is a sequence of SIMD
# instructions, as SVML, SLEEF and numpy's AVX2/AVX-512/NEON loops evaluate it. Vector
# instructions (each one FMA-pipe slot per lane) per evaluation, by precision:
#   fp32: range reduction 3 (scale by 1/ln2, round, Cody-Waite FMA) + a degree-6 polynomial by
#         Horner 6 + reconstruction 2 (exponent shift and add, or tanh's 1 - 2/(e^2x + 1)) +
#         special values 3 (abs/sign, compare, blend) + 2 for the table index or division = 16;
#   fp64: the same with a degree-11 polynomial (53-bit mantissa) = 21.
TRANSCENDENTAL_SLOTS = {"fp32": 16, "fp64": 21}


@dataclass
class HostFacts:
    """What could be detected about this machine; None where a figure was not found."""

    model: str = "unknown CPU"
    arch: str = ""
    physical_cores: int = 1
    logical_cpus: int = 1
    clock_hz: float | None = None
    flags: set[str] = field(default_factory=set)
    # cache level -> (bytes per instance, number of instances)
    caches: dict[int, tuple[int, int]] = field(default_factory=dict)
    dram_bytes: int | None = None


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _size(text: str) -> int | None:
    text = text.strip().upper()
    scale = {"K": 1024, "M": 1024**2, "G": 1024**3}
    try:
        if text and text[-1] in scale:
            return int(float(text[:-1]) * scale[text[-1]])
        return int(text) if text else None
    except ValueError:
        return None


def parse_cpuinfo(text: str) -> tuple[str | None, set[str], float | None, int | None]:
    """Model name, flags, clock (Hz) and physical core count from ``/proc/cpuinfo`` text."""
    model = None
    flags: set[str] = set()
    mhz = None
    cores: set[tuple[str, str]] = set()
    block: dict[str, str] = {}
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if "core id" in block:
                cores.add((block.get("physical id", "0"), block["core id"]))
            block = {}
            continue
        key, _, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        block[key] = value
        if key in ("model name", "cpu model", "hardware") and model is None and value:
            model = value
        elif key in ("flags", "features"):
            flags |= set(value.lower().split())
        elif key == "cpu mhz" and mhz is None:
            with contextlib.suppress(ValueError):
                mhz = float(value)
    return model, flags, (mhz * 1e6 if mhz and mhz > 0 else None), (len(cores) or None)


def _numpy_flags() -> set[str]:
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:
        try:
            from numpy.core._multiarray_umath import __cpu_features__
        except ImportError:
            return set()
    mapping = {"AVX512F": "avx512f", "AVX2": "avx2", "FMA3": "fma", "AVX": "avx", "SSE2": "sse2",
               "ASIMD": "asimd", "SVE": "sve", "AVX512_BF16": "avx512_bf16"}
    return {mapping[k] for k, v in __cpu_features__.items() if v and k in mapping}


def detect_facts(root: Path = Path("/")) -> HostFacts:
    """Read what this machine says about itself (``root`` lets tests point at a fake tree)."""
    facts = HostFacts(arch=platform.machine())
    model, flags, mhz, cores = parse_cpuinfo(_read(root / "proc/cpuinfo"))
    facts.model = model or platform.processor() or "unknown CPU"
    facts.flags = flags or _numpy_flags()
    logical = os.cpu_count() or 1
    facts.logical_cpus = logical
    facts.physical_cores = min(cores or logical, logical)
    max_khz = _read(root / "sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").strip()
    facts.clock_hz = float(max_khz) * 1e3 if max_khz.isdigit() else mhz
    cpu_dir = root / "sys/devices/system/cpu"
    instances: dict[int, set[str]] = {}
    sizes: dict[int, int] = {}
    for index in sorted(cpu_dir.glob("cpu[0-9]*/cache/index[0-9]*")):
        kind = _read(index / "type").strip()
        level = _read(index / "level").strip()
        size = _size(_read(index / "size"))
        if kind == "Instruction" or not level.isdigit() or not size:
            continue
        lvl = int(level)
        sizes[lvl] = size
        instances.setdefault(lvl, set()).add(_read(index / "shared_cpu_list").strip())
    facts.caches = {lvl: (sizes[lvl], max(1, len(instances[lvl]))) for lvl in sizes}
    for line in _read(root / "proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                facts.dram_bytes = int(parts[1]) * 1024
    return facts


def simd_bits(flags: set[str]) -> int:
    """Width in bits of the widest SIMD registers the flags announce (64 = scalar only)."""
    if "avx512f" in flags:
        return 512
    if "avx2" in flags or "avx" in flags:
        return 256
    if {"sse2", "asimd", "neon", "sve"} & flags:
        return 128
    return 64


def fma_pipes(flags: set[str]) -> int:
    """FMA pipes per core: 2 on cores with FMA and AVX2/AVX-512/NEON (Haswell, Zen, Neoverse
    and later servers have two); 1 otherwise. Not detectable, so a stated assumption."""
    return 2 if ("fma" in flags and ("avx2" in flags or "avx512f" in flags)) or "asimd" in flags else 1


def sfu_peaks(vector_fp32_flops: float) -> dict[str, str]:
    """Transcendental evaluations per second per dtype, from the vector fp32 peak (FLOP/s):
    FMA-pipe slots per second (peak / 2 FLOP per FMA, halved again for fp64's half-width lanes)
    over :data:`TRANSCENDENTAL_SLOTS` slots per evaluation."""
    slots = {"fp32": vector_fp32_flops / 2.0, "fp64": vector_fp32_flops / 4.0}
    return {dt: _fmt(slots[dt] / n, "FLOP/s") for dt, n in TRANSCENDENTAL_SLOTS.items()}


def sfu_note() -> str:
    return ("no special-function hardware: exp/tanh/erf as SIMD instruction sequences (SVML/SLEEF/numpy "
            "style), " + ", ".join(f"{n} FMA-pipe slots per {dt} evaluation"
                                   for dt, n in TRANSCENDENTAL_SLOTS.items())
            + "; one special FLOP = one evaluation")


# Units of the figures computed here -> their kind, to write them with SI prefixes (as the catalog does).
_KIND_OF_UNIT = {"FLOP/s": "compute_rate", "B/s": "bandwidth", "B": "capacity", "W": "power"}


def _fmt(value: float, unit: str) -> str:
    """``value`` in ``unit`` as a YAML quantity: with an SI prefix, read back exactly."""
    if unit in _KIND_OF_UNIT:
        return format_quantity_exact(value, _KIND_OF_UNIT[unit])
    return f"{value:.12g} {unit}"


def raw_from_facts(f: HostFacts) -> dict:
    """The YAML-form description of a host with these facts (peaks by arithmetic)."""
    notes = []
    clock = f.clock_hz
    if not clock:
        clock = DEFAULT_CLOCK_HZ
        notes.append(f"clock not detected: assumed {DEFAULT_CLOCK_HZ / 1e9:g} GHz")
    cores = max(1, f.physical_cores)
    width = simd_bits(f.flags)
    pipes = fma_pipes(f.flags)
    fp32 = cores * clock * (width / 32) * 2 * pipes
    notes.append(f"vector peak = {cores} physical cores x {clock / 1e9:.3g} GHz x {width}-bit SIMD x "
                 f"2 FLOP (FMA) x {pipes} FMA pipes per core (pipes assumed, not detectable)")
    vector = {"fp32": _fmt(fp32, "FLOP/s"), "fp64": _fmt(fp32 / 2, "FLOP/s")}
    if "avx512_bf16" in f.flags:
        vector["bf16"] = _fmt(2 * fp32, "FLOP/s")
    if {"avx512_vnni", "avx_vnni"} & f.flags:
        vector["int8"] = _fmt(4 * fp32, "FLOP/s")
    engines: dict = {"vector": {"kind": "vector", "units": cores, "peak": vector},
                     "sfu": {"kind": "scalar", "units": cores, "peak": sfu_peaks(fp32),
                             "notes": sfu_note()}}
    if "amx_bf16" in f.flags:
        # One AMX TMUL per core: 16x16 tile of 32-deep bf16 dot products every 16 cycles.
        amx = {"bf16": _fmt(cores * clock * 1024, "FLOP/s")}
        if "amx_int8" in f.flags:
            amx["int8"] = _fmt(cores * clock * 2048, "FLOP/s")
        engines["amx"] = {"kind": "matrix", "units": cores, "peak": amx}

    memory: dict = {}
    caches = dict(f.caches)
    for lvl, default in DEFAULT_CACHES.items():
        if lvl not in caches:
            caches[lvl] = (default, 1 if lvl == 3 else cores)
            notes.append(f"L{lvl} size not detected: assumed {default // 1024} KiB per instance")
    for lvl in sorted(caches):
        if lvl > 3:
            continue
        size, count = caches[lvl]
        per_cycle = 2 * width / 8 if lvl == 1 else CACHE_BYTES_PER_CYCLE[lvl]
        memory[f"l{lvl}"] = {
            "kind": "sram" if lvl == 1 else "l2",
            "capacity": _fmt(size * count, "B"),
            "bandwidth": _fmt(cores * clock * per_cycle, "B/s"),
            "latency": _fmt(CACHE_LATENCY_CYCLES[lvl] / clock * 1e9, "ns"),
            "energy_per_byte": {1: "0.6 pJ/B", 2: "1.5 pJ/B", 3: "3 pJ/B"}[lvl],
        }
    dram = f.dram_bytes
    if not dram:
        dram = DEFAULT_DRAM_BYTES
        notes.append("memory size not detected: assumed 8 GiB")
    dram_bw = min(cores * DRAM_BYTES_S_PER_CORE, DRAM_BYTES_S_MAX)
    memory["dram"] = {"kind": "ddr", "capacity": _fmt(dram, "B"), "bandwidth": _fmt(dram_bw, "B/s"),
                      "latency": "100 ns", "energy_per_byte": "65 pJ/B"}
    tdp = max(15.0, cores * WATTS_PER_CORE)
    notes.append(f"not detectable, conservative defaults: DRAM bandwidth {DRAM_BYTES_S_PER_CORE / 1e9:g} "
                 f"GB/s per core (at most {DRAM_BYTES_S_MAX / 1e9:g} GB/s), cache bandwidths "
                 "(L1 two vector loads, L2 32 B, L3 16 B per cycle per core), latencies, "
                 f"TDP {WATTS_PER_CORE:g} W per core, static power 30% of TDP, energy coefficients "
                 "(Horowitz 45 nm x0.25 node scaling x3 operand delivery, as in the catalog CPUs)")
    notes.append("run `ridgeline calibrate` to measure this machine and make these figures real")
    simd = sorted(f.flags & {"sse2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni",
                             "avx_vnni", "amx_bf16", "amx_int8", "amx_tile", "asimd", "sve"})
    return {
        "id": "host",
        "name": f"{f.model} ({cores} cores, detected)",
        "kind": "cpu",
        "source": (f"detected at run time on this machine: /proc/cpuinfo, /proc/meminfo, "
                   f"/sys/devices/system/cpu, os.cpu_count(); arch {f.arch or 'unknown'}, "
                   f"{f.logical_cpus} logical CPUs, SIMD flags: {', '.join(simd) or 'none'}"),
        "notes": "; ".join(notes),
        "engines": engines,
        "memory": memory,
        "links": {},
        "power": {
            "static": _fmt(0.3 * tdp, "W"),
            "tdp": _fmt(tdp, "W"),
            "energy_per_flop": {"fp64": "6.9 pJ/FLOP", "fp32": "1.725 pJ/FLOP", "tf32": "1.725 pJ/FLOP",
                                "bf16": "0.56 pJ/FLOP", "fp16": "0.56 pJ/FLOP", "fp8": "0.28 pJ/FLOP",
                                "int8": "0.086 pJ/FLOP", "int4": "0.043 pJ/FLOP"},
        },
        "launch_overhead": "1 us",
    }


@lru_cache(maxsize=1)
def host_raw() -> dict:
    """This machine's YAML-form description (detected once per process)."""
    return raw_from_facts(detect_facts())
