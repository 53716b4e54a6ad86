"""The sweep spec: what one point is (``base``), what varies (``axes``), how points are drawn
(``mode``), and what a good point is (``objectives``, ``constraints``).

A spec is YAML, read with the line-aware loader of :mod:`hwmodels.yamlio` and checked like a
hardware file: every problem is an :class:`~hwmodels.errors.InputError` naming the file, the line,
the field path and what was expected, with a did-you-mean for misspelled names::

    base: {job: analyze, hw: h100-sxm, model: llama-3.1-8b, phase: decode, batch: 1, context: 1024}
    axes:
      hw.memory.hbm.bandwidth: [2 TB/s, 4 TB/s, 8 TB/s]     # a hardware field, by dotted path
      batch: {from: 1, to: 512, steps: 10, scale: log}       # a workload knob, as a range
    mode: grid                                               # or {random: N} / {latin: N}, seeded
    objectives: {latency_s: min, throughput_tok_s: max}
    constraints: [fits_memory, latency_s <= 0.05]

Axes: ``hw`` (a list of devices or systems, catalog ids or YAML files relative to the spec),
``hw.<path>`` (a field of the hardware in the YAML form of ``Device.with_overrides``; on a system
it applies to every device of the system), ``model``, the workload knobs (the fields of
:class:`workloads.options.StepOptions` the job takes, checked by its axes) and the job's own knobs
(:data:`sweeps.jobs.JOBS`, checked by the job). An axis value of a hardware quantity must have the
field's dimension; it is stored in SI units (B/s, B, FLOP/s).
"""

from __future__ import annotations

import functools
import math
import operator
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwmodels.errors import InputError, Problem, did_you_mean
from hwmodels.units import KINDS, kind_of, parse_quantity, si_text
from hwmodels.yamlio import Document, dotted, load, require_mapping
from workloads.options import StepOptions

from .hardware import hardware_fields, load_hw
from .jobs import JOBS, Job, job_columns

TOP_KEYS = ("base", "axes", "mode", "seed", "objectives", "constraints", "price_per_hour")
MODES = ("grid", "random", "latin")
SENSES = ("min", "max")
RANGE_KEYS = ("from", "to", "steps", "scale")
GRID_LIMIT = 20_000     # points a spec may plan without an explicit yes (--yes)
FITS_MEMORY = "fits_memory"
COMPARISONS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt, "==": operator.eq}
_CONSTRAINT_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(<=|>=|==|<|>)\s*([-+0-9.eE]+)\s*$")


@functools.lru_cache(maxsize=1)
def workload_knobs() -> dict[str, Any]:
    """Workload knob -> default: the fields of :class:`workloads.options.StepOptions` (shared: do
    not modify)."""
    return {name: axis.default for name, axis in StepOptions.axes().items()}


def resolved_knobs(knobs: dict) -> dict:
    """Every workload knob's value for a point given ``knobs``: defaults filled in where they apply
    (``StepOptions.effective``), so that a knob given at its default and one left out agree. A
    combination StepOptions refuses keeps its values as given (the point is recorded invalid)."""
    try:
        options = StepOptions.from_kwargs(**knobs)
    except (InputError, TypeError):
        return {**workload_knobs(), **knobs}
    return {name: options.effective(name) for name in workload_knobs()}


@dataclass(frozen=True)
class Axis:
    """One axis: its name, the values stored in the results table (SI floats, ints, strings) and,
    for a hardware field, the unit kind of its values (None for plain numbers)."""

    name: str
    values: tuple
    unit_kind: str | None = None

    @property
    def hw_path(self) -> str | None:
        """The dotted hardware path of a ``hw.<path>`` axis."""
        return self.name[3:] if self.name.startswith("hw.") else None

    def yaml_value(self, value):
        """The value as the hardware YAML takes it (exact SI text for quantities)."""
        return si_text(value, self.unit_kind) if self.unit_kind else value


