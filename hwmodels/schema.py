"""The YAML form of a hardware description: what a user writes, validated field by field.

These models keep quantities as the strings the user wrote ("3.35 TB/s"), checked with
:func:`hwmodels.units.parse_quantity` so that a wrong dimension, a missing unit, NaN or a
non-positive rate is reported at its field. :mod:`hwmodels.device` turns a validated
:class:`DeviceSpec` into the resolved :class:`~hwmodels.device.Device` with SI floats.
Unknown keys are refused (``extra="forbid"``) so a misspelled field is never silently ignored.
"""

from __future__ import annotations

import json
import math
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from .dtypes import normalize_dtype
from .errors import InputError
from .kinds import (
    COMPUTE_KINDS,
    ON_CHIP_MEMORY,
    CurveAxis,
    DeviceKind,
    EngineKind,
    LinkKind,
    MemoryKind,
    Topology,
)
from .units import KINDS, parse_quantity

# A datasheet peak stated next to a derivation (systolic/DSP) must agree within this fraction.
DERIVED_PEAK_TOLERANCE = 0.01


def _quantity_checker(kind: str, allow_zero: bool):
    def check(value):
        try:
            parse_quantity(value, kind, allow_zero=allow_zero)
        except InputError as err:
            raise ValueError(err.problems[0].message) from None
        return value
    return check


@dataclass(frozen=True)
class QuantityKind:
    """Marks a field as a quantity of ``kind`` (so :func:`quantity_fields` can find it)."""

    kind: str


def _quantity(kind: str, allow_zero: bool = False):
    """A string field holding a quantity of ``kind`` (kept as written, checked strictly)."""
    example = KINDS[kind][1]
    return Annotated[str, QuantityKind(kind), BeforeValidator(_quantity_checker(kind, allow_zero)),
                     Field(description=f"{KINDS[kind][2]} with a unit, e.g. '{example}'",
                           json_schema_extra={"examples": [example]})]


def _dtype_key(name):
    if not isinstance(name, str):
        raise ValueError(f"expected a dtype name, got {name!r}")
    try:
        return normalize_dtype(name)
    except InputError as err:
        raise ValueError(str(err.problems[0].message)) from None


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


Bandwidth = _quantity("bandwidth")
Capacity = _quantity("capacity")
Latency = _quantity("time", allow_zero=True)
Frequency = _quantity("frequency")
Power = _quantity("power")
PowerOrZero = _quantity("power", allow_zero=True)
EnergyPerByte = _quantity("energy_per_byte", allow_zero=True)
EnergyPerFlop = _quantity("energy_per_flop", allow_zero=True)
ComputeRate = _quantity("compute_rate")
Dtype = Annotated[str, BeforeValidator(_dtype_key),
                  Field(description="a dtype: fp64 fp32 tf32 bf16 fp16 fp8 int8 int4")]
Fraction = Annotated[float, AfterValidator(_finite),
                     Field(gt=0, le=1, description="an achievable fraction of peak, 0 < e <= 1")]
PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, AfterValidator(_finite), Field(gt=0)]


def _at_most(bound: int):
    """A positive integer no real device exceeds by far (an error above: the figures derived from
    it would be nonsense, e.g. wave quantization over 1e26 SMs)."""
    return Annotated[int, Field(gt=0, le=bound)]


ArrayDim = _at_most(65_536)           # rows or columns of one systolic array
UnitCount = _at_most(10_000_000)      # SMs, cores, MXUs, DSP slices (a wafer-scale chip: 900,000 cores)
PortCount = _at_most(100_000)
MulticastCount = _at_most(1_024)
PerCycle = Annotated[float, AfterValidator(_finite), Field(gt=0, le=1e6)]   # MACs or ops per cell per cycle


