"""What a device is, resolved: engines, memory levels, links and power in SI floats.

A :class:`Device` is built from a validated :class:`~hwmodels.schema.DeviceSpec` (the YAML
form, after ``extends:``). Derived peaks (systolic arrays, FPGA DSP fabrics) are computed
here; default efficiencies come from :mod:`hwmodels.defaults`. The YAML-form dictionary is
kept with the device so that :meth:`Device.with_overrides` and ``ridgeline hw show`` work on
what the user wrote.
"""

from __future__ import annotations

import copy
import math
import re
from bisect import bisect_right
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError

from .defaults import active_power_w, engine_efficiency, memory_efficiency
from .errors import InputError, Problem
from .kinds import CurveAxis, DeviceKind, EngineKind, LinkKind, MemoryKind
from .schema import (
    DERIVED_PEAK_TOLERANCE,
    CurveSpec,
    DeviceSpec,
    DspSpec,
    EngineSpec,
    LinkSpec,
    MemoryLevelSpec,
    SystolicSpec,
    _on_chip,
    quantity_fields,
)
from .units import COMPUTABLE, format_quantity, implausible, parse_quantity
from .yamlio import Document, validation_problems

FLOP_PER_MAC = 2


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def interp_clamped(x: float, xs: Sequence[float], ys: Sequence[float]) -> float:
    """Piecewise-linear interpolation through ``(xs, ys)``, clamped at both ends (as numpy.interp)."""
    if x <= xs[0]:
        return ys[0]
    if x >= xs[-1]:
        return ys[-1]
    i = bisect_right(xs, x)
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


class Curve(_Frozen):
    """Efficiency versus log10 of the problem size, piecewise linear, clamped at both ends."""

    x: CurveAxis
    points: list[tuple[float, float]]

    @cached_property
    def xs(self) -> tuple[float, ...]:
        """The points' x values (log10 of FLOPs or bytes)."""
        return tuple(float(p[0]) for p in self.points)

    @cached_property
    def ys(self) -> tuple[float, ...]:
        """The points' efficiencies."""
        return tuple(float(p[1]) for p in self.points)

    def at(self, x: float) -> float:
        """Efficiency at ``x`` (already log10 of FLOPs or bytes)."""
        return interp_clamped(x, self.xs, self.ys)

    def efficiency(self, amount: float) -> float:
        """Efficiency for a problem of ``amount`` FLOPs or bytes (per :attr:`x`)."""
        if amount <= 0:
            return self.points[0][1]
        return self.at(math.log10(amount))


class Engine(_Frozen):
    """A compute engine: peak FLOP/s per dtype (already derived), parallel units, efficiency."""

    kind: EngineKind
    peak_flops: dict[str, float]
    units: int = 1
    efficiency: float
    efficiency_curve: dict[str, Curve] | None = None
    # Units of a cluster fed by one cache read of an operand tile (multicast); 1 = no sharing.
    operand_multicast: int = 1
    # Fused-attention kernel family it runs (roofline.efficiency.ATTENTION_KERNELS); None = default.
    attention_kernel: str | None = None
    # Fraction of the peak a kernel issuing warp-level MMAs (mma.sync) reaches (Hopper: about 2/3).
    warp_mma_fraction: float = 1.0
    # Per dtype, the rate with an fp16 accumulator where it differs from peak_flops (GeForce).
    fp16_accumulate_flops: dict[str, float] = {}


class MemoryLevel(_Frozen):
    """One memory level: capacity (B), peak bandwidth (B/s), latency (s), energy (J/B)."""

    kind: MemoryKind
    capacity_bytes: float
    bandwidth_bytes_s: float
    latency_s: float
    energy_j_per_byte: float
    efficiency: float
    efficiency_curve: Curve | None = None
    on_chip: bool


