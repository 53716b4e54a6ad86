"""The bundled public measurements: roles fixed in the CSV, row classes, the attention and derived
LLM predictors checked by hand, and the per-role, per-class summary of ``validate --public``."""


import pytest
from hypothesis import given
from hypothesis import strategies as st

import hwmodels
from calibration.public import (
    FIT_ROWS,
    ROW_CLASSES,
    load_rows,
    public_groups,
    row_class,
    validate_public,
)
from roofline.costs import cost
from workloads.operators import Attention

ROWS = {r["id"]: r for r in load_rows()}


def test_every_row_is_marked_and_at_most_a_third_are_fit():
    roles = [r["role"] for r in ROWS.values()]
    assert set(roles) == {"fit", "held-out"}
    assert roles.count("fit") <= len(roles) / 3
    # a row a parameter was fitted on is marked fit in the CSV too
    assert all(ROWS[name]["role"] == "fit" for name in FIT_ROWS)
    assert all(r["source"] for r in ROWS.values())


def test_row_classes_cover_the_issue_classes():
    classes = {row_class(r) for r in ROWS.values()}
    assert {"gemm", "attention", "prefill", "decode", "serving", "energy"} <= classes
    assert classes <= set(ROW_CLASSES)
    assert row_class(ROWS["ttft-a100-llama2-7b-128"]) == "prefill"
    assert row_class(ROWS["itl-h100-llama31-8b-b8"]) == "decode"
    assert row_class(ROWS["tput-a100-llama2-7b-b256"]) == "serving"


def _predict(name):
    (result,) = validate_public([ROWS[name]])
    return result


def test_attention_rows_are_the_cost_model_of_one_attention_operator():
    # FlashAttention counts 4 x B x H x Q x KV x D FLOPs: 4 x 64 x 12 x 1024 x 1024 x 128
    op = Attention(name="a", batch=64, heads=12, kv_heads=12, q_len=1024, kv_len=1024, head_dim=128,
                   causal=False, dtype="fp16")
    t = cost(op, hwmodels.load_device("rtx-4090")).time_s
    result = _predict("attn-4090-fa2-s1024-d128-nc")
    assert result["predicted"] == pytest.approx(4 * 64 * 12 * 1024 * 1024 * 128 / t / 1e12)
    assert result["class"] == "attention" and result["how"] == "roofline.cost"
    # causal: the benchmark halves its count; a latency row is the operator's time in ms
    op = Attention(name="a", batch=16, heads=32, kv_heads=32, q_len=1024, kv_len=1024, head_dim=128,
                   causal=True, dtype="fp16")
    t = cost(op, hwmodels.load_device("a100-sxm-80gb")).time_s
    assert _predict("attn-a100-fa2-b16-q1024-kv1024-kvh32-c")["predicted"] == pytest.approx(t * 1e3)


def test_prefill_and_decode_rates_come_from_the_simulated_step_times():
    from simulator.public import predict_public_row

    pp = ROWS["pp-4090-llama3-8b-f16-512"]
    ttft_ms = predict_public_row({**pp, "metric": "time_to_first_token", "unit": "ms"})
    # 1 prompt of 512 tokens over the TTFT
    assert _predict(pp["id"])["predicted"] == pytest.approx(512 / (ttft_ms * 1e-3))
    tg = ROWS["tg-4090-llama3-8b-f16-512"]
    step_ms = predict_public_row({**tg, "metric": "median_inter_token_latency", "unit": "ms"})
    # one token per decode step at batch 1
    assert _predict(tg["id"])["predicted"] == pytest.approx(1 / (step_ms * 1e-3))


def test_serving_rows_are_runs_of_the_serving_simulator():
    result = _predict("serve-a100-llama31-8b-sglang-tpot")
    assert result["predicted"] > 0 and result["error"] is not None
    assert result["how"] == "serving simulator"
    assert result["class"] == "serving" and result["role"] == "held-out"


def test_groups_by_role_and_class_by_hand():
    rows = [{"role": "held-out", "class": "gemm", "unit": "TFLOP/s", "error": 0.10},
            {"role": "held-out", "class": "gemm", "unit": "ms", "error": 0.20},
            {"role": "held-out", "class": "decode", "unit": "ms", "error": None},
            {"role": "fit", "class": "prefill", "unit": "tok/s", "error": -0.30}]
    g = public_groups(rows)
    # a rate 10% high is optimistic (+0.10); a time 20% high is pessimistic (-0.20):
    # MAPE (0.10 + 0.20) / 2 = 0.15, signed mean (0.10 - 0.20) / 2 = -0.05
    held = g["held-out"]
    assert held["all"]["n"] == 2 and held["all"]["not_predicted"] == 1
    assert held["gemm"]["mape"] == pytest.approx(0.15)
    assert held["gemm"]["median_abs_error"] == pytest.approx(0.15)
    assert held["gemm"]["signed_mean_error"] == pytest.approx(-0.05)
    assert held["decode"] == {"n": 0, "mape": None, "median_abs_error": None, "signed_mean_error": None,
                              "not_predicted": 1}
    assert g["fit"]["prefill"]["signed_mean_error"] == pytest.approx(-0.30)
    assert set(g["fit"]) == {"all", "prefill"}