class Spec(BaseModel):
    """Base of the YAML-form models: strict types, unknown keys refused."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class CurveSpec(Spec):
    """Efficiency as a function of problem size, piecewise linear in ``x``, clamped at both ends."""

    x: CurveAxis
    points: Annotated[list[Annotated[list[Annotated[float, AfterValidator(_finite)]],
                                     Field(min_length=2, max_length=2)]],
                      Field(min_length=1, description="[[x, efficiency], ...] with x increasing")]

    @model_validator(mode="after")
    def _increasing(self):
        if any(not 0 < e <= 1 for _x, e in self.points):
            raise ValueError("each efficiency must satisfy 0 < e <= 1")
        xs = [p[0] for p in self.points]
        if any(b <= a for a, b in zip(xs, xs[1:])):
            raise ValueError("points must have strictly increasing x")
        return self


class SystolicSpec(Spec):
    """An NPU/TPU matrix unit: peak = rows x cols x 2 FLOP x arrays x clock x macs_per_cell[dtype]."""

    rows: ArrayDim
    cols: ArrayDim
    arrays: UnitCount = Field(description="number of systolic arrays (MXUs, MMEs) on the device")
    clock: Frequency
    macs_per_cell: dict[Dtype, PerCycle] = Field(
        description="multiply-accumulates per cell per cycle for each dtype (1 for bf16; 2 where a "
                    "narrower dtype runs at twice the rate)")


class DspSpec(Spec):
    """An FPGA DSP fabric: peak = slices x clock x ops_per_dsp[dtype]."""

    slices: UnitCount
    clock: Frequency = Field(description="the kernel clock a real design closes timing at")
    ops_per_dsp: dict[Dtype, PerCycle] = Field(
        description="arithmetic ops (a MAC is 2) per DSP slice per cycle for each dtype")
    assumptions: str = Field(min_length=1, description="why each ops_per_dsp figure holds")


class EngineSpec(Spec):
    """A compute engine. Give ``peak`` per dtype, or derive it with ``systolic`` or ``dsp``.

    With a derivation, a ``peak`` stated as well (the datasheet figure) must agree with the
    derived value within 1%; the derived value is used.

    A dtype's peak is the rate with the accumulator frameworks use for it: fp32 for bf16, fp16
    and fp8 MMA. Where a card runs that at a lower rate than its headline figure (a GeForce card's
    fp32 accumulate is half its fp16-accumulate rate), the YAML gives the fp32-accumulate rate and
    says so in a comment; see ``rtx-4090.yaml``.
    """

    kind: EngineKind
    peak: dict[Dtype, ComputeRate] | None = None
    systolic: SystolicSpec | None = None
    dsp: DspSpec | None = None
    units: UnitCount | None = Field(None, description="parallel units (SMs, cores, MXUs) for wave "
                                                         "quantization; default: systolic arrays or 1")
    efficiency: Fraction | None = Field(None, description="default achievable fraction of peak; "
                                                          "default from hwmodels.defaults")
    fp16_accumulate_peak: dict[Dtype, ComputeRate] | None = Field(
        None, description="per dtype, the MMA rate with an fp16 accumulator where it is not the 'peak' "
                          "(a GeForce card runs fp16 accumulate at twice its fp32-accumulate rate); GEMMs "
                          "of a runtime that accumulates in fp16 (gemm_accumulate: fp16) run at it")
    efficiency_curve: dict[Dtype, CurveSpec] | None = None
    operand_multicast: MulticastCount | None = Field(
        None, description="units of a cluster that one read of an operand tile from the cache feeds "
                          "(Hopper TMA multicast to a 2-CTA thread-block cluster: 2); default 1")
    attention_kernel: str | None = Field(
        None, description="the fused-attention kernel family this engine runs (a name of "
                          "roofline.efficiency.ATTENTION_KERNELS, e.g. 'fa3' on Hopper); default 'fa2'")
    warp_mma_fraction: Fraction | None = Field(
        None, description="fraction of the peak a kernel issuing warp-level MMAs (mma.sync, Ampere's "
                          "instruction) reaches where the full rate needs another (Hopper's wgmma: "
                          "about 2/3); default 1")
    notes: str | None = None

    @model_validator(mode="after")
    def _one_source_of_peak(self):
        derivations = [n for n in ("systolic", "dsp") if getattr(self, n) is not None]
        if len(derivations) > 1:
            raise ValueError("give at most one of 'systolic' and 'dsp'")
        if not derivations and not self.peak:
            raise ValueError("an engine needs 'peak' (per dtype) or a derivation ('systolic' or 'dsp')")
        return self


class MemoryLevelSpec(Spec):
    """One level of the memory hierarchy."""

    kind: MemoryKind
    capacity: Capacity
    bandwidth: Bandwidth = Field(description="peak bandwidth of the level")
    latency: Latency
    energy_per_byte: EnergyPerByte
    efficiency: Fraction | None = None
    efficiency_curve: CurveSpec | None = None
    on_chip: bool | None = Field(None, description="default: true for sram and l2")
    notes: str | None = None


class LinkSpec(Spec):
    """A kind of link on a device: bandwidth per direction, aggregated over its ``ports``."""

    kind: LinkKind
    bandwidth: Bandwidth = Field(description="per direction, aggregate over all ports of this kind")
    latency: Latency
    energy_per_byte: EnergyPerByte
    ports: PortCount = 1
    topology: Topology | None = Field(
        None, description="scale-up topology this link builds (used by system_from_device)")
    in_network_reduction: bool = Field(False, description="the switch this link attaches to can "
                                                          "reduce in the network (NVLS)")
    notes: str | None = None


class PowerSpec(Spec):
    static: PowerOrZero = Field(description="power drawn when idle (leakage, clocks, fans)")
    active: PowerOrZero | None = Field(None, description=(
        "baseline power while the device executes any work, whatever its FLOPs (clocks at boost, "
        "front-ends, register files, memory PHYs busy); default: hwmodels.defaults.active_power_w"))
    tdp: Power
    limit: Power | None = Field(None, description=(
        "the board power limit this card is held to when it is set below its TDP (nvidia-smi -pl; "
        "data-centre cards ship with a configurable range): the power cap enforces it, while the "
        "active baseline and the energy per FLOP still follow the TDP (the silicon is the same); "
        "default: the TDP"))
    energy_per_flop: dict[Dtype, EnergyPerFlop] = Field(default_factory=dict)
    energy_basis: str | None = Field(None, description=(
        "catalog id of the full-power part of the same chip: its TDP rule gives this device's energy "
        "per FLOP (a lower-power card of that chip does the same work for the same energy, and its "
        "own tdp caps it); default: this device's own TDP"))
    notes: str | None = None


class DeviceSpec(Spec):
    """A device as written in YAML (after ``extends:`` has been merged)."""

    id: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    name: Annotated[str, Field(min_length=1)]
    kind: DeviceKind
    extends: str | None = Field(None, description="a catalog id or a YAML file this one overrides")
    source: Annotated[str, Field(min_length=1, description="public sources of the numbers")]
    notes: str = ""
    engines: dict[str, EngineSpec] = Field(default_factory=dict)
    memory: Annotated[dict[str, MemoryLevelSpec], Field(min_length=1)]
    links: dict[str, LinkSpec] = Field(default_factory=dict)
    power: PowerSpec
    launch_overhead: Latency = Field("0 s", description="fixed cost per operator/kernel launch")
    threads: PositiveInt | None = Field(None, description="CPU threads the rates hold for (a calibration "
                                        "overlay records the BLAS threads it measured with)")

    @model_validator(mode="after")
    def _consistent(self):
        if self.kind in COMPUTE_KINDS and not self.engines:
            raise ValueError(f"a {self.kind} needs at least one entry under 'engines'")
        if all(_on_chip(m) for m in self.memory.values()):
            raise ValueError("memory needs at least one off-chip level (hbm, gddr, ddr, lpddr, host, cxl)")
        return self


def _on_chip(level: MemoryLevelSpec) -> bool:
    return level.on_chip if level.on_chip is not None else level.kind in ON_CHIP_MEMORY


class SystemDeviceSpec(Spec):
    """``count`` copies of a device in a system, named ``name`` (count 1) or ``name0..nameN-1``."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$")]
    device: Annotated[str, Field(min_length=1, description="a catalog id or a YAML file")]
    count: PositiveInt = 1
    overrides: dict[str, object] | None = Field(None, description="dotted paths -> YAML values")


