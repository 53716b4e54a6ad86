"""Memory capacity: does the workload fit on the devices it is placed on, and what spills where.

The footprint of each pipeline stage (:func:`workloads.footprint.stage_footprints`: weights,
KV cache of every micro-batch, recurrent state, peak activations) is checked against the main
memory (``Device.main_memory``, e.g. ``hbm``) of every accelerator of that stage; TP ranks of a
stage are symmetric, so the stage is placed by the tightest of them. Policy, per stage:

1. Everything the graph places on the device fits in main memory: nothing moves; the report
   gives the footprint by role and its share of the capacity.
2. It does not fit and spilling is allowed, and the device has a lower tier (a ``host`` or
   ``cxl`` memory level after main memory, reached over the link the cost model uses for it):

   * weights, state and activations fit: the whole KV cache of the stage moves to the lower tier
     (the graph is rebuilt with that ``kv_placement``, so every step reads it over the link);
   * the weights do not fit beside state and activations: the KV cache moves, and so do the
     weights that do not fit, whole parameters from the last one the step reads backwards (the
     first layers stay in fast memory, as offloading runtimes fill the device in layer order),
     until the rest fills main memory.

   Each spill is recorded in the report and in ``warnings``, and issued as a
   :class:`~hwmodels.errors.RidgelineWarning` (the Python API shows it; the CLI prints it once).
3. Otherwise, raise :class:`~hwmodels.errors.InputError` with the numbers and what to change:
   no lower tier, ``spill=False`` (``--no-spill``), state and activations alone exceed main
   memory, or the lower tier itself is too small for what spills to it.

Capacities are taken at face value (no allocator headroom); tensors the workload already places
off the device (``--kv-placement host``) count against their tier, not main memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from warnings import warn

from hwmodels.errors import InputError, RidgelineWarning
from hwmodels.units import format_quantity
from roofline.hardware import device_info
from workloads.footprint import ROLES, Footprint, stage_footprints, with_placements

LOWER_TIERS = ("host", "cxl")   # placements a spill may use, nearest first when both exist


def _gb(nbytes: float) -> str:
    return format_quantity(nbytes, "capacity", digits=3)


@dataclass
class Tier:
    """A memory level a placement maps to on one device: name, capacity, link to reach it."""

    placement: str
    level: str
    capacity_bytes: float
    link: str | None


@dataclass
class DeviceMemory:
    """One accelerator's memory after placement.

    ``footprint_bytes``: resident bytes by role in main memory ``level`` (after any spill);
    ``required_bytes``: what the workload asked main memory to hold before the check;
    ``fits``: everything asked for fitted (no spill needed); ``spilled_bytes``: bytes by role moved
    to ``spill`` (placement, level, link); ``offloaded_bytes``: bytes by role in lower tiers in all
    (spilled, or placed there by the workload).
    """

    node: str
    device: str
    stage: int
    level: str
    capacity_bytes: float
    footprint_bytes: dict[str, float]
    required_bytes: float
    fits: bool
    spilled_bytes: dict[str, float] = field(default_factory=dict)
    spill: Tier | None = None
    offloaded_bytes: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def used_bytes(self) -> float:
        return sum(self.footprint_bytes.values())

    @property
    def utilisation(self) -> float:
        return self.used_bytes / self.capacity_bytes if self.capacity_bytes else float("inf")

    def to_dict(self) -> dict:
        return {"device": self.device, "stage": self.stage, "level": self.level,
                "capacity_bytes": self.capacity_bytes, "footprint_bytes": dict(self.footprint_bytes),
                "used_bytes": self.used_bytes, "utilisation": self.utilisation,
                "required_bytes": self.required_bytes, "fits": self.fits,
                "spilled_bytes": dict(self.spilled_bytes),
                "spilled_to": ({"placement": self.spill.placement, "level": self.spill.level,
                                "link": self.spill.link} if self.spill else None),
                "offloaded_bytes": {p: dict(v) for p, v in self.offloaded_bytes.items()}}


@dataclass
class MemoryReport:
    """Per accelerator node: its :class:`DeviceMemory`; ``warnings``: one line per spilled stage."""

    devices: dict[str, DeviceMemory]
    warnings: list[str] = field(default_factory=list)
    activation_rule: str = ("peak activations = the largest live set of one operator (its activation "
                            "inputs and outputs) of one micro-batch")

    @property
    def fits(self) -> bool:
        return all(d.fits for d in self.devices.values())

    @property
    def spilled(self) -> bool:
        return any(d.spilled_bytes for d in self.devices.values())

    def to_dict(self) -> dict:
        return {"fits": self.fits, "spilled": self.spilled, "warnings": list(self.warnings),
                "activation_rule": self.activation_rule,
                "devices": {n: d.to_dict() for n, d in self.devices.items()}}


def tiers(device) -> list[Tier]:
    """The lower tiers of ``device``: memory levels after main memory that a ``host`` or ``cxl``
    placement maps to (the cost model's own mapping, so spilled bytes are charged there)."""
    info = device_info(device)
    names = list(device.memory)
    main = names.index(device.main_memory)
    out = []
    for placement in LOWER_TIERS:
        if not any(lv.kind == placement for lv in device.memory.values()):
            continue
        level, link = info.placement(placement)
        if names.index(level) > main:
            out.append(Tier(placement, level, device.memory[level].capacity_bytes, link))
    return sorted(out, key=lambda t: names.index(t.level))


def _advice(model: str, spill: bool = True) -> str:
    return (f"; to run it, split {model} over more devices (--tp / --pp), quantize it (--weight-dtype int8 "
            "or int4, --kv-dtype fp8) or shrink --batch / --context" + ("" if spill else ", or allow spilling"))


def _role_name(role: str) -> str:
    return {"kv_cache": "KV cache"}.get(role, role)


def _tier_name(tier: Tier) -> str:
    name = f"{tier.placement} memory" + (f" ({tier.level})" if tier.level != tier.placement else "")
    return name + (f" over {tier.link}" if tier.link else "")


def _check_tier(device, placement: str, nbytes: float, who: str, model: str) -> None:
    """Raise when what the workload itself places in ``placement`` exceeds that tier's capacity."""
    level, _ = device_info(device).placement(placement)
    cap = device.memory[level].capacity_bytes
    if nbytes > cap:
        raise InputError(f"{who}: {_gb(nbytes)} placed in {placement} memory exceed {level} capacity "
                         f"{_gb(cap)}" + _advice(model), path="memory")


def place(graph, stage_nodes: dict[int, list[str]], devices: dict, *, spill: bool = True):
    """Check ``graph``'s footprint on the nodes of each stage (``stage_nodes``: stage -> node
    names, ``devices``: node -> Device) and apply the module's policy. Returns ``(graph, report)``:
    the graph unchanged when everything fits, else a copy with the spilled tensors re-placed."""
    fps = stage_footprints(graph)
    model = str(graph.meta.get("model") or graph.name or "the workload")
    kv_moves: dict[int, str] = {}
    weight_moves: dict[str, str] = {}
    reports: dict[str, DeviceMemory] = {}
    warnings: list[str] = []
    for stage, nodes in sorted(stage_nodes.items()):
        fp = fps[stage] if stage < len(fps) else Footprint(stage)
        node = min(nodes, key=lambda n: devices[n].memory[devices[n].main_memory].capacity_bytes)
        dev = devices[node]
        level = dev.main_memory
        cap = dev.memory[level].capacity_bytes
        need = fp.by_role("device")
        required = sum(need.values())
        where = f"{', '.join(nodes) if len(nodes) <= 2 else f'{nodes[0]}..{nodes[-1]}'} ({dev.id}, stage {stage})"
        spilled: dict[str, float] = {}
        tier = None
        if required > cap:
            parts = ", ".join(f"{_role_name(r)} {_gb(v)}" for r, v in need.items() if v)
            head = f"{model} on {where}: {parts} = {_gb(required)} exceed {level} capacity {_gb(cap)}"
            fixed = need["state"] + need["activations"]
            lower = tiers(dev)
            if not spill:
                raise InputError(f"{head}; --no-spill forbids placing the overflow in a lower memory tier"
                                 + _advice(model, spill=False), path="memory")
            if not lower:
                raise InputError(f"{head}, and {dev.id} has no host or CXL memory level to spill to"
                                 + _advice(model), path="memory")
            if fixed > cap:
                raise InputError(f"{head}: state and activations alone ({_gb(fixed)}) exceed it"
                                 + _advice(model), path="memory")
            tier = lower[0]
            if need["kv_cache"]:
                kv_moves[stage] = tier.placement
                spilled["kv_cache"] = need["kv_cache"]
            room = cap - fixed - need["weights"]
            if room < 0:
                moved = 0.0
                for name, (nbytes, p) in reversed(fp.weights.items()):
                    if moved >= -room:
                        break
                    if p == "device":
                        weight_moves[name] = tier.placement
                        moved += nbytes
                spilled["weights"] = moved
            already = fp.total(tier.placement)
            if already + sum(spilled.values()) > tier.capacity_bytes:
                raise InputError(f"{head}; spilling {_gb(sum(spilled.values()))} to {tier.placement} memory "
                                 f"({tier.level}, {_gb(tier.capacity_bytes)}"
                                 + (f", {_gb(already)} already placed there" if already else "")
                                 + ") does not fit either" + _advice(model), path="memory")
            if "weights" in spilled:
                warnings.append(f"{where}: weights {_gb(need['weights'])} do not fit in {level} ({_gb(cap)}"
                                f"{', state and activations ' + _gb(fixed) if fixed >= 0.005 * cap else ''}): "
                                f"{_gb(spilled['weights'])} of weights"
                                + (f" and the KV cache {_gb(spilled['kv_cache'])}" if "kv_cache" in spilled else "")
                                + f" placed in {_tier_name(tier)}")
            else:
                warnings.append(f"{where}: KV cache {_gb(need['kv_cache'])} does not fit in {level} "
                                f"({_gb(cap)}, weights {_gb(need['weights'])}): placed in {_tier_name(tier)}")
        resident = dict(need)
        for role, nbytes in spilled.items():
            resident[role] -= nbytes
        offloaded: dict[str, dict[str, float]] = {}
        for p in LOWER_TIERS:
            roles = {r: v for r, v in fp.by_role(p).items() if v}
            if tier is not None and tier.placement == p:
                for r, v in spilled.items():
                    roles[r] = roles.get(r, 0.0) + v
            if roles:
                offloaded[p] = roles
                _check_tier(dev, p, sum(roles.values()), f"{model} on {where}", model)
        for n in nodes:
            d = devices[n]
            reports[n] = DeviceMemory(n, d.id, stage, d.main_memory, d.memory[d.main_memory].capacity_bytes,
                                      {r: resident[r] for r in ROLES}, required,
                                      required <= d.memory[d.main_memory].capacity_bytes,
                                      dict(spilled), tier, offloaded)
    if kv_moves or weight_moves:
        graph = with_placements(graph, kv=kv_moves, weights=weight_moves)
        graph.meta["spilled"] = {"kv_cache": {str(s): p for s, p in kv_moves.items()},
                                 "weights": len(weight_moves)}
    for message in warnings:
        warn(message, RidgelineWarning, stacklevel=3)   # to simulate()'s caller
    return graph, MemoryReport(reports, warnings)