@dataclass(frozen=True)
class Constraint:
    """``fits_memory`` or ``<column> <op> <number>``."""

    text: str
    column: str | None = None
    op: str | None = None
    bound: float | None = None

    def holds(self, frame):
        """A boolean Series: which rows of ``frame`` satisfy the constraint."""
        if self.column is None:
            return frame["status"] != "does-not-fit"
        values = frame[self.column]
        return values.notna() & COMPARISONS[self.op](values, self.bound)


@dataclass
class SweepSpec:
    """A validated sweep spec (see the module docstring)."""

    base: dict
    axes: list[Axis]
    mode: str = "grid"
    samples: int | None = None
    seed: int = 0
    objectives: dict[str, str] = field(default_factory=dict)
    constraints: list[Constraint] = field(default_factory=list)
    price_per_hour: dict[str, float] = field(default_factory=dict)
    file: str | None = None

    @property
    def job(self) -> str:
        return self.base["job"]

    @property
    def base_dir(self) -> Path | None:
        return Path(self.file).parent if self.file and not self.file.startswith("<") else None

    def grid_size(self) -> int:
        return math.prod(len(a.values) for a in self.axes)

    def planned_size(self) -> int:
        return self.grid_size() if self.mode == "grid" else int(self.samples)

    def canonical(self) -> dict:
        """What the results depend on (objectives and constraints do not): a resumed sweep's spec
        must have the same."""
        return {"base": dict(self.base), "axes": {a.name: list(a.values) for a in self.axes},
                "mode": self.mode, "samples": self.samples, "seed": self.seed,
                "price_per_hour": dict(self.price_per_hour)}


# -- parsing ---------------------------------------------------------------------------------------
class _Checker:
    """Collects problems located in ``doc`` so that one run reports them all."""

    def __init__(self, doc: Document):
        self.doc = doc
        self.problems: list[Problem] = []

    def add(self, message: str, path, suggestion: str | None = None) -> None:
        self.problems.append(self.doc.problem(message, tuple(path), suggestion))

    def unknown(self, what: str, name: str, choices, path) -> None:
        choices = sorted(choices)
        self.add(f"unknown {what} '{name}'; expected one of: {', '.join(choices[:40])}"
                 + (" ..." if len(choices) > 40 else ""), path, did_you_mean(name, choices))

    def raise_if_any(self) -> None:
        if self.problems:
            raise InputError(problems=self.problems)


def load_spec(path: str | Path, *, yes: bool = False) -> SweepSpec:
    """Read and validate the spec at ``path``; ``yes`` allows a plan above :data:`GRID_LIMIT`."""
    doc = load(path)
    return parse_spec(require_mapping(doc), doc, yes=yes)


def parse_spec(data: dict, doc: Document, *, yes: bool = False) -> SweepSpec:
    """Validate ``data`` (located in ``doc``) into a :class:`SweepSpec`."""
    c = _Checker(doc)
    for key in data:
        if key not in TOP_KEYS:
            c.unknown("field", str(key), TOP_KEYS, (key,))
    base = _base(data.get("base"), c)
    c.raise_if_any()
    job = JOBS.get(base["job"], path="base.job", file=doc.file, line=doc.line_of(("base", "job")))
    base_dir = Path(doc.file).parent if not doc.file.startswith("<") else None
    axes = _axes(data.get("axes"), base, job, base_dir, c)
    if not c.problems:
        _check_job_knobs(job, base, axes, base_dir, c)
    mode, samples = _mode(data.get("mode", "grid"), c)
    seed = data.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        c.add(f"expected a non-negative integer seed, got {seed!r}", ("seed",))
    prices = _prices(data.get("price_per_hour", base.pop("price_per_hour", None)), c)
    columns = {*job_columns(job, True), *(a.name for a in axes)}
    numeric = {name for name in columns if job.outputs.get(name, "float") in ("float", "int")
               and all(isinstance(v, (int, float)) for a in axes if a.name == name for v in a.values)}
    objectives = _objectives(data.get("objectives", {}), numeric, c)
    constraints = _constraints(data.get("constraints", []), columns, c)
    if "cost_per_mtok" in objectives and not prices:
        c.add("the objective cost_per_mtok needs 'price_per_hour' (per device or system id, or one number)",
              ("objectives", "cost_per_mtok"))
    hw_axis = next((a for a in axes if a.name == "hw"), None)
    for ref in (hw_axis.values if hw_axis else [base.get("hw")]):
        if prices and "*" not in prices and ref not in prices:
            c.add(f"no price for '{ref}'; give one per device or system of the sweep", ("price_per_hour",),
                  did_you_mean(str(ref), prices))
    c.raise_if_any()
    spec = SweepSpec(base, axes, mode, samples, seed, objectives, constraints, prices, doc.file)
    if not yes and spec.planned_size() > GRID_LIMIT:
        raise doc.error(f"the sweep plans {spec.planned_size()} points, above the limit of {GRID_LIMIT}; "
                        "confirm with --yes (Python: yes=True) or draw fewer with mode {random: N}",
                        ("mode",) if "mode" in data else ("axes",))
    return spec