class SwitchSpec(Spec):
    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$")]
    in_network_reduction: bool = False
    notes: str | None = None


class EdgeSpec(Spec):
    """Links between nodes: ``from``/``to`` (node or group names, or lists of them; every pair is
    joined), or a ``mesh`` over a group with ``shape`` (and ``wrap`` for a torus). ``link`` names
    a link of the endpoint devices (the slower endpoint's, when both have it) or is given inline;
    ``ports`` is how many of that link's ports each edge uses (default: all of them)."""

    model_config = ConfigDict(populate_by_name=True)

    from_: str | list[str] | None = Field(None, alias="from")
    to: str | list[str] | None = None
    mesh: str | None = None
    shape: list[PositiveInt] | None = None
    wrap: bool = False
    link: str | LinkSpec
    ports: PortCount | None = None

    @model_validator(mode="after")
    def _form(self):
        pair = self.from_ is not None or self.to is not None
        if pair and self.mesh is not None:
            raise ValueError("give either 'from'/'to' or 'mesh', not both")
        if pair and (self.from_ is None or self.to is None):
            raise ValueError("an edge needs both 'from' and 'to'")
        if not pair and self.mesh is None:
            raise ValueError("an edge needs 'from' and 'to', or 'mesh' and 'shape'")
        if self.mesh is not None and not self.shape:
            raise ValueError("a mesh needs a 'shape', e.g. [2, 4]")
        return self


