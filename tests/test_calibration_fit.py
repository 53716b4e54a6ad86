"""Fitting on synthetic data whose answer is worked out by hand."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calibration.fit import (
    LevelBand,
    curve_value,
    fit_curve,
    interference_outliers,
    isotonic,
    level_bands,
    median_curve,
    stream_ceilings,
)


def test_isotonic_pools_a_violating_pair():
    assert isotonic([1, 3, 2, 4]).tolist() == [1, 2.5, 2.5, 4]


def test_isotonic_weights_the_pool():
    # (3*1 + 1*3) / 4 = 1.5
    assert isotonic([3, 1], [1, 3]).tolist() == [1.5, 1.5]


def test_fit_curve_recovers_a_linear_law_with_one_outlier_per_bin():
    # true efficiency 0.1 * (x - 5) at x = 6, 7, 8, 9; three samples each, one wild
    xs, es = [], []
    for x in (6, 7, 8, 9):
        true = 0.1 * (x - 5)
        xs += [x, x, x]
        es += [true, true, true * 3]  # the median ignores the outlier
    pts = fit_curve(xs, es, bin_width=0.5)
    assert pts == [[6.0, 0.1], [7.0, 0.2], [8.0, 0.3], [9.0, 0.4]]
    assert curve_value(pts, 7.5) == pytest.approx(0.25)
    assert curve_value(pts, 3.0) == pytest.approx(0.1)   # clamped below
    assert curve_value(pts, 12.0) == pytest.approx(0.4)  # clamped above


def test_fit_curve_pools_a_dip_and_clamps_to_one():
    # bins at 6 (0.5), 7 (0.3: a dip), 8 (1.4: above peak)
    pts = fit_curve([6, 7, 8], [0.5, 0.3, 1.4], bin_width=0.5)
    assert pts == [[6.0, 0.4], [7.0, 0.4], [8.0, 1.0]]


def test_fit_curve_bins_neighbouring_sizes():
    # 6.0 and 6.1 share a bin of width 0.25: median x 6.05, median e 0.3
    pts = fit_curve([6.0, 6.1, 7.0], [0.2, 0.4, 0.6], bin_width=0.25)
    assert pts == [[6.05, 0.3], [7.0, 0.6]]


def test_fit_curve_refuses_empty_input():
    with pytest.raises(ValueError):
        fit_curve([6.0], [float("nan")])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(3, 12), st.floats(1e-4, 2.0)), min_size=1, max_size=40))
def test_fitted_curves_are_valid_and_monotone(pairs):
    xs, es = zip(*pairs)
    pts = fit_curve(xs, es)
    px = [p[0] for p in pts]
    pe = [p[1] for p in pts]
    assert all(b > a for a, b in zip(px, px[1:]))
    assert all(b >= a for a, b in zip(pe, pe[1:]))
    assert all(0 < e <= 1 for e in pe)


def test_level_bands_by_hand():
    bands = level_bands([("l1", 32e3), ("l2", 512e3), ("dram", 1e12)])
    assert bands == [LevelBand("l1", 0.0, 16e3), LevelBand("l2", 32e3, 256e3),
                     LevelBand("dram", 1024e3, math.inf)]


def test_stream_ceilings_take_the_best_kernel_and_never_slow_down_inward():
    bands = level_bands([("l1", 32e3), ("l2", 512e3), ("dram", 1e12)])
    sizes = [8e3, 16e3, 64e3, 128e3, 64e3, 128e3, 2e6, 8e6, 2e6, 8e6]
    kern = ["copy", "copy", "copy", "copy", "triad", "triad", "copy", "copy", "triad", "triad"]
    # l1: overhead-bound at 5 GB/s; l2: copy median 50, triad median 70; dram: copy 20, triad 10
    bws = [4e9, 6e9, 40e9, 60e9, 70e9, 70e9, 20e9, 20e9, 10e9, 10e9]
    ceil = stream_ceilings(sizes, bws, kern, bands)
    assert ceil == {"l1": 70e9, "l2": 70e9, "dram": 20e9}


def test_stream_ceilings_skip_levels_without_sizes():
    bands = level_bands([("l1", 32e3), ("l2", 512e3), ("dram", 1e12)])
    ceil = stream_ceilings([4e6], [10e9], ["copy"], bands)
    assert ceil == {"dram": 10e9}
    assert np.isfinite(list(ceil.values())).all()


def test_interference_outliers_by_hand():
    # 0.9 at x=8 is fine; 0.2 at x=9 is under a third of 0.9 -> interference; 0.35 at x=7 has
    # only 0.5 below it (0.35 >= 0.5/3) -> kept
    mask = interference_outliers([6, 7, 8, 9], [0.5, 0.35, 0.9, 0.2])
    assert mask.tolist() == [False, False, False, True]


def test_median_curve_gives_each_family_one_vote():
    # three families, flat curves 1.0, 0.2 and 0.1 (the first measured at many sizes): median 0.2
    fams = {"stream": ([5, 6, 7, 8, 9], [1.0] * 5), "softmax": ([6, 8], [0.2, 0.2]), "gelu": ([7], [0.1])}
    assert median_curve(fams) == [[5.0, 0.2], [6.0, 0.2], [7.0, 0.2], [8.0, 0.2], [9.0, 0.2]]
    # two families rising at different rates: the median of two is their mean, per grid point
    fams = {"a": ([6, 8], [0.2, 0.6]), "b": ([6, 8], [0.4, 1.0])}
    assert median_curve(fams) == [[6.0, 0.3], [8.0, 0.8]]
