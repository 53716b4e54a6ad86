"""Energy model: idle x makespan + active baseline x busy time + dynamic energy; the active power
in the hardware schema; the TDP rule behind the catalog's energy per FLOP; the one-row fit."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hwmodels
import workloads
from hwmodels.defaults import ACTIVE_POWER_FRACTION, active_power_w
from hwmodels.errors import InputError
from roofline.demands import Demands
from simulator import simulate
from workloads.operators import MatMul, MemCopy


@pytest.fixture(scope="module")
def gpu():
    # static 70 W, TDP 700 W (h100-sxm), active baseline pinned at 300 W for hand arithmetic
    return hwmodels.load_device("h100-sxm").with_overrides({"power.active": "300 W"})


def _timed(times_s: dict[str, float], energy_j: float = 0.1, key: str = "compute:tensor"):
    """A cost function: operator name -> seconds of work on ``key`` (rate 1e12/s), fixed energy."""
    def cost(op, device):
        k = "memory:hbm" if op.kind == "memcopy" else key
        return Demands(op.name, {k: times_s[op.name] * 1e12}, {k: 1e12}, 0.0, energy_j, op.kind)
    return cost


def _chain_with_gap():
    """a (stage 0) -> b (stage 1) -> c (stage 0): gpu0 idles while b runs on gpu1."""
    g = workloads.Graph("gap", meta={"pp": 2, "tokens": 1})
    g.add(MatMul(name="a", m=64, n=64, k=64, stage=0))
    g.add(MatMul(name="b", m=64, n=64, k=64, stage=1), ["a"])
    g.add(MatMul(name="c", m=64, n=64, k=64, stage=0), ["b"])
    return g


def test_two_ops_with_a_gap_pay_the_active_baseline_only_while_busy(gpu):
    res = simulate(_chain_with_gap(), gpu, cost_fn=_timed({"a": 1e-3, "b": 2e-3, "c": 1e-3}))
    assert res.latency_s == pytest.approx(4e-3)
    # gpu0 runs a over [0, 1] ms and c over [3, 4] ms: busy 2 ms, idle gap 2 ms; gpu1 runs b over [1, 3].
    assert res.busy_s == pytest.approx({"gpu0": 2e-3, "gpu1": 2e-3})
    idle = 2 * 70.0 * 4e-3                 # both devices idle power over the 4 ms makespan: 0.56 J
    active = 2 * (300.0 - 70.0) * 2e-3     # 230 W above idle for 2 ms on each: 0.92 J
    dynamic = 3 * 0.1
    assert res.energy_breakdown_j == pytest.approx({"idle": idle, "active": active, "dynamic": dynamic})
    assert res.energy_j == pytest.approx(0.56 + 0.92 + 0.3)
    # gpu0: (0.28 + 0.46 + 0.2) J / 4 ms = 235 W; gpu1: (0.28 + 0.46 + 0.1) J / 4 ms = 210 W
    assert res.avg_power_w == pytest.approx({"gpu0": 235.0, "gpu1": 210.0})
    doc = res.to_dict()
    assert doc["energy_breakdown_j"] == pytest.approx({"idle": idle, "active": active, "dynamic": dynamic})
    assert doc["busy_s"] == pytest.approx({"gpu0": 2e-3, "gpu1": 2e-3})
    json.dumps(doc)


def test_power_counter_steps_through_idle_and_active(gpu):
    res = simulate(_chain_with_gap(), gpu, cost_fn=_timed({"a": 1e-3, "b": 2e-3, "c": 1e-3}))
    trace = res.trace()
    pid = next(e["pid"] for e in trace["traceEvents"] if e["ph"] == "M" and e["args"].get("name") == "gpu0")
    level: dict[float, float] = {}
    for e in trace["traceEvents"]:
        if e["ph"] == "C" and e["name"] == "power_w" and e["pid"] == pid:
            level[round(e["ts"], 6)] = e["args"]["power_w"]   # the last event at a time holds
    # idle 70 W; while a or c runs: 70 + 230 active + 0.1 J / 1 ms = 400 W
    assert level == pytest.approx({0.0: 400.0, 1000.0: 70.0, 3000.0: 400.0, 4000.0: 70.0})


def test_concurrent_streams_count_busy_time_once(gpu):
    """A copy overlapping a GEMM on the same device: busy is the union (2 ms), not the sum (3 ms)."""
    g = workloads.Graph("overlap", meta={"tokens": 1})
    g.add(MatMul(name="mm", m=64, n=64, k=64))
    g.add(MemCopy(name="cp", bytes_moved=1e6))
    res = simulate(g, gpu, cost_fn=_timed({"mm": 2e-3, "cp": 1e-3}))
    assert res.latency_s == pytest.approx(2e-3)
    assert res.busy_s["gpu0"] == pytest.approx(2e-3)
    assert res.energy_j == pytest.approx(70.0 * 2e-3 + 230.0 * 2e-3 + 0.2)


@settings(max_examples=30, deadline=None)
@given(times=st.lists(st.floats(1e-5, 1e-2), min_size=3, max_size=3),
       energy=st.floats(0.0, 2.0), active_w=st.floats(70.0, 700.0))
def test_energy_is_idle_plus_active_busy_plus_dynamic(times, energy, active_w):
    dev = hwmodels.load_device("h100-sxm").with_overrides({"power.active": f"{active_w!r} W"})
    res = simulate(_chain_with_gap(), dev, cost_fn=_timed(dict(zip("abc", times)), energy), power_cap=False)
    a, b, c = times
    assert res.latency_s == pytest.approx(a + b + c)
    assert res.busy_s == pytest.approx({"gpu0": a + c, "gpu1": b})
    expected = 2 * 70.0 * (a + b + c) + (active_w - 70.0) * (a + b + c) + 3 * energy
    assert res.energy_j == pytest.approx(expected, rel=1e-9)
    # physics: never below idle power over the makespan, never above active power all the time
    assert res.energy_j >= 2 * 70.0 * res.latency_s * (1 - 1e-12)
    assert res.energy_j <= 2 * active_w * res.latency_s + 3 * energy + 1e-12


# ---------------------------------------------------------------------------- hardware schema
def test_active_power_defaults_to_the_fraction_on_gpus_and_npus_only():
    h100 = hwmodels.load_device("h100-sxm")
    f = ACTIVE_POWER_FRACTION[0]
    assert h100.power.active_w == pytest.approx(70.0 + f * (700.0 - 70.0))
    tpu = hwmodels.load_device("tpu-v4")
    assert tpu.power.active_w == pytest.approx(90.0 + f * (192.0 - 90.0))
    xeon = hwmodels.load_device("xeon-8480")        # CPU: no baseline unless the YAML sets one
    assert xeon.power.active_w == xeon.power.static_w == 100.0
    assert active_power_w("fpga", 30.0, 225.0) == 30.0
    assert h100.describe()["power"]["active"].endswith("W")


def test_active_power_from_yaml_and_its_bounds(tmp_path):
    assert hwmodels.load_device("h100-sxm", {"power.active": "0.4 kW"}).power.active_w == 400.0
    for bad in ("50 W", "800 W"):   # below static (70 W) / above TDP (700 W)
        with pytest.raises(InputError) as err:
            hwmodels.load_device("h100-sxm", {"power.active": bad})
        assert any(p.path == "power.active" and "between" in p.message for p in err.value.problems)
    with pytest.raises(InputError) as err:
        hwmodels.load_device("h100-sxm", {"power.active": "400 J"})
    assert any(p.path == "power.active" for p in err.value.problems)


# ---------------------------------------------------------------------------- catalog energies
def test_h100_energy_per_flop_follows_the_tdp_rule():
    h100 = hwmodels.load_device("h100-sxm")
    active = 70.0 + ACTIVE_POWER_FRACTION[0] * 630.0
    bf16 = (700.0 - active) / (989e12 * 0.80)
    e = h100.power.energy_j_per_flop
    assert e["bf16"] == pytest.approx(bf16, rel=5e-3)
    assert e["fp8"] == pytest.approx((700.0 - active) / (1979e12 * 0.80), rel=5e-3)
    assert e["fp32"] == pytest.approx(4.6 * bf16, rel=5e-3)     # vector-only: Horowitz ratio
    # a large bf16 GEMM at the default efficiency then draws the TDP
    assert active + e["bf16"] * 989e12 * 0.80 == pytest.approx(700.0, rel=5e-3)
    assert h100.memory["hbm"].energy_j_per_byte == pytest.approx(122e-12)   # the H200 sweep: 122 pJ/B


@pytest.mark.parametrize("ref", hwmodels.catalog_ids("gpu") + hwmodels.catalog_ids("npu"))
def test_catalog_energy_per_flop_matches_the_rule_at_the_fitted_fraction(ref):
    from calibration.energy_fit import rule_power

    dev = hwmodels.load_device(ref)
    rule = rule_power(dev, ACTIVE_POWER_FRACTION[0])
    assert float(rule["active"].split()[0]) == pytest.approx(dev.power.active_w)
    for dtype, value in rule["energy_per_flop"].items():
        # the YAML writes three significant digits
        assert dev.power.energy_j_per_flop[dtype] == pytest.approx(float(value.split()[0]) * 1e-12, rel=5e-3), dtype


# ---------------------------------------------------------------------------- the fit
def test_fit_reproduces_its_rows_and_the_catalog_uses_the_fitted_value(capsys):
    from calibration import energy_fit

    assert energy_fit.main(["--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    # every fit row that measured a mean power: the ML.ENERGY batch-8 run and the fit power rows
    assert "energy-h100-llama31-8b-b8" in out["fit_rows"] and len(out["fit_rows"]) >= 3
    assert all(out["rows"][r]["role"] == "fit" for r in out["fit_rows"])
    assert out["rows"]["energy-h100-llama31-8b-b256"]["role"] == "held-out"
    assert {"error", "predicted_j_per_tok"} <= set(out["rows"]["energy-h100-llama31-8b-b256"])
    assert 0.0 < out["fitted_fraction"] < 1.0
    # least squares: the fit rows' relative power errors straddle zero
    errors = [out["rows"][r]["power_error"] for r in out["fit_rows"]]
    assert min(errors) < 0.0 < max(errors)
    # the catalog default is the printed value: if the cost model changed, rerun the fit
    assert ACTIVE_POWER_FRACTION[0] == pytest.approx(out["fitted_fraction"], abs=0.02), \
        "rerun `python -m calibration.energy_fit` and update hwmodels/defaults.py and the catalog"
    assert out["tpu_v4"]["measured_mean_power_w"] == 170.0
    assert out["tpu_v4"]["predicted_power_w"]["chat_turn"] > 90.0   # above TPU v4's measured minimum


def test_fit_is_the_least_squares_of_relative_power_errors(tmp_path, monkeypatch):
    from calibration import energy_fit

    # two made-up rows whose power is linear in the fraction: 100 + 200 f against 200 W measured,
    # 50 + 100 f against 80 W. Relative errors (100 + 200 f) / 200 - 1 and (50 + 100 f) / 80 - 1:
    # c = (1, 1.25), d = (0.5, 0.375); f = (0.5 + 0.46875) / (1 + 1.5625) = 0.378048...
    lines = {"a": (100.0, 200.0, 200.0), "b": (50.0, 100.0, 80.0)}
    monkeypatch.setattr(energy_fit, "predict_row", lambda row, f, folder: energy_fit.RowEnergy(
        None, lines[row["id"]][0] + lines[row["id"]][1] * f))
    monkeypatch.setattr(energy_fit, "measured_power_w", lambda row: lines[row["id"]][2])
    f = energy_fit.fit_fraction([{"id": "a"}, {"id": "b"}], tmp_path)
    assert f == pytest.approx(0.96875 / 2.5625)


def test_fit_follows_a_row_bent_by_the_power_cap(tmp_path, monkeypatch):
    from calibration import energy_fit

    # Row "a" draws 100 + 200 f until its 150 W cap (f = 0.25), measured 300 W; row "b" draws
    # 50 + 100 f, measured 110 W. The first line through f = 0 and 0.5 sees "a" at 100 and 150 W
    # (slope 100) and lands at f = (1/3 x 2/3 + 10/11 x 6/11) / (1/9 + 100/121) = 0.766, where
    # "a" is flat: it no longer moves with f, so the next line leaves "b" alone, whose own optimum
    # is 110 W at f = 0.6; there the lines stay.
    cap_w = {"a": 150.0, "b": float("inf")}
    lines = {"a": (100.0, 200.0, 300.0), "b": (50.0, 100.0, 110.0)}

    def power(row, f, folder):
        a, b, _ = lines[row["id"]]
        return energy_fit.RowEnergy(None, min(a + b * f, cap_w[row["id"]]))

    monkeypatch.setattr(energy_fit, "predict_row", power)
    monkeypatch.setattr(energy_fit, "measured_power_w", lambda row: lines[row["id"]][2])
    f = energy_fit.fit_fraction([{"id": "a"}, {"id": "b"}], tmp_path)
    # the first line (through f = 0 and 0.5) sees "a" at 100 and 150 W, slope 100: the one-line fit
    # of the earlier code; the later lines, drawn where "a" is flat, leave "b" alone: f = 0.6
    assert f == pytest.approx(0.6, abs=1e-3)


@settings(max_examples=15, deadline=None)
@given(times=st.tuples(*[st.floats(1e-4, 5e-3)] * 3), energy=st.floats(0.05, 5.0),
       memory_share=st.floats(0.0, 0.9))
def test_a_power_capped_device_draws_at_most_its_tdp_and_is_never_faster(times, energy, memory_share):
    """Physics of the cap: a device never averages more than its TDP when its clock can help, the
    capped step is never faster than the uncapped one, and the energy of the work is unchanged."""
    def cost(op, device):
        t = dict(zip("abc", times))[op.name]
        # part of each op's time is memory work, which the clock does not slow
        return Demands(op.name, {"compute:tensor": t * 1e12, "memory:hbm": memory_share * t * 1e12},
                       {"compute:tensor": 1e12, "memory:hbm": 1e12}, 0.0, energy, op.kind)

    dev = hwmodels.load_device("h100-sxm")
    free = simulate(_chain_with_gap(), dev, cost_fn=cost, power_cap=False)
    capped = simulate(_chain_with_gap(), dev, cost_fn=cost)
    assert capped.latency_s >= free.latency_s * (1 - 1e-12)
    assert capped.dynamic_energy_j == pytest.approx(free.dynamic_energy_j)
    for node, power in capped.avg_power_w.items():
        if node in capped.power_cap:
            assert power <= capped.tdp_w[node] * (1 + 2e-3)
            assert 0 < capped.power_cap[node]["clock_fraction"] < 1
        elif node not in capped.over_tdp:
            assert power <= capped.tdp_w[node] * (1 + 1e-9)


def test_clock_update_is_proportional_then_bisects_its_bracket():
    from simulator.simulate import POWER_CAP_SECANT_ROUNDS, _next_clock

    # 800 W at full clock, 300 W of it static + active, TDP 700 W: the dynamic 500 W must fall to
    # 400 W, so a compute-bound device runs at 400 / 500 = 0.8 of its clock
    assert _next_clock(1.0, 800.0, 300.0, 700.0, [0.0, 1.0], 0) == pytest.approx(0.8)
    # the same update outside the bracket of known clocks (0.9 drew too little) halves the bracket
    assert _next_clock(1.0, 800.0, 300.0, 700.0, [0.9, 1.0], 0) == pytest.approx(0.95)
    # and after a few updates a slowly converging (partly memory-bound) device bisects
    assert _next_clock(0.9, 710.0, 300.0, 700.0, [0.5, 0.9], POWER_CAP_SECANT_ROUNDS) == pytest.approx(0.7)


def test_a_lower_power_card_of_a_chip_spends_the_chips_energy_per_flop_and_is_capped():
    """The A100 PCIe (300 W) is the A100 SXM's silicon: the same energy per FLOP (energy_basis),
    so a large GEMM that would draw more than 300 W runs at the clock that draws 300 W."""
    from roofline.costs import cost

    pcie, sxm = hwmodels.load_device("a100-pcie-80gb"), hwmodels.load_device("a100-sxm-80gb")
    assert pcie.power.energy_basis == "a100-sxm-80gb"
    assert pcie.power.energy_j_per_flop == sxm.power.energy_j_per_flop
    gemm = MatMul(name="gemm", m=8192, n=8192, k=8192, dtype="bf16")
    g = workloads.Graph("gemm", meta={"tokens": 1})
    g.add(gemm)
    d = cost(gemm, pcie)
    active = 50.0 + 0.21 * (300.0 - 50.0)      # 102.5 W
    assert d.energy_j / d.time_s > 300.0 - active   # uncapped: above the card's TDP
    res = simulate(g, pcie)
    # compute-bound: the energy of the work is the same at any clock, spread over the time at which
    # the device draws its TDP: active + E / t = 300 W
    assert res.latency_s == pytest.approx(d.energy_j / (300.0 - active), rel=0.02)
    assert res.avg_power_w["gpu0"] == pytest.approx(300.0, rel=0.01)


def test_an_energy_basis_must_be_a_catalog_device(tmp_path):
    f = tmp_path / "card.yaml"
    f.write_text("extends: h100-pcie\nid: card\npower:\n  energy_basis: h100-sxn\n")
    with pytest.raises(InputError) as err:
        hwmodels.load_device(str(f))
    problem = err.value.problems[0]
    assert (problem.line, problem.path, problem.suggestion) == (4, "power.energy_basis", "h100-sxm")


def _card_with_limit(tmp_path, limit: str):
    f = tmp_path / "card.yaml"
    f.write_text(f"extends: h100-pcie\nid: card\npower:\n  limit: {limit}\n")
    return f


def test_a_board_power_limit_caps_the_card_and_leaves_its_baseline_and_energy_per_flop(tmp_path):
    """A run that holds an H100 PCIe (350 W TDP) to 310 W (nvidia-smi -pl): the silicon's active
    baseline and energy per FLOP stay those of the 350 W card; the cap holds it to 310 W."""
    from roofline.costs import cost

    card, stock = hwmodels.load_device(str(_card_with_limit(tmp_path, "310 W"))), hwmodels.load_device("h100-pcie")
    active = 45.0 + ACTIVE_POWER_FRACTION[0] * (350.0 - 45.0)      # the fitted fraction of the span
    assert (card.power.tdp_w, card.power.cap_w, stock.power.cap_w) == (350.0, 310.0, 350.0)
    assert card.power.active_w == pytest.approx(active) == stock.power.active_w
    assert card.power.energy_j_per_flop == stock.power.energy_j_per_flop
    gemm = MatMul(name="gemm", m=8192, n=8192, k=8192, dtype="bf16")
    g = workloads.Graph("gemm", meta={"tokens": 1})
    g.add(gemm)
    d = cost(gemm, card)
    assert d.energy_j / d.time_s > 350.0 - active     # uncapped, the GEMM draws more than even the TDP
    res, res_stock = simulate(g, card), simulate(g, stock)
    # compute-bound: the work's energy E spread over the time at which the card draws its limit,
    # active + E / t = 310 W, against 350 W on the stock card: t grows by (350 - a) / (310 - a)
    assert res.latency_s == pytest.approx(d.energy_j / (310.0 - active), rel=0.02)
    assert res.latency_s / res_stock.latency_s == pytest.approx((350.0 - active) / (310.0 - active), rel=0.03)
    assert res.avg_power_w["gpu0"] == pytest.approx(310.0, rel=0.01)
    assert res.tdp_w["gpu0"] == 310.0


def test_a_limit_above_what_the_work_draws_changes_nothing(tmp_path):
    """A 2 GB host-to-device copy draws far below 310 W: the same simulation with and without the limit."""
    g = workloads.Graph("copy", meta={"tokens": 1})
    g.add(MemCopy(name="copy", bytes_moved=2e9))
    card = hwmodels.load_device(str(_card_with_limit(tmp_path, "310 W")))
    res, res_stock = simulate(g, card), simulate(g, hwmodels.load_device("h100-pcie"))
    assert res.avg_power_w["gpu0"] < 310.0
    assert (res.latency_s, res.energy_j, res.power_cap) == (res_stock.latency_s, res_stock.energy_j, {})


@pytest.mark.parametrize("above_baseline_w", [-5.0, 0.0, 350.0 - 45.0 + 1.0])
def test_a_power_limit_must_lie_between_the_active_baseline_and_the_tdp(tmp_path, above_baseline_w):
    # the H100 PCIe's active baseline is 45 + fraction x (350 - 45) W and its TDP 350 W: a limit
    # 5 W under the baseline, at it, and above the TDP (the fraction is at most 1) are refused
    baseline = 45.0 + ACTIVE_POWER_FRACTION[0] * (350.0 - 45.0)
    limit = baseline + above_baseline_w
    with pytest.raises(InputError) as err:
        hwmodels.load_device(str(_card_with_limit(tmp_path, f"{limit:.3f} W")))
    problem = err.value.problems[0]
    assert (problem.line, problem.path) == (4, "power.limit")
    assert "active baseline" in problem.message


def test_a_run_sets_the_power_limit_of_a_device_not_of_a_system():
    card = hwmodels.load_hardware("h100-pcie", power_limit="310 W")
    assert card.power.cap_w == 310.0
    with pytest.raises(InputError, match="applies to one device"):
        hwmodels.load_hardware("hgx-h100", power_limit="600 W")


def test_measured_power_is_a_power_row_or_what_the_framework_column_states():
    from calibration.energy_fit import measured_power_w

    assert measured_power_w({"id": "x", "metric": "mean_power", "value": "315.8"}) == 315.8
    # the ML.ENERGY rows state it: "...; mean power 690.5 W)"
    assert measured_power_w({"id": "y", "metric": "energy_per_output_token", "value": "0.0766",
                             "framework": "vLLM 0.11.1 (V1; mean power 690.5 W)"}) == 690.5
    assert measured_power_w({"id": "z", "metric": "energy_per_output_token", "framework": "vLLM"}) is None


# ---------------------------------------------------------------------------- second parameter (diagnosis)
def _lines(monkeypatch, lines: dict[str, tuple[float, float, float, float]], parameter: str):
    """Made-up rows whose power is a + b f + c x (x: the DRAM scale, or k (1 - f) for ``flop``),
    measured m: ``lines[id] = (a, b, c, m)``."""
    from calibration import energy_fit

    def predict(row, f, folder, flop_scale=1.0, dram_scale=1.0):
        a, b, c, _ = lines[row["id"]]
        x = flop_scale * (1.0 - f) if parameter == "flop" else dram_scale
        return energy_fit.RowEnergy(None, a + b * f + c * x)

    monkeypatch.setattr(energy_fit, "predict_row", predict)
    monkeypatch.setattr(energy_fit, "measured_power_w", lambda row: lines[row["id"]][3])
    return [{"id": rid} for rid in lines]


def test_two_parameter_fit_recovers_exact_lines(tmp_path, monkeypatch):
    from calibration import energy_fit

    # dram: 100 + 200 f + 50 s = 250 W and 50 + 100 f + 100 s = 200 W hold at f = 0.5, s = 1 (two
    # independent equations, so the least squares is exact there)
    rows = _lines(monkeypatch, {"a": (100.0, 200.0, 50.0, 250.0), "b": (50.0, 100.0, 100.0, 200.0)}, "dram")
    two = energy_fit.fit_two(rows, "dram", tmp_path)
    assert (two.fraction, two.value, two.bounded) == (pytest.approx(0.5), pytest.approx(1.0), False)
    assert two.linear_error == pytest.approx(0.0, abs=1e-12)
    # flop: 100 + 200 f + 80 k (1 - f) and 60 + 100 f + 150 k (1 - f) at f = 0.4, k = 1.5:
    # 100 + 80 + 80 x 0.9 = 252 W and 60 + 40 + 150 x 0.9 = 235 W
    rows = _lines(monkeypatch, {"a": (100.0, 200.0, 80.0, 252.0), "b": (60.0, 100.0, 150.0, 235.0)}, "flop")
    two = energy_fit.fit_two(rows, "flop", tmp_path)
    assert (two.fraction, two.value, two.bounded) == (pytest.approx(0.4), pytest.approx(1.5), False)


def test_two_parameter_fit_holds_a_negative_fraction_at_zero(tmp_path, monkeypatch):
    from calibration import energy_fit

    # exact at f = -0.1, s = 2: 100 - 20 + 100 = 180 W and 50 - 10 + 200 = 240 W. An active baseline
    # below idle power is not physical, so f = 0 and s alone: with C = c / m, D = 1 - a / m,
    # s = sum(C D) / sum(C^2) = (50/180 x 80/180 + 100/240 x 190/240) / ((50/180)^2 + (100/240)^2)
    rows = _lines(monkeypatch, {"a": (100.0, 200.0, 50.0, 180.0), "b": (50.0, 100.0, 100.0, 240.0)}, "dram")
    two = energy_fit.fit_two(rows, "dram", tmp_path)
    s = (50 / 180 * 80 / 180 + 100 / 240 * 190 / 240) / ((50 / 180) ** 2 + (100 / 240) ** 2)
    assert two.bounded and two.fraction == 0.0 and two.value == pytest.approx(s)
    assert two.unbounded == (pytest.approx(-0.1), pytest.approx(2.0))
    with pytest.raises(ValueError, match="second parameter"):
        energy_fit.fit_two(rows, "clock", tmp_path)


def test_the_dram_scale_overlay_scales_only_the_dram_levels(tmp_path):
    from calibration.energy_fit import _rule_hardware

    h100 = hwmodels.load_device("h100-sxm")
    scaled = hwmodels.load_device(_rule_hardware("h100-sxm", 0.5, tmp_path, flop_scale=2.0, dram_scale=3.0))
    assert scaled.memory["hbm"].energy_j_per_byte == pytest.approx(3 * 122e-12)    # 122 pJ/B x 3
    for level in ("smem", "l2", "host"):       # on-chip levels and host memory keep their energy
        assert scaled.memory[level].energy_j_per_byte == h100.memory[level].energy_j_per_byte
    # TDP rule at f = 0.5 times 2: 2 x (700 - 385) W / (989 TFLOP/s x 0.8)
    assert scaled.power.energy_j_per_flop["bf16"] == pytest.approx(2 * 315.0 / (989e12 * 0.8), rel=1e-9)


def test_second_parameter_and_a_given_fraction_exclude_each_other(capsys):
    from calibration import energy_fit

    with pytest.raises(SystemExit) as exc:
        energy_fit.main(["--second", "dram", "--fraction", "0.5"])
    assert exc.value.code == 2
    assert "--second" in capsys.readouterr().err


def test_power_split_recovers_a_split_chosen_by_hand():
    from calibration.power_split import fit_split

    # P = 50 W + 100 pJ per byte + 5 pJ per FLOP, at three rates: 50 + 100 + 0 = 150 W at 1 TB/s;
    # 50 + 50 + 100 = 200 W at 0.5 TB/s and 20 TFLOP/s; 50 + 200 + 50 = 300 W at 2 TB/s and 10 TFLOP/s
    points = [{"bytes_per_s": 1e12, "fp32_flop_per_s": 0.0, "power_w": 150.0},
              {"bytes_per_s": 0.5e12, "fp32_flop_per_s": 20e12, "power_w": 200.0},
              {"bytes_per_s": 2e12, "fp32_flop_per_s": 10e12, "power_w": 300.0}]
    split = fit_split("made-up", points)
    assert split.active_w == pytest.approx(50.0)
    assert split.energy_per_byte_j == pytest.approx(100e-12)
    assert split.energy_per_flop_j == pytest.approx(5e-12)
    assert split.max_relative_residual == pytest.approx(0.0, abs=1e-9)


def test_power_split_of_the_bundled_sweeps_is_what_the_docs_say():
    from calibration.power_split import fit_split, load_sweeps

    sweeps = load_sweeps()
    assert {d: len(p) for d, p in sweeps.items()} == {"h200-sxm": 55, "a100-sxm-40gb": 8 * 43}
    # the H200's full-bandwidth point, as logged: 3759 GB/s, 940 GF/s, 572 W
    assert sweeps["h200-sxm"][0]["bytes_per_s"] == 3.759e12 and sweeps["h200-sxm"][0]["power_w"] == 572
    h200, a100 = fit_split("h200-sxm", sweeps["h200-sxm"]), fit_split("a100-sxm-40gb", sweeps["a100-sxm-40gb"])
    assert (round(h200.active_w), round(h200.energy_per_byte_j * 1e12)) == (105, 122)
    assert (round(a100.active_w), round(a100.energy_per_byte_j * 1e12)) == (66, 118)
    assert h200.rms_relative_residual < 0.01 and a100.rms_relative_residual < 0.035