class SystemSpec(Spec):
    """A system: devices x count and the links between them (a graph)."""

    id: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    name: Annotated[str, Field(min_length=1)]
    kind: Literal["system"]
    source: Annotated[str, Field(min_length=1)]
    notes: str = ""
    devices: Annotated[list[SystemDeviceSpec], Field(min_length=1)]
    switches: list[SwitchSpec] = Field(default_factory=list)
    edges: list[EdgeSpec] = Field(default_factory=list)
    accelerators: list[str] | None = Field(None, description="rank order of the compute devices; "
                                                             "default: every gpu/npu/fpga in listing order")


def quantity_fields(spec: BaseModel, path: tuple = ()) -> Iterator[tuple[tuple, str, str]]:
    """``(field path, kind, text)`` of every quantity set in a validated spec, nested ones too."""
    for name, info in type(spec).model_fields.items():
        value = getattr(spec, name)
        yield from _quantities_in(value, info.annotation, info.metadata, (*path, info.alias or name))


def _quantities_in(value: Any, annotation: Any, metadata: list, path: tuple):
    kind = next((m.kind for m in metadata if isinstance(m, QuantityKind)), None)
    if kind is not None and isinstance(value, str):
        yield path, kind, value
    elif isinstance(value, BaseModel):
        yield from quantity_fields(value, path)
    elif isinstance(value, (dict, list)):
        inner, inner_meta = _item_type(annotation, dict if isinstance(value, dict) else list)
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            yield from _quantities_in(item, inner, inner_meta, (*path, key))


def _item_type(annotation: Any, container: type) -> tuple[Any, list]:
    """The (type, Annotated metadata) of the items of a ``dict[K, V]`` / ``list[V]`` annotation
    (found inside an Optional or a union too)."""
    candidates = [annotation]
    while candidates:
        tp = candidates.pop()
        origin = typing.get_origin(tp)
        if origin is Annotated:
            candidates.append(typing.get_args(tp)[0])
        elif origin is container:
            item = typing.get_args(tp)[-1]
            if typing.get_origin(item) is Annotated:
                base, *meta = typing.get_args(item)
                return base, meta
            return item, []
        elif origin is not None:
            candidates.extend(typing.get_args(tp))
    return None, []


def _without_required(schema: Any) -> Any:
    """``schema`` with every ``required`` list dropped (an overlay may set any subset)."""
    if isinstance(schema, dict):
        return {k: _without_required(v) for k, v in schema.items() if k != "required"}
    if isinstance(schema, list):
        return [_without_required(v) for v in schema]
    return schema


def json_schema() -> dict:
    """JSON Schema of a hardware YAML file, for editor completion: a device, an overlay
    (``extends:`` plus any subset of a device's fields) or a system."""
    device = DeviceSpec.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
    system = SystemSpec.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
    device_defs = device.pop("$defs", {})
    defs = {**device_defs, **system.pop("$defs", {}), "DeviceSpec": device, "SystemSpec": system}
    text = json.dumps({"Overlay": device, **{f"Overlay{k}": v for k, v in device_defs.items()}})
    overlays = _without_required(json.loads(text.replace('"#/$defs/', '"#/$defs/Overlay')))
    overlays["Overlay"]["required"] = ["extends"]
    overlays["Overlay"]["title"] = "DeviceOverlay"
    defs.update(overlays)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Ridgeline hardware description",
        "description": "A device (kind gpu/npu/fpga/cpu/memory), an overlay of one (extends:), or a system.",
        "anyOf": [{"$ref": "#/$defs/DeviceSpec"}, {"$ref": "#/$defs/Overlay"}, {"$ref": "#/$defs/SystemSpec"}],
        "$defs": defs,
    }
