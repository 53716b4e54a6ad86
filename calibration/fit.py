"""Fitting measured rates into efficiency curves and memory ceilings.

Everything here is a pure function of numbers, so it can be checked on synthetic data with
a known answer:

* :func:`isotonic` - pool-adjacent-violators regression (non-decreasing least squares);
* :func:`fit_curve` - measured efficiencies at sizes ``x`` (log10 FLOPs or log10 bytes) ->
  the points of a ``Curve``: medians per size bin, made non-decreasing (a bigger problem of
  the same kind never runs at a lower fraction of peak once launch and tile-edge losses are
  amortized), clamped to ``[floor, 1]``;
* :func:`stream_ceilings` - STREAM bandwidths over working-set sizes -> the empirical
  bandwidth of each memory level (the plateau of the sizes that fit in it, as ERT does).

The calibration only changes rates and efficiencies; the formulas stay those of
``roofline.cost``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hwmodels.device import interp_clamped

EFFICIENCY_FLOOR = 1e-3  # a Curve's efficiency must be > 0; nothing we measure runs below 0.1% of peak


def isotonic(y: Sequence[float], w: Sequence[float] | None = None) -> np.ndarray:
    """The non-decreasing sequence closest to ``y`` in weighted least squares (PAV)."""
    y = np.asarray(y, dtype=float)
    w = np.ones_like(y) if w is None else np.asarray(w, dtype=float)
    blocks: list[list[float]] = []  # [mean, weight, count]
    for yi, wi in zip(y, w):
        blocks.append([yi, wi, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, c2 = blocks.pop()
            m1, w1, c1 = blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    return np.concatenate([np.full(int(c), m) for m, _, c in blocks]) if blocks else y


INTERFERENCE_FRACTION = 1 / 3


def interference_outliers(x: Sequence[float], efficiency: Sequence[float],
                          fraction: float = INTERFERENCE_FRACTION) -> np.ndarray:
    """Which samples ran at under ``fraction`` of the best efficiency of any smaller sample.

    Within one kernel family efficiency does not fall with size by a factor of three (cache
    spills cost tens of percent); such a drop means another program took the cores while the
    kernel ran, so the sample is left out of the fit (and reported).
    """
    xs = np.asarray(x, dtype=float)
    es = np.asarray(efficiency, dtype=float)
    out = np.zeros(xs.size, dtype=bool)
    for i in range(xs.size):
        smaller = es[xs < xs[i]]
        out[i] = smaller.size > 0 and es[i] < fraction * smaller.max()
    return out


def fit_curve(x: Sequence[float], efficiency: Sequence[float], *, bin_width: float = 0.25,
              floor: float = EFFICIENCY_FLOOR, ceiling: float = 1.0,
              monotone: bool = True, decimals: int = 4) -> list[list[float]]:
    """Curve points ``[[x, e], ...]`` fitted to measured ``(x, efficiency)`` pairs.

    Sizes are grouped in bins of ``bin_width`` (in log10 units) starting at the smallest x;
    each bin contributes the median x and median efficiency of its members (robust to one
    noisy kernel). The bin values are made non-decreasing with :func:`isotonic` (weighted by
    bin size) when ``monotone``, then clamped to ``[floor, ceiling]``. Equal efficiencies in a
    row are kept (the curve is piecewise linear and clamped at both ends, so the points span
    the measured range).
    """
    xs = np.asarray(x, dtype=float)
    es = np.asarray(efficiency, dtype=float)
    ok = np.isfinite(xs) & np.isfinite(es) & (es > 0)
    xs, es = xs[ok], es[ok]
    if xs.size == 0:
        raise ValueError("no finite positive efficiencies to fit")
    order = np.argsort(xs, kind="stable")
    xs, es = xs[order], es[order]
    bins = np.floor((xs - xs[0]) / bin_width + 1e-9).astype(int)
    bx, be, bw = [], [], []
    for b in np.unique(bins):
        sel = bins == b
        bx.append(float(np.median(xs[sel])))
        be.append(float(np.median(es[sel])))
        bw.append(float(sel.sum()))
    be_arr = isotonic(be, bw) if monotone else np.asarray(be)
    be_arr = np.clip(be_arr, floor, ceiling)
    points = [[round(float(xv), decimals), round(float(ev), decimals)] for xv, ev in zip(bx, be_arr)]
    # rounding may merge two x values; keep strictly increasing x (the Curve schema requires it)
    out: list[list[float]] = []
    for p in points:
        if out and p[0] <= out[-1][0]:
            out[-1][1] = max(out[-1][1], p[1])
            continue
        out.append(p)
    return out


def curve_value(points: Sequence[Sequence[float]], x: float) -> float:
    """A curve's efficiency at ``x``: piecewise linear, clamped at both ends (the same interpolation
    as the device's :class:`~hwmodels.device.Curve`)."""
    return float(interp_clamped(x, [float(p[0]) for p in points], [float(p[1]) for p in points]))