def test_validate_public_reports_fit_and_held_out_groups(public_validation):
    # the JSON on stdout, the text tables in --out's validation.md
    doc, out = public_validation
    groups = doc["public"]["groups"]
    assert set(groups) == {"held-out", "fit"}
    held = [r for r in doc["public"]["rows"] if r["role"] == "held-out" and r["error"] is not None]
    assert groups["held-out"]["all"]["n"] == len(held)
    gemm = [abs(r["error"]) for r in held if r["class"] == "gemm"]
    assert groups["held-out"]["gemm"]["mape"] == pytest.approx(sum(gemm) / len(gemm))
    text = (out / "validation.md").read_text()
    assert "held-out rows per class" in text and "fit rows per class" in text


def _step(energy_j, latency_s, static_w):
    from types import SimpleNamespace

    return SimpleNamespace(energy_j=energy_j, latency_s=latency_s, static_energy_j=static_w * latency_s)


def test_static_batch_power_is_energy_over_time_with_the_idle_tail_by_hand():
    from simulator.public import static_batch_power_w

    # prefill 1 s at 600 J; 100 decode steps of 10 ms at 3 J each (300 W); 1 s idle at 70 W:
    # (600 + 100 x 3 + 70 x 1) J / (1 + 100 x 0.01 + 1) s = 970 / 3 = 323.33 W
    prefill, decode = _step(600.0, 1.0, 70.0), _step(3.0, 0.01, 70.0)
    assert static_batch_power_w(prefill, decode, 101, after_s=1.0) == pytest.approx(970.0 / 3.0)
    # without the tail: 900 J / 2 s
    assert static_batch_power_w(prefill, decode, 101) == pytest.approx(450.0)


@given(st.floats(50, 800), st.floats(50, 800), st.floats(0.01, 10), st.floats(1e-3, 0.1), st.integers(2, 4096),
       st.floats(0, 5))
def test_static_batch_power_lies_between_its_parts(prefill_w, decode_w, prefill_s, step_s, output, after_s):
    from simulator.public import static_batch_power_w

    idle_w = 40.0
    power = static_batch_power_w(_step(prefill_w * prefill_s, prefill_s, idle_w),
                                 _step(decode_w * step_s, step_s, idle_w), output, after_s)
    assert min(prefill_w, decode_w, idle_w) * (1 - 1e-9) <= power <= max(prefill_w, decode_w) * (1 + 1e-9)


def test_mean_power_row_is_the_simulated_static_batch():
    from simulator.public import predict_public_row, simulate_row

    row = {"id": "p", "hardware": "h100-sxm", "devices": "1", "dtype": "bf16", "batch": "4", "input_len": "128",
           "output_len": "33", "metric": "mean_power", "unit": "W", "framework": "vLLM",
           "workload": "llama-3.1-8b static batch (GPU power sampled over the run and 1 s after)"}
    steps, _ = simulate_row(row)
    p, d = steps["prefill"], steps["decode"]
    # 32 decode steps follow the prefill; the H100 SXM idles at 70 W (its catalog power.static)
    with_tail = (p.energy_j + 32 * d.energy_j + 70.0 * 1.0) / (p.latency_s + 32 * d.latency_s + 1.0)
    assert predict_public_row(row) == pytest.approx(with_tail)
    bare = {**row, "workload": "llama-3.1-8b static batch"}
    assert predict_public_row(bare) == pytest.approx((p.energy_j + 32 * d.energy_j) / (p.latency_s + 32 * d.latency_s))
    assert 70.0 < with_tail < predict_public_row(bare)
    assert row_class(row) == "energy"
    (result,) = validate_public([{**row, "value": "300", "source": "test", "role": "held-out"}])
    assert result["how"] == "simulator" and result["predicted"] == pytest.approx(with_tail)


def test_a_row_whose_run_held_its_card_to_a_power_limit_is_predicted_at_that_limit():
    """The May 2024 H100 PCIe llama-bench run's nvidia-smi reads '48W / 310W' (SOURCES.md): its rows
    say 'power limit 310 W' in the framework column and run their card at 310 W, not its 350 W TDP."""
    from simulator.public import _hardware

    limited = [rid for rid, row in ROWS.items() if "power limit" in row["framework"]]
    assert sorted(limited) == sorted(f"pp-h100pcie-llama3-8b-f16-{n}" for n in (512, 1024, 4096, 8192))
    assert _hardware(ROWS["pp-h100pcie-llama3-8b-f16-512"]).power.cap_w == 310.0
    # the December 2023 run on the same card model ran at its TDP
    assert _hardware(ROWS["pp-h100pcie-llama2-7b-f16"]).power.cap_w == 350.0
