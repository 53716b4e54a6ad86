"""Prediction intervals from held-out residuals: orientation, split-conformal bounds, fallbacks,
leave-one-out coverage, the bundled table, and the CLI keys."""

import json
import math

import pytest
from clitools import run

from calibration.intervals import (
    _quantiles,
    basis,
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


def test_bundled_table_is_the_current_validation_and_covers_the_target(public_rows):
    rows = public_rows
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


# -- serving runs ----------------------------------------------------------------------------------
def _fake_serving_table():
    # two serving rows (too few for a group of their own), three decode rows and one GEMM, all
    # memory-bound; measured / predicted of the times: serving 1.1, 1.2; decode 0.9, 1.0, 1.3
    rows = [row(1.1, 1.0, cls="serving"), row(1.2, 1.0, cls="serving"),
            row(0.9, 1.0), row(1.0, 1.0), row(1.3, 1.0), row(3.0, 1.0, cls="gemm")]
    return fit_table(rows)


def test_serving_borrows_the_pooled_llm_rows_by_hand():
    table = _fake_serving_table()
    # the pool llm/memory-bound holds the 5 serving and decode residuals log(0.9 .. 1.3); n = 5 at
    # 80%: ranks max(1, floor(0.6)) = 1 and min(5, ceil(5.4)) = 5, so [log 0.9, log 1.3]; the GEMM's 3.0
    # is not an LLM row (it widens only memory-bound and all)
    assert "serving" not in table and table["llm/memory-bound"]["n"] == 5
    assert table["memory-bound"]["n"] == 6
    assert table["llm/memory-bound"]["lo"] == pytest.approx(math.log(0.9))
    assert table["llm/memory-bound"]["hi"] == pytest.approx(math.log(1.3))
    b = basis(table, "serving", "memory-bound")
    assert (b["group"], b["n"], b["fallback"]) == ("llm/memory-bound", 5, True)
    # a decode figure does not borrow from the pool: decode/memory-bound (3) and decode (3) are too
    # few, so the regime alone (6 rows)
    assert bounds(table, "decode", "memory-bound")[2] == "memory-bound"


def test_serve_interval_block_by_hand():
    from calibration.intervals import serve_interval_block

    table = _fake_serving_table()
    metrics = {"ttft_s": {"mean": 0.010, "median": 0.0}, "throughput": {"requests_per_s": 100.0},
               "goodput": {"requests_per_s": 50.0, "slo": {"ttft_s": 1.0}},
               "energy": {"total_j": 20.0, "j_per_output_token": 0.5}, "duration_s": 3.0}
    out = serve_interval_block(metrics, "memory-bound", table)
    # a time: 10 ms x [0.9, 1.3] = [9, 13] ms; a rate: 100 / [1.3, 0.9] = [76.92, 111.1]
    assert out["ttft_s"]["mean_interval"] == pytest.approx([0.009, 0.013])
    assert "median_interval" not in out["ttft_s"]          # a zero (no such request) gets none
    assert out["throughput"]["requests_per_s_interval"] == pytest.approx([100 / 1.3, 100 / 0.9])
    assert out["goodput"]["requests_per_s_interval"] == pytest.approx([50 / 1.3, 50 / 0.9])
    # energy has no group of its own: the regime's 6 residuals log(0.9, 1.0, 1.1, 1.2, 1.3, 3.0),
    # ranks max(1, floor(0.7)) = 1 and min(6, ceil(6.3)) = 6: 20 J x [0.9, 3.0] = [18, 60] J
    assert out["energy"]["total_j_interval"] == pytest.approx([18.0, 60.0])
    assert out["interval_basis"]["energy"]["group"] == "memory-bound"
    assert out["interval_basis"]["serving"]["group"] == "llm/memory-bound"


def test_serve_result_carries_intervals_in_json_and_frame():
    from calibration.intervals import attach_serve_intervals
    from simulator.serving import serve

    res = serve("llama-3.1-8b", "h100-sxm", num_requests=4, input_len="64", output_len="4", seed=0)
    assert res.intervals == {} and "ttft_s_interval" not in res.to_dict(requests=False)["metrics"]
    res.metrics["regime"] = "memory-bound"   # the lookup's key, set so the factors are known by hand
    attach_serve_intervals(res, _fake_serving_table())
    m = res.to_dict(requests=False)["metrics"]
    # llm/memory-bound of the fake table: times x [0.9, 1.3], rates / [1.3, 0.9]
    assert m["ttft_s"]["p99_interval"] == pytest.approx([m["ttft_s"]["p99"] * f for f in (0.9, 1.3)])
    rate = m["throughput"]["output_tokens_per_s"]
    assert m["throughput"]["output_tokens_per_s_interval"] == pytest.approx([rate / 1.3, rate / 0.9])
    assert res.metrics["ttft_s"].keys() == {"mean", "median", "p90", "p95", "p99"}   # metrics untouched
    frame = res.metrics_frame()
    shown = frame.dropna(subset=["lo"])
    assert len(shown) >= 20 and ((shown["lo"] <= shown["value"]) & (shown["value"] <= shown["hi"])).all()
    assert set(frame["block"]) >= {"ttft_s", "tpot_s", "itl_s", "e2e_s", "throughput", "goodput", "energy"}


def test_figure_rows_take_each_blocks_basis():
    from simulator.serving.result import figure_rows

    metrics = {"ttft_s": {"mean": 2.0, "mean_interval": [1.5, 3.0]},
               "energy": {"total_j": 10.0, "total_j_interval": [8.0, 12.0], "j_per_output_token": 0.5},
               "kv": {"blocks": 7}, "regime": "memory-bound",
               "interval_basis": {"serving": {"group": "llm/memory-bound"}, "energy": {"group": "energy"}}}
    rows = {(r["block"], r["key"]): r for r in figure_rows(metrics)}
    # kv and the basis are not figures; a figure without an interval has no lo/hi
    assert set(rows) == {("ttft_s", "mean"), ("energy", "total_j"), ("energy", "j_per_output_token")}
    assert rows["ttft_s", "mean"] == {"block": "ttft_s", "key": "mean", "value": 2.0, "lo": 1.5, "hi": 3.0,
                                      "basis": "llm/memory-bound"}
    assert rows["energy", "total_j"]["basis"] == "energy" and "lo" not in rows["energy", "j_per_output_token"]


def test_serving_run_regime_follows_the_work():
    from simulator.serving import serve

    # one 4096-token prompt and a single output token: the prefill's GEMMs (4096 rows each) are
    # compute-bound on an H100; one sequence decoding 256 tokens reads every weight per token
    prefill = serve("llama-3.1-8b", "h100-sxm", num_requests=2, input_len="4096", output_len="1")
    decode = serve("llama-3.1-8b", "h100-sxm", num_requests=1, input_len="16", output_len="256")
    assert prefill.metrics["regime"] == "compute-bound"
    assert decode.metrics["regime"] == "memory-bound"


def test_cli_serve_carries_intervals(capsys):
    code, out, _ = run(capsys, "serve", "--hw", "h100-sxm", "--model", "llama-3.1-8b", "--num-requests", "6",
                       "--rate", "4", "--input-len", "64", "--output-len", "8", "--format", "json",
                       "--no-requests")
    m = json.loads(out)["metrics"]
    assert code == 0 and m["regime"] in ("compute-bound", "memory-bound", "overhead-bound")
    table = load_table()
    assert set(m["interval_basis"]) == {"serving", "energy"}
    assert m["interval_basis"]["serving"]["group"] in table

    def residual_bounds(cls):
        group = table[m["interval_basis"][cls]["group"]]
        return group["lo"], group["hi"]

    # a latency's interval is the figure x e^(the group's 10% and 90% residuals); it need not hold
    # the figure itself (a class whose held-out runs were all slower than predicted lies above it)
    lo_r, hi_r = residual_bounds("serving")
    for block in ("ttft_s", "tpot_s", "itl_s", "e2e_s"):
        for stat in ("mean", "median", "p99"):
            lo, hi = m[block][f"{stat}_interval"]
            assert lo == pytest.approx(m[block][stat] * math.exp(lo_r)) and hi == pytest.approx(m[block][stat] * math.exp(hi_r))
            assert 0 < lo < hi
    # a rate's interval turns the residuals over: figure x e^-hi .. figure x e^-lo
    for block, key in (("throughput", "requests_per_s"), ("throughput", "output_tokens_per_s"),
                       ("goodput", "requests_per_s")):
        lo, hi = m[block][f"{key}_interval"]
        assert lo == pytest.approx(m[block][key] * math.exp(-hi_r)) and hi == pytest.approx(m[block][key] * math.exp(-lo_r))
    lo_e, hi_e = residual_bounds("energy")
    for key in ("total_j", "j_per_output_token"):
        lo, hi = m["energy"][f"{key}_interval"]
        assert lo == pytest.approx(m["energy"][key] * math.exp(lo_e)) and hi == pytest.approx(m["energy"][key] * math.exp(hi_e))
    code, out, _ = run(capsys, "serve", "--hw", "h100-sxm", "--model", "llama-3.1-8b", "--num-requests", "6",
                       "--input-len", "64", "--output-len", "8")
    assert code == 0 and "80% intervals" in out and "[" in out.split("latency (ms)")[1]
    # bad input is refused as before (exit 2, no result)
    code, out, err = run(capsys, "serve", "--hw", "h100-sxm", "--model", "llama-3.1-8b", "--num-requests", "2",
                         "--rate", "-1", "--format", "json")
    assert code == 2 and out == "" and "rate" in err
