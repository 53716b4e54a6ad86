"""Systems: devices x count and the links between them, as a networkx graph.

Nodes are devices (attribute ``kind`` = the device kind, ``device`` = the :class:`Device`)
and switches (``kind="switch"``, ``in_network_reduction``); edges carry ``link`` (a
:class:`Link`, per direction) and ``link_name``. A system is read from YAML
(:func:`load_system`) or made on the fly from one device (:func:`system_from_device`).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx

from . import limits
from .device import Device, Link, implausible_values, in_file_order, link_from_spec, validate_spec
from .errors import InputError, Problem, did_you_mean, warn_problems
from .kinds import ACCELERATOR_KINDS
from .loader import load_device, load_raw, peek_kind, resolve_ref
from .schema import EdgeSpec, SystemSpec
from .yamlio import Document, dotted


@dataclass
class System:
    """Devices and their topology. ``accelerators`` lists the compute devices in rank order."""

    id: str
    name: str
    devices: dict[str, Device]
    graph: nx.Graph
    accelerators: list[str]
    source: str = ""
    notes: str = ""
    raw: dict = field(default_factory=dict, repr=False)

    @property
    def switches(self) -> list[str]:
        return [n for n, d in self.graph.nodes(data=True) if d.get("kind") == "switch"]

    def first_accelerator(self) -> Device:
        """The device of rank 0: what runs operators when a system is costed as one rank."""
        if not self.accelerators:
            raise InputError(f"system '{self.id}' has no accelerators to run operators on", path="hw")
        return self.devices[self.accelerators[0]]

    def link(self, a: str, b: str) -> Link:
        """The link on the edge between nodes ``a`` and ``b``."""
        return self.graph.edges[a, b]["link"]

    def summary(self) -> dict:
        """Counts and aggregates for listings: devices by id, total memory, peak bf16."""
        by_id: dict[str, int] = {}
        for dev in self.devices.values():
            by_id[dev.id] = by_id.get(dev.id, 0) + 1
        accs = [self.devices[a] for a in self.accelerators]
        return {
            "devices": by_id,
            "accelerators": len(accs),
            "switches": self.switches,
            "edges": self.graph.number_of_edges(),
            "peak_bf16_flops": sum(d.peak_flops("bf16") for d in accs),
            "memory_bytes": sum(d.memory[d.main_memory].capacity_bytes for d in accs),
            "memory_bandwidth_bytes_s": sum(d.memory[d.main_memory].bandwidth_bytes_s for d in accs),
        }


def _check_names(names: list[tuple[str, tuple]], doc: Document, problems: list[Problem]) -> None:
    seen: dict[str, tuple] = {}
    for name, path in names:
        if name in seen:
            problems.append(doc.problem(f"duplicate node name '{name}' (also given at line "
                                        f"{doc.line_of(seen[name])})", path))
        else:
            seen[name] = path


def mesh_edges(members: list[str], shape: list[int], wrap: bool) -> list[tuple[str, str]]:
    """Neighbour pairs of ``members`` laid out row-major on a grid of ``shape``
    (a torus when ``wrap``; a wrap that would double an edge, as in a dimension of 2, is skipped)."""
    index = {coord: members[i] for i, coord in enumerate(itertools.product(*(range(s) for s in shape)))}
    pairs: list[tuple[str, str]] = []
    seen: set[frozenset] = set()
    for coord, node in index.items():
        for dim, size in enumerate(shape):
            step = coord[dim] + 1
            if step >= size:
                if not wrap or size <= 2:
                    continue
                step = 0
            other = index[(*coord[:dim], step, *coord[dim + 1:])]
            key = frozenset((node, other))
            if other != node and key not in seen:
                seen.add(key)
                pairs.append((node, other))
    return pairs


def _edge_link(edge: EdgeSpec, u: str, v: str, devices: dict[str, Device], doc: Document,
               path: tuple) -> Link:
    if not isinstance(edge.link, str):
        link = link_from_spec(edge.link)
    else:
        owners = [devices[n] for n in (u, v) if n in devices and edge.link in devices[n].links]
        if not owners:
            known = sorted({k for n in (u, v) if n in devices for k in devices[n].links})
            raise InputError(problems=[doc.problem(
                f"no link '{edge.link}' on {u} or {v}; their links are: {', '.join(known) or 'none'}",
                (*path, "link"), did_you_mean(edge.link, known))])
        candidates = [d.links[edge.link] for d in owners]
        if edge.ports:
            candidates = [c.using_ports(edge.ports) for c in candidates]
        return min(candidates, key=lambda c: c.bandwidth_bytes_s)
    return link.using_ports(edge.ports) if edge.ports else link


def _override_problem(problem: Problem, overrides: dict | None, doc: Document, path: tuple) -> Problem:
    """A problem raised by a device's ``overrides:`` entry, located at that entry in ``doc``."""
    if problem.file != "<overrides>" or not overrides or not problem.path:
        return problem
    for key in overrides:
        if problem.path == key or problem.path.startswith(f"{key}."):
            return Problem(problem.message, doc.file, doc.line_of((*path, "overrides", key)),
                           f"{dotted(path)}.overrides.{problem.path}", problem.suggestion)
    return problem


