"""Strict parsing of quantities with units ("3.35 TB/s", "80 GiB", "700 W").

Every hardware quantity in YAML carries a unit; a bare number, a unit of the wrong
dimension, a non-finite or a non-positive rate are input errors. Decimal prefixes
(k, M, G, T) and binary ones (Ki, Mi, Gi, Ti) are kept apart: 1 GB = 1e9 B and
1 GiB = 2**30 B. Internally everything is in SI base units: s, B, FLOP, J, W.

The registry is Ridgeline's own (not pint's default one) so that bytes and FLOPs are
real dimensions: a bandwidth given in GB is then an error that says so.
"""

from __future__ import annotations

import math
import re
import sys
from functools import lru_cache
from typing import TYPE_CHECKING

from .errors import InputError

if TYPE_CHECKING:
    import pint

_DEFINITIONS = """
pico- = 1e-12 = p-
nano- = 1e-9 = n-
micro- = 1e-6 = u- = µ-
milli- = 1e-3 = m-
kilo- = 1e3 = k- = K-
mega- = 1e6 = M-
giga- = 1e9 = G-
tera- = 1e12 = T-
peta- = 1e15 = P-
exa- = 1e18 = E-
kibi- = 2**10 = Ki-
mebi- = 2**20 = Mi-
gibi- = 2**30 = Gi-
tebi- = 2**40 = Ti-
pebi- = 2**50 = Pi-
second = [time] = s = sec
minute = 60 * second = min
hour = 3600 * second = h
hertz = 1 / second = Hz
byte = [information] = B
bit = byte / 8 = b
flop = [computation] = FLOP
op = flop = OP
flop_per_second = flop / second = FLOPS
op_per_second = op / second = OPS
joule = [energy] = J
watt = joule / second = W
"""

# A number followed by a unit made of names joined by '/' or '*'. Checked before pint sees the
# text, since pint evaluates expressions ("3 TB/s; 2", "9**9**9 B") rather than just parsing them.
QUANTITY_RE = re.compile(r"^\s*[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|nan|inf)\s*"
                         r"[A-Za-zµ]+(?:\s*[/*]\s*[A-Za-zµ]+)*\s*$", re.IGNORECASE)

# kind -> (dimensionality string, example, description)
KINDS: dict[str, tuple[str, str, str]] = {
    "bandwidth": ("[information] / [time]", "3.35 TB/s", "a bandwidth"),
    "capacity": ("[information]", "80 GiB", "a data size"),
    "time": ("[time]", "250 ns", "a time"),
    "frequency": ("1 / [time]", "1.98 GHz", "a frequency"),
    "power": ("[energy] / [time]", "700 W", "a power"),
    "energy": ("[energy]", "1 J", "an energy"),
    "energy_per_byte": ("[energy] / [information]", "5 pJ/B", "an energy per byte"),
    "energy_per_flop": ("[energy] / [computation]", "0.5 pJ/FLOP", "an energy per FLOP"),
    "compute_rate": ("[computation] / [time]", "989 TFLOP/s", "a compute rate"),
}


# kind -> (smallest positive, largest) SI value accepted. Outside it the figures derived from it
# (a latency = bytes / bandwidth, an energy = power x time) leave the range of a float, so such a
# value is an error, not a prediction. Zero stays allowed where ``allow_zero`` says; a lower bound
# of 0 means only denormal numbers are refused (the quantity is added, never divided by).
COMPUTABLE: dict[str, tuple[float, float]] = {
    "bandwidth": (1.0, 1e21), "capacity": (1.0, 1e24), "time": (0.0, 1e9),
    "frequency": (1.0, 1e15), "power": (0.0, 1e12), "energy": (0.0, 1e15),
    "energy_per_byte": (0.0, 1.0), "energy_per_flop": (0.0, 1.0), "compute_rate": (1.0, 1e24),
}

# kind -> (low, high) SI range of real hardware, generously: a value outside is legal but earns a
# warning naming the field (a memory latency of 400 s, a bandwidth under 1 MB/s are typos).
# None: no bound on that side.
PLAUSIBLE: dict[str, tuple[float | None, float | None]] = {
    "bandwidth": (1e6, 1e17),          # 1 MB/s .. 100 PB/s (a wafer-scale chip's SRAM: 21 PB/s)
    "capacity": (1e3, 1e16),           # 1 kB .. 10 PB
    "time": (None, 1.0),               # latencies and overheads: at most a second
    "frequency": (1e6, 1e11),          # 1 MHz .. 100 GHz
    "power": (None, 1e6),              # at most 1 MW per device
    "energy": (None, 1e6),
    "energy_per_byte": (None, 1e-8),   # at most 10 nJ/B (DRAM: about 0.1 nJ/B)
    "energy_per_flop": (None, 1e-9),   # at most 1 nJ/FLOP (today: 0.1 .. 10 pJ/FLOP)
    "compute_rate": (1e6, 1e18),       # 1 MFLOP/s .. 1 EFLOP/s per device
}


@lru_cache(maxsize=1)
def registry() -> pint.UnitRegistry:
    """Ridgeline's unit registry (bytes and FLOPs are dimensions of their own)."""
    import pint  # on first use: pint takes a fifth of a second to import

    ureg = pint.UnitRegistry(None)
    for line in _DEFINITIONS.strip().splitlines():
        ureg.define(line)
    return ureg


def _describe(dimensionality) -> str:
    text = str(dimensionality)
    for kind, (dim, _example, desc) in KINDS.items():
        if text == str(registry().get_dimensionality(dim)):
            return f"{desc} ({kind})"
    return text or "a plain number"


