"""Pareto fronts and summaries of a sweep's results.

A point dominates another when it is at least as good in every objective and strictly better in
one (``min``: smaller is better, ``max``: larger). The front is the set of ``ok`` points, among
those meeting the constraints, that no other such point dominates.
"""

from __future__ import annotations

import math

import numpy as np

from hwmodels.errors import InputError, did_you_mean

from .spec import SENSES, Constraint


def parse_objective(text: str, columns) -> tuple[str, str]:
    """``"latency_s:min"`` -> ("latency_s", "min"), checked against the table's ``columns``."""
    name, _, sense = str(text).partition(":")
    sense = sense or "min"
    if sense not in SENSES:
        raise InputError(f"expected COLUMN:min or COLUMN:max, got '{text}'", path="objective",
                         suggestion=did_you_mean(sense, SENSES))
    if name not in columns:
        numeric = sorted(columns)
        raise InputError(f"unknown column '{name}'; expected one of: {', '.join(numeric)}", path="objective",
                         suggestion=did_you_mean(name, numeric))
    return name, sense


def feasible(frame, constraints: list[Constraint] = ()):
    """The ``ok`` rows of ``frame`` that meet every constraint."""
    mask = frame["status"] == "ok"
    for c in constraints:
        mask &= c.holds(frame)
    return frame[mask]


def pareto_mask(values: np.ndarray, senses: list[str]) -> np.ndarray:
    """Which rows of ``values`` (points x objectives) no other row dominates."""
    signed = np.asarray(values, dtype=float) * np.array([1.0 if s == "min" else -1.0 for s in senses])
    n = len(signed)
    keep = np.ones(n, dtype=bool)
    order = np.lexsort(signed.T[::-1])   # by the first objective, then the next ...
    for i in order:
        if not keep[i]:
            continue
        # everything i dominates drops out (a point that dominates i was seen before it)
        worse = np.all(signed >= signed[i], axis=1) & np.any(signed > signed[i], axis=1)
        keep &= ~worse
    return keep


def pareto_front(frame, objectives: dict[str, str], constraints: list[Constraint] = ()):
    """The non-dominated feasible points, sorted by the first objective."""
    if len(objectives) < 1:
        raise InputError("a Pareto front needs at least one objective, e.g. latency_s:min", path="objective")
    numeric = frame.select_dtypes("number").columns
    for name, sense in objectives.items():
        parse_objective(f"{name}:{sense}", numeric)
    ok = feasible(frame, constraints)
    names = list(objectives)
    ok = ok[ok[names].notna().all(axis=1)]
    if ok.empty:
        return ok
    mask = pareto_mask(ok[names].to_numpy(dtype=float), [objectives[n] for n in names])
    front = ok[mask]
    return front.sort_values(names[0], ascending=objectives[names[0]] == "min")


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def summary(frame, objectives: dict[str, str], constraints: list[Constraint] = ()) -> dict:
    """Points per status, and the best feasible point per objective."""
    counts = {str(k): int(v) for k, v in frame["status"].value_counts().items()}
    ok = feasible(frame, constraints)
    best = {}
    for name, sense in objectives.items():
        column = ok[name].dropna()
        if column.empty:
            continue
        idx = column.idxmin() if sense == "min" else column.idxmax()
        # a column a point has no value in (an empty message) is None, not a NaN figure
        best[f"{name}:{sense}"] = {k: None if _missing(v) else v for k, v in ok.loc[idx].to_dict().items()}
    return {"points": int(len(frame)), "status": counts, "feasible": int(len(ok)), "best": best}