def _check_sizes(spec: SystemSpec, doc: Document) -> None:
    """Refuse a system whose device count is above the limit before any device is built."""
    total = 0
    for i, entry in enumerate(spec.devices):
        total += entry.count
        where = ("devices", i, "count")
        limits.check("devices", total, file=doc.file, line=doc.line_of(where), path=dotted(where))


def system_from_raw(raw: dict, doc: Document, base_dir: Path | None = None) -> System:
    """Validate a system's YAML form and build its graph; all problems are reported at once."""
    spec = validate_spec(raw, doc, SystemSpec)
    _check_sizes(spec, doc)
    warn_problems(implausible_values(spec, doc))   # inline links of edges
    problems: list[Problem] = []
    devices: dict[str, Device] = {}
    groups: dict[str, list[str]] = {}
    names: list[tuple[str, tuple]] = []
    for i, entry in enumerate(spec.devices):
        path = ("devices", i)
        members = [entry.name] if entry.count == 1 else [f"{entry.name}{j}" for j in range(entry.count)]
        names += [(m, (*path, "name")) for m in members]
        try:
            _key, _path = resolve_ref(entry.device, base_dir, file=doc.file,
                                      line=doc.line_of((*path, "device")), path=f"devices[{i}].device")
            device = load_device(_path if _path is not None else entry.device)
            if entry.overrides:
                device = device.with_overrides(entry.overrides)
        except InputError as err:
            # a problem with an override is located at the override in this file
            problems += [_override_problem(p, entry.overrides, doc, path) for p in err.problems]
            continue
        if entry.name in groups:
            problems.append(doc.problem(f"duplicate device name '{entry.name}'", (*path, "name")))
        groups[entry.name] = members
        for m in members:
            devices.setdefault(m, device)
    for i, sw in enumerate(spec.switches):
        names.append((sw.name, ("switches", i, "name")))
    _check_names(names, doc, problems)
    if problems:
        raise InputError(problems=problems)

    graph = nx.Graph()
    for name, dev in devices.items():
        graph.add_node(name, kind=dev.kind, device=dev)
    for sw in spec.switches:
        graph.add_node(sw.name, kind="switch", in_network_reduction=sw.in_network_reduction)
    nodes = set(graph.nodes)

    def expand(token: str | list[str], path: tuple) -> list[str]:
        if isinstance(token, list):
            return [n for j, t in enumerate(token) for n in expand(t, (*path, j))]
        if token in groups:
            return groups[token]
        if token in nodes:
            return [token]
        problems.append(doc.problem(f"unknown node '{token}'; nodes are: {', '.join(sorted(nodes))}",
                                    path, did_you_mean(token, [*nodes, *groups])))
        return []

    edge_entry: dict[frozenset, int] = {}    # which edges[] entry made each edge
    for i, edge in enumerate(spec.edges):
        path = ("edges", i)
        if edge.mesh is not None:
            members = expand(edge.mesh, (*path, "mesh"))
            if members and math.prod(edge.shape) != len(members):
                problems.append(doc.problem(f"shape {edge.shape} holds {math.prod(edge.shape)} nodes but "
                                            f"'{edge.mesh}' has {len(members)}", (*path, "shape")))
                continue
            pairs = mesh_edges(members, edge.shape, edge.wrap) if members else []
        else:
            a, b = expand(edge.from_, (*path, "from")), expand(edge.to, (*path, "to"))
            limits.check("edges", len(a) * len(b), file=doc.file, line=doc.line_of(path), path=dotted(path))
            pairs = [(u, v) for u, v in itertools.product(a, b) if u != v]
        for u, v in pairs:
            if graph.has_edge(u, v):
                first = edge_entry[frozenset((u, v))]
                if first != i:
                    problems.append(doc.problem(f"edge {u} - {v} is given twice (also in edges[{first}])", path))
                continue
            try:
                link = _edge_link(edge, u, v, devices, doc, path)
            except InputError as err:
                problems += err.problems
                break
            name = edge.link if isinstance(edge.link, str) else edge.link.kind
            graph.add_edge(u, v, link=link, link_name=name)
            edge_entry[frozenset((u, v))] = i
    if spec.accelerators is not None:
        for j, acc in enumerate(spec.accelerators):
            if acc not in devices:
                problems.append(doc.problem(f"unknown device '{acc}'", ("accelerators", j),
                                            did_you_mean(acc, devices)))
        accelerators = list(spec.accelerators)
    else:
        accelerators = [n for n, d in devices.items() if d.kind in ACCELERATOR_KINDS]
    if problems:
        raise InputError(problems=in_file_order(problems))
    return System(id=spec.id, name=spec.name, devices=devices, graph=graph, accelerators=accelerators,
                  source=spec.source.strip(), notes=spec.notes.strip(), raw=raw)