def _base(base, c: _Checker) -> dict:
    if not isinstance(base, dict):
        c.add("expected a mapping: job, hw, model and the workload knobs of one point", ("base",))
        return {}
    for key in ("job", "hw", "model"):
        if key not in base:
            c.add("required field is missing", ("base", key))
    out = dict(base)
    if "job" in base and base["job"] not in JOBS:
        c.unknown("job", str(base["job"]), JOBS.names(), ("base", "job"))
    return out


def job_workload_knobs(job: Job) -> dict[str, Any]:
    """The workload knobs ``job`` takes -> their defaults."""
    return {k: v for k, v in workload_knobs().items() if job.workload is None or k in job.workload}


def _knob_choices(job: Job) -> dict[str, Any]:
    return {**job_workload_knobs(job), **job.knobs}


def _axes(axes, base: dict, job: Job, base_dir: Path | None, c: _Checker) -> list[Axis]:
    knobs = _knob_choices(job)
    workload = {k: a for k, a in StepOptions.axes().items() if k in job_workload_knobs(job)}
    for name, value in base.items():
        if name not in ("job", "hw", "model", "price_per_hour") and name not in knobs:
            c.unknown("knob", str(name), [*knobs, "job", "hw", "model", "price_per_hour"], ("base", name))
        elif name in workload:
            try:
                workload[name].check(value)
            except InputError as err:
                c.add(err.problems[0].message, ("base", name), err.problems[0].suggestion)
    if axes is None:
        return []
    if not isinstance(axes, dict):
        c.add("expected a mapping of axis name -> list of values or {from, to, steps, scale}", ("axes",))
        return []
    hw_refs = axes.get("hw", [base.get("hw")])
    hw_refs = hw_refs if isinstance(hw_refs, list) else [hw_refs]
    fields: dict[str, object] = {}
    for i, ref in enumerate(hw_refs):
        where = ("axes", "hw", i) if "hw" in axes else ("base", "hw")
        if not isinstance(ref, str):
            c.add(f"expected a catalog id or a YAML file, got {ref!r}", where)
            continue
        try:
            for path, value in hardware_fields(load_hw(ref, base_dir)).items():
                fields.setdefault(path, value)
        except InputError as err:
            c.problems += [Problem(p.message, p.file or c.doc.file, p.line or c.doc.line_of(where),
                                   p.path or dotted(where), p.suggestion) for p in err.problems]
    out = []
    for name, spec in axes.items():
        values = _axis_values(name, spec, c)
        if values is None:
            continue
        if name in ("hw", "model"):
            out.append(Axis(name, tuple(values)))
        elif str(name).startswith("hw."):
            path = str(name)[3:]
            if path not in fields:
                if fields:
                    c.unknown("hardware field", path, fields, ("axes", name))
                continue
            axis = _hw_axis(str(name), values, fields[path], c)
            if axis:
                out.append(axis)
        elif name in knobs:
            out.append(Axis(str(name), tuple(_knob_values(str(name), values, workload.get(name), c))))
        else:
            c.unknown("axis", str(name), [*knobs, "hw", "model", "hw.<field>"], ("axes", name))
    return out


