"""The report of a design sweep (a folder ``ridgeline sweep run`` wrote): its Pareto front drawn
and listed, every point in a sortable table, the canonical spec in the manifest.

:func:`sweep_document` turns the folder into a result document (``kind: sweep``) like the JSON the
other commands write, so the report is made the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from .. import figures
from .blocks import Fields, Figure, Section, Table, Text
from .kinds import REPORT_KINDS, REPORT_SECTIONS, ReportKind

# Columns a point's table leaves out (bookkeeping), and the figures shown after the inputs.
_BOOKKEEPING = {"key", "message", "job", "ridgeline_version"}
MAX_POINT_ROWS = 2000


def sweep_document(folder: str | Path, manifest: dict | None = None) -> dict:
    """The result document of the sweep stored in ``folder``: spec, points, summary, front."""
    from sweeps.pareto import pareto_front, summary
    from sweeps.spec import parse_constraint
    from sweeps.store import read_results, read_spec

    stored = read_spec(folder)          # {"spec": canonical spec, "objectives", "constraints", ...}
    spec = stored.get("spec") or {}
    frame = read_results(folder)
    objectives = stored.get("objectives") or {}
    constraints = [parse_constraint(c, frame.columns) for c in stored.get("constraints", [])]
    front = pareto_front(frame, objectives, constraints) if objectives else frame.iloc[0:0]
    versions = sorted({str(v) for v in frame.get("ridgeline_version", []) if v == v})
    points = json.loads(frame.to_json(orient="records"))
    return {"kind": "sweep", "folder": str(folder), "spec": spec, "objectives": objectives,
            "constraints": [c.text for c in constraints], "summary": summary(frame, objectives, constraints),
            "front": [str(k) for k in front["key"]], "points": points,
            "manifest": manifest or {"ridgeline_version": ", ".join(versions),
                                     "command": f"ridgeline sweep run SPEC --out {folder}", "seed": spec.get("seed"),
                                     "hardware": [], "workload": spec.get("base") or {}}}


def _title(doc: dict) -> tuple[str, str]:
    base = doc["spec"].get("base") or {}
    axes = ", ".join(doc["spec"].get("axes") or {})
    what = " ".join(str(base[k]) for k in ("job", "model", "phase") if base.get(k))
    return f"Sweep: {what} over {axes or 'one point'}", f"base hardware {base.get('hw', '?')}; {doc['folder']}"


def _headline(doc: dict) -> list[tuple[str, str]]:
    s = doc["summary"]
    out = [("points", f"{s['points']} (" + ", ".join(f"{n} {k}" for k, n in s["status"].items()) + ")"),
           ("feasible", str(s["feasible"]))]
    if doc["objectives"]:
        out.append(("Pareto front", f"{len(doc['front'])} non-dominated points over "
                                    + ", ".join(f"{k} ({v})" for k, v in doc["objectives"].items())))
    for objective, row in s["best"].items():
        name = objective.split(":")[0]
        out.append((f"best {objective}", f"{row[name]:.4g}"))
    return out


def _inputs(doc: dict) -> list[str]:
    return [c for c in (doc["spec"].get("axes") or {}) if doc["points"] and c in doc["points"][0]]


@REPORT_SECTIONS.register("pareto", help="a sweep's points against its objectives, the front drawn")
def pareto_section(doc: dict) -> Section | None:
    names = list(doc["objectives"])
    if not names or not doc["points"]:
        return None
    import pandas as pd

    from ..sweep_plot import plot_sweep

    frame = pd.DataFrame(doc["points"])
    front = frame[frame["key"].astype(str).isin(doc["front"])]
    x, y = (names[0], names[1]) if len(names) > 1 else (names[0], names[0])
    color = "bound" if "bound" in frame.columns else None
    title = f"{_title(doc)[0]}\nPareto front: " + ", ".join(f"{k} {v}" for k, v in doc["objectives"].items())
    fig = plot_sweep(frame, x, y, color=color, front=front, title=title)
    columns = [*_inputs(doc), *dict.fromkeys(n for n in (*names, "bound") if n in frame.columns)]
    rows = front.sort_values(x)[columns].to_dict("records")
    return Section("pareto", "Pareto front", [
        Figure(figures.png_bytes(fig), f"{y} against {x} for every ok point; circled and joined: the front.",
               "pareto"),
        Table(columns, [[r[c] for c in columns] for r in rows], f"{len(rows)} non-dominated points")])


@REPORT_SECTIONS.register("points", help="every point of a sweep with its status and figures")
def points_section(doc: dict) -> Section | None:
    points = doc["points"][:MAX_POINT_ROWS]
    if not points:
        return None
    columns = [c for c in points[0] if c not in _BOOKKEEPING]
    note = f"first {MAX_POINT_ROWS} of {len(doc['points'])} points" if len(doc["points"]) > MAX_POINT_ROWS else ""
    blocks = [Fields([("constraints", ", ".join(doc["constraints"]) or "none")]),
              Table(columns, [[p.get(c) for c in columns] for p in points], "Every point", note=note)]
    errors = [p for p in doc["points"] if p.get("status") not in ("ok", None) and p.get("message")]
    blocks += [Text(f"{p['status']}: {p['message']}") for p in errors[:20]]
    return Section("points", "Points", blocks)


@REPORT_SECTIONS.register("spec", help="a sweep's canonical spec")
def spec_section(doc: dict) -> Section | None:
    spec = {**doc["spec"], "objectives": doc["objectives"], "constraints": doc["constraints"]}
    return Section("spec", "Sweep spec (canonical)", [Text(yaml.safe_dump(spec, sort_keys=False), pre=True)])


REPORT_KINDS.register("sweep", ReportKind(
    detect=lambda d: "spec" in d and "points" in d, title=_title, headline=_headline,
    sections=("pareto", "points", "spec", "manifest")), help="ridgeline sweep run (a sweep folder)")
