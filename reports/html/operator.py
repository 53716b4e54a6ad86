"""The report of one operator on one device (``ridgeline op``): its cost per resource, its place
on the device's roofline, and the manifest."""

from __future__ import annotations

from hwmodels.units import format_quantity

from .blocks import Fields, Section, Table
from .kinds import REPORT_KINDS, REPORT_SECTIONS, ReportKind
from .sections import _interval_note, _time

_NOT_SHAPE = ("kind", "name", "stage", "param_prefix", "flops")


def _fields(doc: dict) -> list[tuple[str, str]]:
    """The operator's scalar fields (its tensors and FLOP counts are in the tables)."""
    return [(k, str(v)) for k, v in doc["op"].items()
            if k not in _NOT_SHAPE and v is not None and not isinstance(v, (dict, list))]


def _title(doc: dict) -> tuple[str, str]:
    dims = " ".join(f"{k}={v}" for k, v in _fields(doc) if v.isdigit() and v != "0" or k == "dtype")
    return f"Operator: {doc['op'].get('kind', '')} {dims}", f"on {doc['device']}"


def _headline(doc: dict) -> list[tuple[str, str]]:
    out = [("latency", _time(doc["latency_s"]) + _interval_note(doc, "latency_s", "time")),
           ("bound", f"{doc['bound']} ({doc['regime']})" if doc.get("regime") else doc["bound"]),
           ("achieved", f"{format_quantity(doc['achieved_flops'], 'compute_rate')} of "
                        f"{format_quantity(doc['peak_flops'], 'compute_rate')} peak"
                        + _interval_note(doc, "achieved_flops", "compute_rate")),
           ("energy", f"{doc['energy_j']:.4g} J" + _interval_note(doc, "energy_j", "energy"))]
    if doc.get("latency_s_interval"):
        out.append(("intervals", "from the held-out public rows of the operator's class and regime"))
    return out


@REPORT_SECTIONS.register("operator", help="one operator's time per resource and bytes per memory level")
def operator_section(doc: dict) -> Section | None:
    times = doc.get("times_s") or {}
    rows = [[resource, time_s * 1e6, doc["rates"].get(resource)] for resource, time_s in times.items()]
    levels = [[level, nbytes, doc["intensity"].get(level)] for level, nbytes in doc["bytes"].items()]
    levels += [[f"link {link}", nbytes, doc["intensity"].get(f"link:{link}")]
               for link, nbytes in doc["link_bytes"].items()]
    return Section("operator", "Cost", [
        Fields([*_fields(doc), ("FLOPs", f"{doc['flops']:.4g}"), ("fixed latency", _time(doc["fixed_s"])),
                ("attainable", f"{format_quantity(doc['attainable_flops'], 'compute_rate')}")]),
        Table(["resource", "time (us)", "rate"], rows,
              "Time each resource would need on its own (the operator takes the longest, plus the fixed "
              "latency)", {"time (us)": ".4g", "rate": ".4g"}),
        Table(["memory level or link", "bytes", "intensity (FLOP/B)"], levels,
              "Bytes moved at each level and the arithmetic intensity there", {"bytes": ".4g",
                                                                             "intensity (FLOP/B)": ".4g"})])


REPORT_KINDS.register("op", ReportKind(
    detect=lambda d: "op" in d and "times_s" in d, title=_title, headline=_headline,
    sections=("roofline", "operator", "manifest")), help="ridgeline op")