def _axis_values(name, spec, c: _Checker) -> list | None:
    if isinstance(spec, list):
        if not spec:
            c.add("an axis needs at least one value", ("axes", name))
            return None
        for i, v in enumerate(spec):
            if not isinstance(v, (str, int, float, bool)) or (isinstance(v, float) and not math.isfinite(v)):
                c.add(f"expected a plain value, got {v!r}", ("axes", name, i))
                return None
        return list(spec)
    if isinstance(spec, dict):
        return _range(name, spec, c)
    c.add("expected a list of values or a range {from, to, steps, scale}", ("axes", name))
    return None


def _range(name, spec: dict, c: _Checker) -> list | None:
    where = ("axes", name)
    for key in spec:
        if key not in RANGE_KEYS:
            c.unknown("range field", str(key), RANGE_KEYS, (*where, key))
    missing = [k for k in ("from", "to", "steps") if k not in spec]
    for k in missing:
        c.add("required field is missing", (*where, k))
    scale = spec.get("scale", "linear")
    if scale not in ("linear", "log"):
        c.unknown("scale", str(scale), ("linear", "log"), (*where, "scale"))
        return None
    steps = spec.get("steps")
    if missing:
        return None
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        c.add(f"expected a positive integer number of steps, got {steps!r}", (*where, "steps"))
        return None
    lo, hi = spec["from"], spec["to"]
    kind = kind_of(lo) if isinstance(lo, str) else None
    try:
        a = parse_quantity(lo, kind, path="from") if kind else float(lo)
        b = parse_quantity(hi, kind, path="to") if kind else float(hi)
    except (InputError, TypeError, ValueError):
        c.add(f"'from' and 'to' must be numbers or quantities of one dimension, got {lo!r} and {hi!r}", where)
        return None
    if scale == "log" and (a <= 0 or b <= 0):
        c.add("a log range needs positive 'from' and 'to'", where)
        return None
    if steps == 1:
        points = [a]
    elif scale == "log":
        points = [math.exp(math.log(a) + (math.log(b) - math.log(a)) * i / (steps - 1)) for i in range(steps)]
    else:
        points = [a + (b - a) * i / (steps - 1) for i in range(steps)]
    if kind:
        return [si_text(v, kind) for v in points]
    if isinstance(lo, int) and isinstance(hi, int):
        return list(dict.fromkeys(int(round(v)) for v in points))   # integer knobs stay integers
    return points


def _hw_axis(name: str, values: list, current, c: _Checker) -> Axis | None:
    kind = kind_of(current) if isinstance(current, str) else None
    if isinstance(current, str) and kind is None:
        return Axis(name, tuple(values))   # a name-like field (kind, topology)
    out = []
    for i, v in enumerate(values):
        where = ("axes", name, i) if c.doc.line_of(("axes", name, i)) != c.doc.line_of(("axes", name)) \
            else ("axes", name)
        if kind is None:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                c.add(f"expected a number (the field holds {current!r}), got {v!r}", where)
                return None
            out.append(v)
            continue
        try:
            out.append(parse_quantity(v, kind, allow_zero=False))
        except InputError as err:
            got = kind_of(v) if isinstance(v, str) else None
            why = f"'{v}' is {KINDS[got][2]}" if got else err.problems[0].message
            c.add(f"{why}; {name} expects {KINDS[kind][2]} such as '{KINDS[kind][1]}'", where)
            return None
    return Axis(name, tuple(out), kind)


def _knob_values(name: str, values: list, axis, c: _Checker) -> list:
    """``values`` checked against a workload knob's type and range (StepOptions' own check; the
    job's knobs are checked by the job, :func:`_check_job_knobs`)."""
    out = []
    for i, v in enumerate(values):
        if axis is None:     # a job knob
            out.append(v)
            continue
        try:
            out.append(axis.check(v))
        except InputError as err:
            c.add(err.problems[0].message, ("axes", name, i), err.problems[0].suggestion)
    return out