def median_curve(families: dict[str, tuple[Sequence[float], Sequence[float]]], *,
                 bin_width: float = 0.25, floor: float = EFFICIENCY_FLOOR, decimals: int = 4) -> list[list[float]]:
    """One curve for several kernel families that share a resource: the median of their curves.

    Each family's ``(x, efficiency)`` samples are fitted on their own (:func:`fit_curve`); at
    every x where any family has a point, the families' curves (clamped outside their measured
    range) are evaluated and the median taken; the result is made non-decreasing and clamped.
    Every family counts once, however many sizes it was measured at.
    """
    curves = [fit_curve(xs, es, bin_width=bin_width, floor=floor, decimals=decimals)
              for xs, es in families.values() if len(xs)]
    if not curves:
        raise ValueError("no family has samples")
    grid = sorted({round(p[0], 2) for c in curves for p in c})
    values = [float(np.median([curve_value(c, x) for c in curves])) for x in grid]
    values = np.clip(isotonic(values), floor, 1.0)
    return [[round(float(x), decimals), round(float(v), decimals)] for x, v in zip(grid, values)]


@dataclass(frozen=True)
class LevelBand:
    """The working-set sizes that exercise one memory level: ``(low_bytes, high_bytes]``."""

    level: str
    low_bytes: float
    high_bytes: float


# A working set "lives in" a level when it fits there with room to spare (code, stack, the other
# arrays of the program and imperfect replacement share the cache): at most half of it.
BAND_MARGIN = 2.0


def level_capacities(device, caches: dict[str, int] | None = None) -> list[tuple[str, float]]:
    """(level, bytes one core sees) nearest to farthest: the per-instance cache sizes in
    ``caches`` where known (a one-core kernel has one core's L1 and L2), else the level's capacity."""
    caches = caches or {}
    return [(name, float(caches.get(name, lv.capacity_bytes))) for name, lv in device.memory.items()]


def resident_level(working_set_bytes: float, capacities: Sequence[tuple[str, float]],
                   margin: float = BAND_MARGIN) -> str:
    """The nearest level (``capacities`` nearest to farthest) that holds ``working_set_bytes``
    with ``margin`` to spare; the farthest level when none does. The bands of
    :func:`level_bands` are the sizes this puts in each level, less the transition zone just
    past the level inside."""
    for name, cap in capacities:
        if working_set_bytes * margin <= cap:
            return name
    return capacities[-1][0]


def level_bands(capacities: Sequence[tuple[str, float]], margin: float = BAND_MARGIN) -> list[LevelBand]:
    """Working-set bands per level from capacities ordered nearest to farthest.

    A working set exercises level i when it does not fit in level i-1 and fits in level i
    with room to spare: ``(cap[i-1], cap[i] / margin]``. The last level (main memory) takes
    every size at least ``margin`` times the previous capacity.
    """
    bands: list[LevelBand] = []
    prev = 0.0
    for i, (name, cap) in enumerate(capacities):
        last = i == len(capacities) - 1
        if last:
            bands.append(LevelBand(name, prev * margin, float("inf")))
        else:
            bands.append(LevelBand(name, prev, cap / margin))
        prev = cap
    return bands


def stream_ceilings(sizes_bytes: Sequence[float], bandwidths: Sequence[float], kernels: Sequence[str],
                    bands: Sequence[LevelBand]) -> dict[str, float]:
    """Empirical bandwidth (B/s) of each level from STREAM runs.

    In each band, each kernel's median bandwidth over its sizes is taken and the best kernel
    wins (ERT reports the best attainable rate). A level nearer the core is never slower than
    a farther one: where a near level's plateau is hidden (by call overhead at tiny sizes), it
    inherits the farther level's ceiling. Levels with no size in their band are left out.
    """
    sizes = np.asarray(sizes_bytes, dtype=float)
    bws = np.asarray(bandwidths, dtype=float)
    kern = np.asarray(kernels)
    raw: dict[str, float] = {}
    for band in bands:
        sel = (sizes > band.low_bytes) & (sizes <= band.high_bytes) & np.isfinite(bws)
        if not sel.any():
            continue
        raw[band.level] = max(float(np.median(bws[sel & (kern == k)])) for k in np.unique(kern[sel]))
    out: dict[str, float] = {}
    farther = 0.0
    for band in reversed(bands):
        if band.level in raw:
            farther = max(raw[band.level], farther)
            out[band.level] = farther
    return {b.level: out[b.level] for b in bands if b.level in out}


def rel_error(predicted: float | None, measured: float) -> float | None:
    """``predicted / measured - 1`` (None when there is no prediction)."""
    if predicted is None or not math.isfinite(predicted) or measured <= 0:
        return None
    return predicted / measured - 1.0