class Link(_Frozen):
    """A link: bandwidth per direction (B/s, aggregate over ``ports``), latency, energy per byte."""

    kind: LinkKind
    bandwidth_bytes_s: float
    latency_s: float
    energy_j_per_byte: float
    ports: int = 1
    topology: str | None = None
    in_network_reduction: bool = False

    def using_ports(self, ports: int) -> Link:
        """The same link restricted to ``ports`` of its ports (bandwidth scaled accordingly)."""
        ports = min(ports, self.ports)
        return self.model_copy(update={"bandwidth_bytes_s": self.bandwidth_bytes_s * ports / self.ports,
                                       "ports": ports})


class Power(_Frozen):
    """Static (idle) power, the active baseline drawn while any work runs, TDP (W), and dynamic
    energy per FLOP per dtype (J/FLOP). ``static_w <= active_w <= tdp_w``. ``energy_basis``: the
    catalog part of the same chip whose TDP rule the energy per FLOP follows (None: this one).
    ``limit_w``: a board power limit set below the TDP (None: the TDP); :attr:`cap_w` is what
    the simulator's power cap holds the device to."""

    static_w: float
    active_w: float
    tdp_w: float
    energy_j_per_flop: dict[str, float]
    energy_basis: str | None = None
    limit_w: float | None = None

    @property
    def cap_w(self) -> float:
        """The power the device may draw: its board limit, or its TDP when none is set."""
        return self.tdp_w if self.limit_w is None else self.limit_w


class Device(_Frozen):
    """A resolved hardware device; every number is an SI float. See docs/internals.md."""

    id: str
    name: str
    kind: DeviceKind
    source: str
    notes: str = ""
    engines: dict[str, Engine]
    memory: dict[str, MemoryLevel]
    links: dict[str, Link]
    power: Power
    launch_overhead_s: float
    threads: int | None = None      # CPU threads the rates were measured with (calibration overlays)

    _raw: dict = PrivateAttr(default_factory=dict)
    _origin: str = PrivateAttr(default="")
    _warnings: list = PrivateAttr(default_factory=list)
    _fp16_accumulate: Device | None = PrivateAttr(default=None)

    @property
    def main_memory(self) -> str:
        """Name of the first off-chip memory level (where tensors placed on the device live)."""
        return next(name for name, level in self.memory.items() if not level.on_chip)

    @property
    def raw(self) -> dict:
        """A copy of the YAML-form description (after ``extends:``)."""
        return copy.deepcopy(self._raw)

    @property
    def warnings(self) -> list[Problem]:
        """Values outside the range of real hardware (legal, but probably typos), by field."""
        return list(self._warnings)

    @property
    def origin(self) -> str:
        """Where this device was read from (a file, a catalog id, or 'detected')."""
        return self._origin

    def peak_flops(self, dtype: str) -> float:
        """The highest peak over all engines for ``dtype`` (0 when no engine supports it)."""
        return max((e.peak_flops.get(dtype, 0.0) for e in self.engines.values()), default=0.0)

    def with_fp16_accumulate(self) -> Device:
        """This device as GEMMs that accumulate in fp16 see it: every engine's peak for a dtype it
        states an ``fp16_accumulate_peak`` for is that rate, and the dtype's energy per FLOP is
        scaled by the old peak over the new (the catalog's TDP rule: a large kernel at the default
        efficiency draws the TDP at either rate). The device itself when no engine states one;
        the copy is made once per device."""
        if not any(e.fp16_accumulate_flops for e in self.engines.values()):
            return self
        if self._fp16_accumulate is None:
            engines, energy = {}, dict(self.power.energy_j_per_flop)
            for name, engine in self.engines.items():
                peak = dict(engine.peak_flops)
                for dtype, rate in engine.fp16_accumulate_flops.items():
                    if dtype in energy:
                        energy[dtype] *= peak[dtype] / rate
                    peak[dtype] = rate
                engines[name] = engine.model_copy(update={"peak_flops": peak})
            power = self.power.model_copy(update={"energy_j_per_flop": energy})
            self._fp16_accumulate = self.model_copy(update={"engines": engines, "power": power})
        return self._fp16_accumulate

    def with_overrides(self, overrides: dict[str, Any]) -> Device:
        """A copy with YAML-form values replaced at dotted paths, e.g.
        ``{"memory.hbm.bandwidth": "4.8 TB/s"}``; a value of None removes the field."""
        raw = apply_overrides(self._raw, overrides)
        return device_from_raw(raw, Document(raw, "<overrides>", {}), origin=self._origin)

    def describe(self) -> dict:
        """The resolved YAML form (after ``extends:``), with every derived peak written out."""
        out = {k: v for k, v in self.raw.items() if k != "extends"}
        for name, engine in self.engines.items():
            spec = out["engines"][name]
            if "systolic" in spec or "dsp" in spec:
                spec["peak"] = {d: format_quantity(v, "compute_rate", 6) for d, v in engine.peak_flops.items()}
            spec.setdefault("units", engine.units)
            spec.setdefault("efficiency", engine.efficiency)
        for name, level in self.memory.items():
            out["memory"][name].setdefault("efficiency", level.efficiency)
            out["memory"][name].setdefault("on_chip", level.on_chip)
        out["power"].setdefault("active", format_quantity(self.power.active_w, "power"))
        return out