def _check_job_knobs(job: Job, base: dict, axes: list[Axis], base_dir: Path | None, c: _Checker) -> None:
    """The job's own check of its knobs: the base with the first value of every axis, then each
    other value of each axis in turn (a problem is located at the value that causes it)."""
    if job.check is None:
        return
    varied = [a for a in axes if a.name in job.knobs]
    first = {**job.knobs, **{k: v for k, v in base.items() if k in job.knobs},
             **{a.name: a.values[0] for a in varied}}
    trials = [(first, None, 0)] + [({**first, a.name: v}, a.name, i) for a in varied
                                   for i, v in enumerate(a.values) if i]
    for knobs, axis, index in trials:
        try:
            job.check(knobs, base_dir)
        except InputError as err:
            p = err.problems[0]
            name = (p.path or "").split(".")[0]
            where = (("axes", name, index if name == axis else 0) if name in {a.name for a in varied}
                     else ("base", name) if name in base else ("base",))
            c.add(p.message, where, p.suggestion)
            return


def _mode(mode, c: _Checker) -> tuple[str, int | None]:
    if mode == "grid":
        return "grid", None
    if isinstance(mode, dict) and len(mode) == 1:
        (kind, n), = mode.items()
        if kind in ("random", "latin"):
            if isinstance(n, int) and not isinstance(n, bool) and n > 0:
                return kind, n
            c.add(f"expected a positive number of points, got {n!r}", ("mode", kind))
            return "grid", None
        c.unknown("mode", str(kind), MODES, ("mode", kind))
        return "grid", None
    c.add(f"expected 'grid', {{random: N}} or {{latin: N}}, got {mode!r}", ("mode",),
          did_you_mean(str(mode), MODES) if isinstance(mode, str) else None)
    return "grid", None


def _prices(prices, c: _Checker) -> dict[str, float]:
    if prices is None:
        return {}
    if isinstance(prices, (int, float)) and not isinstance(prices, bool):
        prices = {"*": prices}
    if not isinstance(prices, dict):
        c.add("expected dollars per hour: one number, or a mapping of device/system id -> number",
              ("price_per_hour",))
        return {}
    out = {}
    for key, value in prices.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
            c.add(f"expected a positive number of dollars per hour, got {value!r}", ("price_per_hour", key))
        else:
            out[str(key)] = float(value)
    return out


def _objectives(objectives, columns: set, c: _Checker) -> dict[str, str]:
    if not isinstance(objectives, dict):
        c.add("expected a mapping of column -> min|max", ("objectives",))
        return {}
    out = {}
    for name, sense in objectives.items():
        if name not in columns:
            c.unknown("objective", str(name), columns, ("objectives", name))
        elif sense not in SENSES:
            c.unknown("sense", str(sense), SENSES, ("objectives", name))
        else:
            out[str(name)] = sense
    return out


def parse_constraint(text, columns, where=None) -> Constraint:
    """``fits_memory`` or ``column <op> number`` (an InputError naming the problem otherwise)."""
    where = where or {}
    if text == FITS_MEMORY:
        return Constraint(text)
    match = _CONSTRAINT_RE.match(str(text))
    if not match:
        raise InputError(f"expected 'fits_memory' or '<column> <op> <number>' (op one of "
                         f"{', '.join(COMPARISONS)}), got {text!r}", **where)
    column, op, number = match.groups()
    if column not in columns:
        raise InputError(f"unknown column '{column}' in constraint {text!r}; expected one of: "
                         f"{', '.join(sorted(columns))}", suggestion=did_you_mean(column, columns), **where)
    try:
        bound = float(number)
    except ValueError:
        raise InputError(f"'{number}' is not a number", **where) from None
    return Constraint(str(text), column, op, bound)


def _constraints(constraints, columns: set, c: _Checker) -> list[Constraint]:
    if not isinstance(constraints, list):
        c.add("expected a list such as [fits_memory, 'latency_s <= 0.05']", ("constraints",))
        return []
    out = []
    for i, text in enumerate(constraints):
        try:
            out.append(parse_constraint(text, columns))
        except InputError as err:
            p = err.problems[0]
            c.add(p.message, ("constraints", i), p.suggestion)
    return out
