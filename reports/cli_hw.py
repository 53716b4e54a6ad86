"""``ridgeline hw``: list, show, validate the hardware catalog and files; export the schema."""

from __future__ import annotations

import argparse
import sys

import yaml

import hwmodels
from hwmodels.errors import InputError
from hwmodels.kinds import HARDWARE_KINDS as KINDS
from hwmodels.units import format_quantity
from reports.output import print_json

from .commands import COMMANDS
from .text import catalog_text


@COMMANDS.register("hw", help="hardware catalog: list, show, validate, schema")
def hw_command(hw) -> None:
    """Fill the ``hw`` group's parser with its subcommands."""
    hw.description = "Hardware descriptions: the bundled catalog and your YAML files."
    sub = hw.add_subparsers(dest="hw_command", metavar="SUBCOMMAND")
    hw.set_defaults(func=lambda args: _usage(hw))

    p = sub.add_parser("list", help="list catalog devices and systems with headline figures")
    p.add_argument("--kind", choices=KINDS, help="only this kind")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", help="the resolved description (after extends:), with units")
    p.add_argument("ref", metavar="ID|FILE")
    p.add_argument("--format", choices=("yaml", "json"), default="yaml")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("validate", help="check hardware YAML files; exit 2 with one line per problem")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("schema", help="JSON Schema of hardware YAML (for editor completion)")
    p.add_argument("--format", choices=("json",), default="json")
    p.set_defaults(func=cmd_schema)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def headline(hw) -> dict:
    """One listing row: id, kind, name and headline figures in SI units."""
    if isinstance(hw, hwmodels.System):
        s = hw.summary()
        return {"id": hw.id, "kind": "system", "name": hw.name, "peak_bf16_flops": s["peak_bf16_flops"],
                "memory_capacity_bytes": s["memory_bytes"],
                "memory_bandwidth_bytes_s": s["memory_bandwidth_bytes_s"],
                "tdp_w": sum(d.power.tdp_w for d in hw.devices.values()),
                "devices": s["devices"]}
    main = hw.memory[hw.main_memory]
    return {"id": hw.id, "kind": hw.kind, "name": hw.name, "peak_bf16_flops": hw.peak_flops("bf16"),
            "memory_capacity_bytes": main.capacity_bytes, "memory_bandwidth_bytes_s": main.bandwidth_bytes_s,
            "tdp_w": hw.power.tdp_w, "main_memory": hw.main_memory}


def cmd_list(args) -> int:
    rows = [headline(hwmodels.load_hardware(i)) for i in hwmodels.catalog_ids(args.kind)]
    rows.sort(key=lambda r: (KINDS.index(r["kind"]), r["id"]))
    if args.format == "json":
        print_json(rows)
        return 0
    print(catalog_text(rows))
    return 0


def _system_view(system: hwmodels.System) -> dict:
    out = {k: v for k, v in system.raw.items()}
    out["resolved"] = {
        "accelerators": system.accelerators,
        "nodes": {n: (d["device"].id if "device" in d else d["kind"]) for n, d in system.graph.nodes(data=True)},
        "edges": [{"between": [u, v], "link": d["link_name"], "kind": d["link"].kind,
                   "bandwidth_per_direction": format_quantity(d["link"].bandwidth_bytes_s, "bandwidth"),
                   "latency": format_quantity(d["link"].latency_s, "time")}
                  for u, v, d in system.graph.edges(data=True)],
        "switches": {n: {"in_network_reduction": system.graph.nodes[n]["in_network_reduction"]}
                     for n in system.switches},
    }
    return out


def hardware_view(hw) -> dict:
    """What ``hw show`` prints: a device fully resolved (overlays applied, SI units), or a system
    with its resolved nodes and edges."""
    return _system_view(hw) if isinstance(hw, hwmodels.System) else hw.describe()


def cmd_show(args) -> int:
    view = hardware_view(hwmodels.load_hardware(args.ref))
    if args.format == "json":
        print_json(view)
    else:
        sys.stdout.write(yaml.safe_dump(view, sort_keys=False, allow_unicode=True, width=100))
    return 0


def cmd_validate(args) -> int:
    results = []
    for file in args.files:
        try:
            hw = hwmodels.load_hardware(file)
        except InputError as err:
            results.append({"file": file, "valid": False, "problems": [str(p) for p in err.problems]})
        else:
            kind = "system" if isinstance(hw, hwmodels.System) else hw.kind
            devices = hw.devices.values() if isinstance(hw, hwmodels.System) else [hw]
            found = list(dict.fromkeys(str(p) for d in devices for p in d.warnings))
            results.append({"file": file, "valid": True, "kind": kind, "id": hw.id, "problems": [],
                            "warnings": found})
    if args.format == "json":
        print_json(results)
    for r in results:   # the verdicts on stdout (or the JSON); problems (and warnings) on stderr
        if r["valid"] and args.format != "json":
            print(f"{r['file']}: ok ({r['kind']} '{r['id']}')")
        for problem in r["problems"]:
            print(f"error: {problem}", file=sys.stderr)
    return 0 if all(r["valid"] for r in results) else 2


def cmd_schema(args) -> int:
    from hwmodels.schema import json_schema  # pydantic, only for this command: CLI start-up

    print_json(json_schema())
    return 0