def apply_overrides(raw: dict, overrides: dict[str, Any]) -> dict:
    """``raw`` (deep-copied) with ``overrides`` (dotted path -> YAML value) applied."""
    if not isinstance(overrides, dict):
        raise InputError(f"overrides must be a mapping of dotted paths to values, got "
                         f"{type(overrides).__name__}")
    out = copy.deepcopy(raw)
    for dotted_path, value in overrides.items():
        parts = str(dotted_path).split(".")
        if not all(parts):
            raise InputError("empty component in override path", path=str(dotted_path))
        node = out
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise InputError(f"'{'.'.join(parts[:i + 1])}' is not a mapping; cannot set a field in it",
                                 path=str(dotted_path))
            node = child
        if value is None:
            node.pop(parts[-1], None)
        else:
            node[parts[-1]] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    """``value`` as YAML would give it: tuples as lists, numpy scalars as Python numbers."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and not isinstance(value, (str, bytes)):
        try:
            return value.item()
        except (TypeError, ValueError):
            return value
    return value


_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")


def key_problems(data: Any, doc: Document, path: tuple = ()) -> list[Problem]:
    """Mapping keys that are not plain names (letters, digits, '_', '-'). Dotted override paths
    and error locations rely on plain names, so anything else is refused up front."""
    problems: list[Problem] = []
    if isinstance(data, dict):
        for key, value in data.items():
            if not isinstance(key, str) or not _NAME_RE.match(key):
                problems.append(doc.problem(f"'{key}' is not a plain name (letters, digits, '_' or '-')",
                                            (*path, key)))
            elif key == "overrides" and isinstance(value, dict):
                # keys here are dotted paths into the device ("memory.hbm.bandwidth")
                for dotted_path in value:
                    parts = str(dotted_path).split(".")
                    if not isinstance(dotted_path, str) or not all(_NAME_RE.match(p) for p in parts):
                        problems.append(doc.problem(f"'{dotted_path}' is not a dotted path of plain names",
                                                    (*path, key, dotted_path)))
            else:
                problems += key_problems(value, doc, (*path, key))
    elif isinstance(data, list):
        for i, item in enumerate(data):
            problems += key_problems(item, doc, (*path, i))
    return problems


def in_file_order(problems: list[Problem]) -> list[Problem]:
    """``problems`` sorted by file and line, as a reader goes through them."""
    return sorted(problems, key=lambda p: (p.file or "", p.line or 0))


def validate_spec(raw: dict, doc: Document, spec_cls):
    """``raw`` validated as ``spec_cls``; every key and schema problem raised at once, in file order."""
    bad_keys = key_problems(raw, doc)
    if bad_keys:
        raise InputError(problems=in_file_order(bad_keys))
    try:
        return spec_cls.model_validate(raw)
    except ValidationError as exc:
        raise InputError(problems=in_file_order(validation_problems(exc, doc, spec_cls))) from None


def _derived_peak(derivation: SystolicSpec | DspSpec) -> dict[str, float]:
    clock = parse_quantity(derivation.clock, "frequency")
    if isinstance(derivation, SystolicSpec):
        cells = derivation.rows * derivation.cols * derivation.arrays
        return {d: cells * FLOP_PER_MAC * m * clock for d, m in derivation.macs_per_cell.items()}
    return {d: derivation.slices * clock * ops for d, ops in derivation.ops_per_dsp.items()}


def _curve(spec: CurveSpec | None) -> Curve | None:
    if spec is None:
        return None
    return Curve(x=spec.x, points=[(float(x), float(e)) for x, e in spec.points])


def _engine(name: str, spec: EngineSpec, doc: Document, problems: list[Problem]) -> Engine | None:
    path = ("engines", name)
    stated = {d: parse_quantity(v, "compute_rate") for d, v in (spec.peak or {}).items()}
    derivation = spec.systolic or spec.dsp
    if derivation is None:
        peak = stated
    else:
        peak = _derived_peak(derivation)
        low, high = COMPUTABLE["compute_rate"]
        for dtype, value in peak.items():
            if not low <= value <= high:
                problems.append(doc.problem(
                    f"the derived {dtype} peak {value:.3g} FLOP/s is outside the range Ridgeline can compute "
                    f"with: {low:g} to {high:g} FLOP/s", (*path, "systolic" if spec.systolic else "dsp")))
        for dtype, value in stated.items():
            if dtype not in peak:
                peak[dtype] = value
            elif abs(value - peak[dtype]) > DERIVED_PEAK_TOLERANCE * peak[dtype]:
                problems.append(doc.problem(
                    f"stated peak {format_quantity(value, 'compute_rate')} disagrees with the derived "
                    f"{format_quantity(peak[dtype], 'compute_rate')} by more than "
                    f"{DERIVED_PEAK_TOLERANCE:.0%}", (*path, "peak", dtype)))
    units = spec.units or (spec.systolic.arrays if spec.systolic else 1)
    curves = {d: _curve(c) for d, c in spec.efficiency_curve.items()} if spec.efficiency_curve else None
    fp16_acc = {d: parse_quantity(v, "compute_rate") for d, v in (spec.fp16_accumulate_peak or {}).items()}
    for dtype in fp16_acc:
        if dtype not in peak:
            problems.append(doc.problem(f"fp16_accumulate_peak names {dtype}, which the engine has no peak for",
                                        (*path, "fp16_accumulate_peak", dtype)))
    return Engine(kind=spec.kind, peak_flops=peak, units=units,
                  efficiency=spec.efficiency or engine_efficiency(spec.kind), efficiency_curve=curves,
                  operand_multicast=spec.operand_multicast or 1, attention_kernel=spec.attention_kernel,
                  warp_mma_fraction=spec.warp_mma_fraction or 1.0, fp16_accumulate_flops=fp16_acc)


def _memory(spec: MemoryLevelSpec) -> MemoryLevel:
    return MemoryLevel(
        kind=spec.kind,
        capacity_bytes=parse_quantity(spec.capacity, "capacity"),
        bandwidth_bytes_s=parse_quantity(spec.bandwidth, "bandwidth"),
        latency_s=parse_quantity(spec.latency, "time", allow_zero=True),
        energy_j_per_byte=parse_quantity(spec.energy_per_byte, "energy_per_byte", allow_zero=True),
        efficiency=spec.efficiency or memory_efficiency(spec.kind),
        efficiency_curve=_curve(spec.efficiency_curve),
        on_chip=_on_chip(spec),
    )


def link_from_spec(spec: LinkSpec) -> Link:
    """The resolved :class:`Link` of a YAML-form link."""
    return Link(
        kind=spec.kind,
        bandwidth_bytes_s=parse_quantity(spec.bandwidth, "bandwidth"),
        latency_s=parse_quantity(spec.latency, "time", allow_zero=True),
        energy_j_per_byte=parse_quantity(spec.energy_per_byte, "energy_per_byte", allow_zero=True),
        ports=spec.ports,
        topology=spec.topology,
        in_network_reduction=spec.in_network_reduction,
    )


def _peak_path(name: str, spec: EngineSpec, dtype: str) -> tuple:
    """Where the YAML says that engine ``name`` supports ``dtype``."""
    if spec.peak and dtype in spec.peak:
        return ("engines", name, "peak", dtype)
    if spec.systolic is not None:
        return ("engines", name, "systolic", "macs_per_cell", dtype)
    return ("engines", name, "dsp", "ops_per_dsp", dtype)


def _power_limit(power, active_w: float, tdp_w: float, doc: Document, problems: list) -> float | None:
    """The board power limit of a ``power`` spec in W (None when unset). It must leave power for
    work above the active baseline, and a limit is a setting below the TDP, not above it."""
    if power.limit is None:
        return None
    limit = parse_quantity(power.limit, "power")
    if not active_w < limit <= tdp_w:
        problems.append(doc.problem(
            f"power limit {power.limit} must lie above the active baseline ({active_w:g} W) and at most "
            f"the TDP {power.tdp}", ("power", "limit")))
    return limit


def device_from_raw(raw: Any, doc: Document, origin: str = "") -> Device:
    """Validate a YAML-form mapping (``extends:`` already merged) and resolve it.

    Every problem found is reported at once, located through ``doc``.
    """
    if not isinstance(raw, dict):
        raise doc.error(f"expected a mapping of fields at the top level, got {type(raw).__name__}")
    spec = validate_spec(raw, doc, DeviceSpec)
    problems: list[Problem] = []
    engines = {name: _engine(name, e, doc, problems) for name, e in spec.engines.items()}
    energy = {d: parse_quantity(v, "energy_per_flop", allow_zero=True)
              for d, v in spec.power.energy_per_flop.items()}
    reported: set[str] = set()
    for name, engine_spec in spec.engines.items():
        for dtype in engines[name].peak_flops:
            if dtype not in energy and dtype not in reported:
                reported.add(dtype)
                problems.append(doc.problem(
                    f"engine '{name}' supports {dtype} but power.energy_per_flop has no '{dtype}' entry",
                    _peak_path(name, engine_spec, dtype)))
    static = parse_quantity(spec.power.static, "power", allow_zero=True)
    tdp = parse_quantity(spec.power.tdp, "power")
    if static > tdp:
        problems.append(doc.problem(f"static power {spec.power.static} exceeds the TDP {spec.power.tdp}",
                                    ("power", "static")))
    if spec.power.active is None:
        active = active_power_w(spec.kind, static, tdp)
    else:
        active = parse_quantity(spec.power.active, "power", allow_zero=True)
        if not static <= active <= tdp:
            problems.append(doc.problem(
                f"active power {spec.power.active} must lie between the static power {spec.power.static} "
                f"and the TDP {spec.power.tdp}", ("power", "active")))
    limit = _power_limit(spec.power, active, tdp, doc, problems)
    if problems:
        raise InputError(problems=in_file_order(problems))
    device = Device(
        id=spec.id, name=spec.name, kind=spec.kind, source=spec.source.strip(), notes=spec.notes.strip(),
        engines=engines,
        memory={name: _memory(m) for name, m in spec.memory.items()},
        links={name: link_from_spec(lk) for name, lk in spec.links.items()},
        power=Power(static_w=static, active_w=active, tdp_w=tdp, energy_j_per_flop=energy,
                    energy_basis=spec.power.energy_basis, limit_w=limit),
        launch_overhead_s=parse_quantity(spec.launch_overhead, "time", allow_zero=True),
        threads=spec.threads,
    )
    device._raw = copy.deepcopy(raw)
    device._origin = origin
    device._warnings = implausible_values(spec, doc)
    return device


def implausible_values(spec, doc: Document, path: tuple = ()) -> list[Problem]:
    """A warning for each quantity of ``spec`` outside the range of real hardware."""
    out = []
    for where, kind, text in quantity_fields(spec, path):
        why = implausible(parse_quantity(text, kind, allow_zero=True), kind)
        if why:
            out.append(doc.problem(f"'{text}' {why}", where))
    return out