def load_hardware(ref: str | Path, *, power_limit: str | None = None) -> Device | System:
    """A :class:`Device` or a :class:`System`, whichever the YAML (or catalog id) describes.
    ``power_limit`` (e.g. ``"310 W"``): the device's board power limit (``power.limit``), as a
    run sets it with ``nvidia-smi -pl``."""
    key, path = resolve_ref(ref)
    if peek_kind(key, path) == "system":
        if power_limit is not None:
            raise InputError(f"a power limit applies to one device, and '{ref}' is a system; set "
                             "power.limit in the YAML of the device it is built from", path="power_limit")
        return load_system(ref)
    if power_limit is None:
        return load_device(ref)
    try:
        return load_device(ref, {"power.limit": power_limit})
    except InputError as err:
        # the limit came as an argument, not from a file: say so, not '<overrides>: power.limit'
        raise InputError(problems=[Problem(p.message, path="power_limit", suggestion=p.suggestion)
                                   if p.file == "<overrides>" else p for p in err.problems]) from None


def load_system(ref: str | Path) -> System:
    """The system named by a catalog id or a YAML file."""
    raw, doc = load_raw(ref)
    if raw.get("kind") != "system":
        raise doc.error(f"expected kind 'system', got {raw.get('kind')!r}; use load_device for a device",
                        ("kind",))
    key, path = resolve_ref(ref)
    return system_from_raw(raw, doc, path.parent if path is not None else None)


def _scale_up_link(device: Device) -> tuple[str, Link] | None:
    for name, link in device.links.items():
        if link.topology:
            return name, link
    for name, link in device.links.items():
        if link.kind == "pcie":
            return name, link.model_copy(update={"topology": "switch"})
    return None


def grid_shape(count: int) -> list[int]:
    """The most nearly square 2-D grid ``[rows, cols]`` (rows <= cols) holding ``count`` nodes."""
    rows = max(r for r in range(1, math.isqrt(count) + 1) if count % r == 0)
    return [rows, count // rows]


def system_from_device(device: Device, count: int) -> System:
    """``count`` copies of ``device`` joined by its scale-up link (a switch for NVLink/PCIe,
    a torus for ICI, all-to-all for RoCE/Infinity Fabric, as the link's ``topology`` says)."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise InputError(f"device count must be a positive integer, got {count!r}")
    limits.check("devices", count, path="count")
    prefix = device.kind
    members = [f"{prefix}{i}" for i in range(count)]
    graph = nx.Graph()
    for m in members:
        graph.add_node(m, kind=device.kind, device=device)
    chosen = _scale_up_link(device)
    if count > 1 and chosen is None:
        raise InputError(f"{device.id} has no link to join {count} devices (no nvlink/ici/pcie link)")
    if count > 1:
        name, link = chosen
        if link.topology == "all_to_all" and link.ports < count - 1:
            link = link.model_copy(update={"topology": "switch"})   # too few ports: through a switch
        if link.topology == "switch":
            switch = "nvswitch" if link.kind == "nvlink" else f"{name}-switch"
            graph.add_node(switch, kind="switch", in_network_reduction=link.in_network_reduction)
            for m in members:
                graph.add_edge(m, switch, link=link, link_name=name)
        else:
            if link.topology == "all_to_all":
                limits.check("edges", count * (count - 1) // 2, path="count")
                pairs = list(itertools.combinations(members, 2))
                ports = max(1, link.ports // (count - 1))
            elif link.topology == "ring":
                pairs = mesh_edges(members, [count], wrap=True)
                ports = max(1, link.ports // 2)
            else:
                shape = grid_shape(count)
                pairs = mesh_edges(members, shape, wrap=link.topology == "torus")
                ports = max(1, link.ports // (2 * len(shape)))
            for u, v in pairs:
                graph.add_edge(u, v, link=link.using_ports(ports), link_name=name)
    return System(id=f"{device.id}-x{count}", name=f"{count} x {device.name}",
                  devices=dict.fromkeys(members, device), graph=graph, accelerators=members,
                  source=device.source, notes=f"made on the fly by system_from_device({device.id}, {count})")


def with_fp16_accumulate(hardware: Device | System) -> Device | System:
    """``hardware`` as GEMMs that accumulate in fp16 see it (:meth:`Device.with_fp16_accumulate`
    on every device of a system); itself when nothing changes."""
    if isinstance(hardware, Device):
        return hardware.with_fp16_accumulate()
    devices = {name: dev.with_fp16_accumulate() for name, dev in hardware.devices.items()}
    if all(devices[n] is d for n, d in hardware.devices.items()):
        return hardware
    graph = hardware.graph.copy()
    for _, data in graph.nodes(data=True):
        if isinstance(data.get("device"), Device):
            data["device"] = data["device"].with_fp16_accumulate()
    return dataclasses.replace(hardware, devices=devices, graph=graph)
