"""Prediction intervals from held-out residuals: orientation, split-conformal bounds, fallbacks,
leave-one-out coverage, the bundled table, and the CLI keys."""

import json
import math

import pytest
from clitools import run

from calibration.intervals import (
    _quantiles,
    bounds,
    coverage,
    fit_table,
    interval,
    load_table,
    residual,
    table_document,
)


def row(measured, predicted, unit="ms", cls="decode", regime="memory-bound", role="held-out"):
    return {"measured": measured, "predicted": predicted, "unit": unit, "class": cls, "regime": regime, "role": role}


def test_residual_is_a_cost_ratio_whatever_the_unit():
    # a time 12 measured for 10 predicted: the run was 1.2x slower than predicted
    assert residual(row(12.0, 10.0)) == pytest.approx(math.log(1.2))
    # a rate 100 measured for 125 predicted: also slower than predicted (by 1.25x)
    assert residual(row(100.0, 125.0, unit="tok/s")) == pytest.approx(math.log(1.25))
    assert residual(row(1.0, None)) is None


def test_split_conformal_ranks():
    # n = 9 at 80%: ranks floor(10 x 0.1) = 1 and ceil(10 x 0.9) = 9: the extremes
    assert _quantiles(list(range(1, 10)), 0.8) == (1, 9)
    # n = 19: ranks floor(20 x 0.1) = 2 and ceil(20 x 0.9) = 18
    assert _quantiles(list(range(19, 0, -1)), 0.8) == (2, 18)


def test_interval_scales_costs_and_rates_the_right_way():
    table = {"gemm": {"n": 5, "lo": -0.1, "hi": 0.2}}
    assert bounds(table, "gemm", "compute-bound")[2] == "gemm"        # no gemm/compute-bound group: the class
    assert interval(10.0, table, "gemm", "compute-bound") == pytest.approx([10 * math.exp(-0.1), 10 * math.exp(0.2)])
    assert interval(10.0, table, "gemm", None, rate=True) == pytest.approx([10 * math.exp(-0.2), 10 * math.exp(0.1)])
    assert bounds(table, "decode", "memory-bound")[2] == "none"


def test_fit_rows_never_enter_and_small_groups_fall_back():
    rows = [row(1.0, 1.0) for _ in range(4)] + [row(2.0, 1.0, role="fit")]
    table = fit_table(rows)
    assert table == {}   # 4 held-out rows: no group reaches 5
    table = fit_table(rows + [row(1.0, 1.0, cls="gemm")])
    assert set(table) == {"all", "memory-bound"} and table["all"]["n"] == 5


def test_leave_one_out_coverage_by_hand():
    # six exact predictions and one 2x too optimistic: left out, the outlier meets [0, 0] (outside);
    # each exact row meets the other five and the outlier, n = 6: ranks max(1, floor(0.7)) = 1 and
    # min(6, ceil(6.3)) = 6, so [0, log 2], which holds 0: 6 of 7 inside
    rows = [row(1.0, 1.0) for _ in range(6)] + [row(2.0, 1.0)]
    cov = coverage(rows)
    assert cov["all"] == {"n": 7, "inside": 6, "coverage": 6 / 7}


def test_bundled_table_is_the_current_validation_and_covers_the_target():
    from calibration.public import validate_public

    rows = validate_public()
    assert load_table() == json.loads(json.dumps(table_document(rows)["groups"])), \
        "rerun `python -m calibration.intervals`"
    cov = coverage(rows)["all"]
    assert 0.75 <= cov["coverage"] <= 0.90


def test_cli_op_and_simulate_carry_intervals(capsys):
    code, out, _ = run(capsys, "op", "matmul", "--hw", "h100-sxm", "--m", "64", "--n", "4096", "--k", "4096",
                       "--format", "json")
    d = json.loads(out)
    lo, hi = d["latency_s_interval"]
    assert code == 0 and lo <= d["latency_s"] <= hi and d["regime"] == "memory-bound"
    code, text, _ = run(capsys, "op", "matmul", "--hw", "h100-sxm", "--m", "64", "--n", "4096", "--k", "4096")
    lo, hi = d["energy_j_interval"]
    assert f"{d['energy_j']:.4g} J (80% interval {lo:.4g} - {hi:.4g})" in text
    code, out, _ = run(capsys, "simulate", "--hw", "h100-sxm", "--model", "llama-3.1-8b", "--phase", "decode",
                       "--batch", "8", "--context", "512", "--format", "json", "--no-timeline", "--top", "0")
    d = json.loads(out)
    for key in ("latency_s", "throughput_tok_s", "energy_j", "energy_per_token_j"):
        lo, hi = d[f"{key}_interval"]
        assert lo < hi
    code, out, _ = run(capsys, "simulate", "--hw", "h100-sxm", "--model", "llama-3.1-8b", "--phase", "decode",
                       "--batch", "8", "--context", "512", "--top", "0")
    assert "80% interval" in out