@lru_cache(maxsize=4096)
def _parse_text(text: str, kind: str) -> float:
    import pint  # loaded by registry()

    ureg = registry()
    dim, example, desc = KINDS[kind]
    if not QUANTITY_RE.match(text):
        raise InputError(f"'{text}' is not a number followed by a unit; expected {desc} such as '{example}'")
    try:
        q = ureg.Quantity(text)
    except Exception as exc:  # pint raises many types for malformed units; all mean the same here
        raise InputError(f"cannot parse '{text}' as {desc} with a unit (e.g. '{example}'): {exc}") from None
    if not isinstance(q, pint.Quantity) or q.dimensionless:
        raise InputError(f"'{text}' has no unit; expected {desc} such as '{example}'")
    if q.dimensionality != ureg.get_dimensionality(dim):
        raise InputError(f"'{text}' is {_describe(q.dimensionality)}; expected {desc} such as '{example}'")
    return float(q.to_base_units().magnitude)


def parse_quantity(value, kind: str, *, path: str | None = None, allow_zero: bool = False) -> float:
    """``value`` (a string with a unit) as a float in SI base units.

    ``kind`` names the expected dimension (see :data:`KINDS`). Rates and sizes must be
    positive; ``allow_zero`` admits 0 (latencies and energies may be zero).
    """
    if kind not in KINDS:
        raise KeyError(kind)
    _dim, example, desc = KINDS[kind]
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InputError(f"expected {desc} as a string with a unit such as '{example}', "
                         f"got {type(value).__name__}", path=path)
    if not isinstance(value, str):
        if value == 0 and allow_zero:
            return 0.0
        raise InputError(f"'{value}' has no unit; expected {desc} such as '{example}'", path=path)
    try:
        magnitude = _parse_text(value.strip(), kind)
    except InputError as err:
        raise InputError(err.problems[0].message, path=path) from None
    if not math.isfinite(magnitude):
        raise InputError(f"'{value}' is not a finite number", path=path)
    if magnitude < 0 or (magnitude == 0 and not allow_zero):
        bound = "non-negative" if allow_zero else "positive"
        raise InputError(f"'{value}' must be {bound}", path=path)
    if 0 < magnitude < sys.float_info.min:
        raise InputError(f"'{value}' is too small to compute with (a denormal number)", path=path)
    low, high = COMPUTABLE[kind]
    if magnitude and not low <= magnitude <= high:
        unit = _UNIT[kind]
        span = f"{low:g} {unit} to {high:g} {unit}" if low else f"at most {high:g} {unit}"
        raise InputError(f"'{value}' is outside the range Ridgeline can compute with: {span}", path=path)
    return magnitude


def implausible(value: float, kind: str) -> str | None:
    """Why the SI ``value`` of ``kind`` is outside the range of real hardware (:data:`PLAUSIBLE`),
    e.g. ``"is above 1 s, beyond real hardware; a typo?"``, or None when it is inside."""
    low, high = PLAUSIBLE[kind]
    if value and low is not None and value < low:
        return f"is below {format_quantity(low, kind)}, beyond real hardware; a typo?"
    if high is not None and value > high:
        return f"is above {format_quantity(high, kind)}, beyond real hardware; a typo?"
    return None


_DECIMAL = [(1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, "")]
_SMALL = [(1.0, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n"), (1e-12, "p")]
_UNIT = {"bandwidth": "B/s", "capacity": "B", "time": "s", "frequency": "Hz", "power": "W",
         "energy": "J", "energy_per_byte": "J/B", "energy_per_flop": "J/FLOP", "compute_rate": "FLOP/s"}


def format_quantity_exact(value: float, kind: str) -> str:
    """:func:`format_quantity` with the fewest digits (at least 4) that :func:`parse_quantity`
    reads back as exactly ``value``: a figure computed at run time, shown with units, unchanged.
    A capacity that is a whole number (below 10000) of KiB, MiB, ... is written so (cache sizes)."""
    if kind == "capacity" and value > 0:
        for scale, prefix in ((2**50, "Pi"), (2**40, "Ti"), (2**30, "Gi"), (2**20, "Mi"), (2**10, "Ki")):
            if value % scale == 0 and value / scale < 10_000:
                return f"{value / scale:g} {prefix}B"
    for digits in range(4, 18):
        text = format_quantity(value, kind, digits)
        if parse_quantity(text, kind, allow_zero=True) == value:
            return text
    return f"{value!r} {_UNIT[kind]}"   # no prefix scales back exactly: the number as it is


def format_quantity(value: float, kind: str, digits: int = 4) -> str:
    """A human-readable string for an SI value, parseable back by :func:`parse_quantity`."""
    unit = _UNIT[kind]
    if value == 0:
        return f"0 {unit}"
    if kind == "capacity" and value >= 2**30 and value % 2**30 == 0:
        for scale, prefix in ((2**50, "Pi"), (2**40, "Ti"), (2**30, "Gi")):
            if value % scale == 0:
                return f"{value / scale:g} {prefix}{unit}"
    table = _DECIMAL if abs(value) >= 1 else _SMALL
    for scale, prefix in table:
        if abs(value) >= scale:
            return f"{value / scale:.{digits}g} {prefix}{unit}"
    scale, prefix = table[-1]
    return f"{value / scale:.{digits}g} {prefix}{unit}"


def si_text(value: float, kind: str) -> str:
    """``value`` (SI) written exactly in the SI unit of ``kind`` ("2000000000000.0 B/s"):
    :func:`parse_quantity` gives back the same float."""
    return f"{float(value)!r} {_UNIT[kind]}"


def kind_of(text: str) -> str | None:
    """The kind (see :data:`KINDS`) whose dimension the quantity ``text`` has, or None."""
    for kind in KINDS:
        try:
            parse_quantity(text, kind, allow_zero=True)
        except InputError:
            continue
        return kind
    return None
