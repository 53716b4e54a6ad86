"""sweeps: the spec and its errors, point keys, statuses, Pareto fronts, the store, the CLI."""

import inspect
import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from clitools import run
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmodels.errors import InputError
from sweeps import Sweep, load_spec, pareto_mask
from sweeps.points import plan, point_key
from sweeps.store import read_results

ROOT = Path(__file__).resolve().parents[1]
BASE = {"job": "analyze", "hw": "h100-sxm", "model": "llama-3.1-8b", "phase": "decode", "context": 512}


def _spec_file(tmp_path, text: str, name: str = "spec.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


# -- the spec and its errors ------------------------------------------------------------------------
def test_bad_spec_reports_every_problem_with_file_line_and_suggestion(tmp_path, capsys):
    spec = _spec_file(tmp_path, """\
        base: {job: analyze, hw: h100-sxm, model: llama-3.1-8b, phase: decode}
        axes:
          hw.memory.hbm.bandwith: [2 TB/s, 4 TB/s]
          hw.memory.l2.bandwidth: [2 TB, 4 TB/s]
          batch: []
          btch: [1, 2]
        objectives: {latency: min}
        """)
    code, out, err = run(capsys, "sweep", "run", str(spec), "--out", str(tmp_path / "out"))
    assert code == 2 and out == "" and "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[0].startswith(f"error: {spec}:3: axes.hw.memory.hbm.bandwith: unknown hardware field")
    assert "(did you mean 'memory.hbm.bandwidth'?)" in lines[0]
    assert f"{spec}:4: axes.hw.memory.l2.bandwidth: '2 TB' is a data size" in lines[1]
    assert "expects a bandwidth" in lines[1]
    assert f"{spec}:5: axes.batch: an axis needs at least one value" in lines[2]
    assert "(did you mean 'batch'?)" in lines[3]
    assert f"{spec}:7: objectives.latency" in lines[4] and "(did you mean 'latency_s'?)" in lines[4]
    assert not (tmp_path / "out").exists()


def test_an_unknown_base_hardware_names_the_spec_file(tmp_path, capsys):
    """A problem found while keying the points (an unknown hardware id) is an InputError naming
    the spec's file, not a traceback."""
    spec = _spec_file(tmp_path, """\
        base: {job: analyze, hw: 0, model: llama-3.1-8b, phase: decode}
        objectives: {latency_s: min}
        """)
    code, out, err = run(capsys, "sweep", "run", str(spec), "--out", str(tmp_path / "out"))
    assert code == 2 and "Traceback" not in err
    assert err.strip().startswith(f"error: {spec}: hw: unknown hardware id '0'")


def test_grid_above_the_limit_needs_yes(tmp_path, capsys):
    spec = _spec_file(tmp_path, """\
        base: {job: analyze, hw: h100-sxm, model: llama-3.1-8b, phase: decode}
        axes:
          hw.memory.hbm.bandwidth: {from: 1 TB/s, to: 8 TB/s, steps: 200}
          batch: {from: 1, to: 512, steps: 200}
        """)
    code, _, err = run(capsys, "sweep", "run", str(spec), "--out", str(tmp_path / "o"), "--format", "json")
    # 200 linear steps of 1..512 are 200 distinct integers (2.57 apart): 200 x 200 = 40,000 > 20,000
    assert code == 2 and "plans 40000 points" in err and "--yes" in err
    assert load_spec(spec, yes=True).planned_size() == 40_000


def test_ranges_linear_log_and_units():
    sweep = Sweep(BASE, {"hw.memory.hbm.bandwidth": {"from": "2 TB/s", "to": "8 TB/s", "steps": 4},
                         "batch": {"from": 1, "to": 512, "steps": 10, "scale": "log"}})
    bw, batch = sweep.spec.axes
    assert bw.values == (2e12, 4e12, 6e12, 8e12)
    # 512^(i/9) rounded: 1, 2, 4, 8, 16, 32, 64, 128, 256, 512
    assert batch.values == tuple(2 ** i for i in range(10))


@pytest.mark.parametrize("axes, message", [
    ({"hw.memory.hbm.capacity": ["1 TB/s"]}, "is a bandwidth; hw.memory.hbm.capacity expects a data size"),
    ({"tp": [1.5]}, r"axes.tp\[0\]: tp must be a positive integer, got 1.5"),
    ({"phase": ["decod"]}, "did you mean .decode."),
    ({"batch": {"from": 1, "to": 8}}, "steps: required field is missing"),
    ({"hw": ["h100-sxn"]}, "did you mean 'h100-sxm'"),
])
def test_axis_errors(axes, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        Sweep(BASE, axes)


def test_mode_and_constraint_errors():
    with pytest.raises(InputError, match="expected 'grid'"):
        Sweep(BASE, {"batch": [1]}, mode="gird")
    with pytest.raises(InputError, match="did you mean 'latency_s'"):
        Sweep(BASE, {"batch": [1]}, constraints=["latncy_s <= 1"])
    with pytest.raises(InputError, match="cost_per_mtok needs 'price_per_hour'"):
        Sweep(BASE, {"batch": [1]}, objectives={"latency_s": "min", "cost_per_mtok": "min"})


SERVE = {"job": "serve", "hw": "h100-sxm", "model": "llama-3.1-8b", "num_requests": 20}


@pytest.mark.parametrize("base, axes, message", [
    ({}, {"scheduler": ["vllm", "sarath"]}, r"axes.scheduler\[1\]: unknown scheduler 'sarath'.*did you mean 'sarathi'"),
    ({"batch": 8}, {}, r"base.batch: unknown knob 'batch'"),      # a step knob: serving draws its own batches
    ({"num_requests": None}, {"rate": [1]}, "the serve job needs num_requests"),
    ({"requests": "azure-conv"}, {"rate": [1, 2]}, r"axes.rate\[0\]: rate: for drawn requests only"),
    ({}, {"rate": [1, -2]}, r"axes.rate\[1\]: rate must be a number > 0, got -2"),
    ({}, {"input_len": [512, "uniform:10"]}, r"axes.input_len\[1\]: '10': expected 2 comma-separated"),
    ({"preemption": "swp"}, {}, "did you mean 'swap'"),
    ({}, {"max_num_seqs": [0]}, "max_num_seqs must be a positive integer"),
    ({"job": []}, {}, r"base.job: unknown job '\[\]'"),       # a list where the job's name belongs
])
def test_serve_spec_errors(base, axes, message):
    with pytest.raises(InputError, match=message):
        Sweep({**SERVE, **base}, axes)


def test_serve_job_knobs_default_as_serve_does():
    from simulator.serving import serve
    from sweeps.jobs import SERVE_KNOBS

    params = inspect.signature(serve).parameters
    assert {name: params[name].default for name in SERVE_KNOBS} == SERVE_KNOBS


def test_serve_sweep_of_a_bundled_trace_from_the_cli(tmp_path, capsys):
    spec = _spec_file(tmp_path, """\
        base: {job: serve, hw: h100-sxm, model: llama-3.1-8b, requests: vllm-rtx4090, num_requests: 30}
        axes:
          max_num_seqs: [1, 64]
        objectives: {ttft_p99_s: min, throughput_tok_s: max}
        constraints: ["ttft_p99_s <= 0.5"]
        price_per_hour: 4
        """)
    code, out, err = run(capsys, "sweep", "run", str(spec), "--out", str(tmp_path / "o"), "--format", "json")
    assert code == 0 and "Traceback" not in err
    assert json.loads(out)["status"] == {"ok": 2}
    frame = read_results(tmp_path / "o").set_index("max_num_seqs")
    # one sequence at a time: the 30 requests queue behind each other, so TTFT and end-to-end
    # latency are longer and throughput lower than with 64 running together
    assert frame.loc[1, "ttft_p99_s"] > frame.loc[64, "ttft_p99_s"]
    assert frame.loc[1, "throughput_tok_s"] < frame.loc[64, "throughput_tok_s"]
    assert (frame.completed == 30).all() and (frame.preemptions == 0).all()
    # one replica of tp 1 on one accelerator at $4/h: dollars per million output tokens
    assert frame.cost_per_mtok.tolist() == pytest.approx((4 / 3600 / frame.throughput_tok_s * 1e6).tolist())


# -- points and keys --------------------------------------------------------------------------------
def test_key_is_a_hash_of_resolved_inputs(monkeypatch):
    a = Sweep(BASE, {"hw.memory.hbm.bandwidth": ["4 TB/s"]})
    b = Sweep({**BASE, "batch": 1}, {"hw.memory.hbm.bandwidth": ["4000 GB/s"]})   # batch 1 is the default
    c = Sweep(BASE, {"hw.memory.hbm.bandwidth": ["4.1 TB/s"]})
    ka, kb, kc = (plan(s.spec)[0].key for s in (a, b, c))
    assert ka == kb and ka != kc
    import sweeps.points

    monkeypatch.setattr(sweeps.points, "ridgeline_version", lambda: "99.0")
    assert point_key(a.spec, {"hw.memory.hbm.bandwidth": 4e12}) != ka


def test_random_and_latin_modes_are_seeded_and_cover():
    axes = {"batch": [1, 2, 4, 8, 16, 32, 64, 128], "tp": [1, 2, 4, 8]}
    one = Sweep(BASE, axes, mode={"latin": 8}, seed=3).points()
    two = Sweep(BASE, axes, mode={"latin": 8}, seed=3).points()
    assert [p.key for p in one] == [p.key for p in two]
    # a latin hypercube of 8 points over an 8-value axis takes every value once
    assert sorted(p.values["batch"] for p in one) == axes["batch"]
    rnd = Sweep(BASE, axes, mode={"random": 50}, seed=1).points()
    assert 0 < len(rnd) <= 32 and len({p.key for p in rnd}) == len(rnd)


def test_statuses_invalid_does_not_fit_and_ok():
    # tp=3 does not divide Llama-3.1-8B's 32 heads; batch 4096 x 8192 tokens of KV cache
    # (4096 x 8192 x 128 KiB = 4 TiB) cannot fit in 80 GB
    sweep = Sweep({**BASE, "context": 8192}, {"tp": [1, 3], "batch": [1, 4096]})
    frame = sweep.run(workers=1)
    status = {(r.tp, r.batch): r.status for r in frame.itertuples()}
    assert status == {(1, 1): "ok", (1, 4096): "does-not-fit", (3, 1): "invalid", (3, 4096): "invalid"}
    bad = frame[frame.status != "ok"]
    assert bad["latency_s"].isna().all() and bad["message"].str.len().gt(0).all()
    assert "tp=3 does not divide" in frame[frame.tp == 3]["message"].iloc[0]
    ok = frame[frame.status == "ok"].iloc[0]
    assert math.isfinite(ok.latency_s) and ok.throughput_tok_s == pytest.approx(1 / ok.latency_s)


# -- Pareto ---------------------------------------------------------------------------------------
def test_pareto_by_hand():
    # min x, min y: (3, 4) is dominated by (2, 3); (5, 1) by (4, 1); the rest are the front
    pts = np.array([[1, 5], [2, 3], [3, 4], [4, 1], [5, 1]], dtype=float)
    assert pareto_mask(pts, ["min", "min"]).tolist() == [True, True, False, True, False]
    # max y instead: (1, 5) dominates everything with x >= 1 and y <= 5
    assert pareto_mask(pts, ["min", "max"]).tolist() == [True, False, False, False, False]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(0, 6)), min_size=1, max_size=30),
       st.lists(st.sampled_from(["min", "max"]), min_size=3, max_size=3))
def test_pareto_front_is_exactly_the_non_dominated(rows, senses):
    pts = np.array(rows, dtype=float)
    keep = pareto_mask(pts, senses)
    signed = pts * np.array([1 if s == "min" else -1 for s in senses])
    for i in range(len(pts)):
        dominated = any(np.all(signed[j] <= signed[i]) and np.any(signed[j] < signed[i]) for j in range(len(pts)))
        assert keep[i] == (not dominated)


# -- the store, the CLI and the API ------------------------------------------------------------------
def test_cli_run_show_pareto_json_and_plot(tmp_path, capsys):
    spec = _spec_file(tmp_path, """\
        base: {job: analyze, hw: h100-sxm, model: llama-3.1-8b, phase: decode, context: 512}
        axes:
          hw.memory.hbm.bandwidth: [2 TB/s, 8 TB/s]
          batch: [1, 64, 256]
        objectives: {latency_s: min, throughput_tok_s: max}
        constraints: [fits_memory, latency_s <= 0.01]
        """)
    out = tmp_path / "out"
    code, stdout, err = run(capsys, "sweep", "run", str(spec), "--out", str(out), "--workers", "1",
                            "--format", "json", "--csv")
    assert code == 0 and err == ""      # no progress bar under --format json
    doc = json.loads(stdout)
    assert doc["points"] == 6 and doc["status"] == {"ok": 6}
    frame = pd.read_parquet(out / "results.parquet")
    assert list(frame.columns[:2]) == ["key", "status"]
    assert {"hw.memory.hbm.bandwidth", "batch", "latency_s", "throughput_tok_s", "energy_j", "bound",
            "dominant", "ridgeline_version"} <= set(frame.columns)
    assert sorted(frame["hw.memory.hbm.bandwidth"].unique()) == [2e12, 8e12]
    assert len(pd.read_csv(out / "results.csv")) == 6
    # latency <= 10 ms: at 2 TB/s even batch 1 reads 16 GB of weights in 16e9 / (2e12 x 0.9) = 8.9 ms
    # plus the KV cache and fixed latencies: the constraint drops every 2 TB/s point but batch 1's
    feasible = frame[frame.latency_s <= 0.01]
    assert doc["feasible"] == len(feasible)
    code, stdout, _ = run(capsys, "sweep", "pareto", str(out), "--objective", "latency_s:min",
                          "--objective", "throughput_tok_s:max", "--format", "json")
    assert code == 0
    front = json.loads(stdout)
    assert (out / "pareto.png").stat().st_size > 10_000
    assert {r["key"] for r in front["front"]} <= set(feasible["key"])
    code, stdout, _ = run(capsys, "sweep", "show", str(out), "--format", "json")
    shown = json.loads(stdout)
    assert shown["best"]["latency_s:min"]["latency_s"] == pytest.approx(feasible.latency_s.min())
    code, _, err = run(capsys, "sweep", "pareto", str(out), "--objective", "latncy_s:min")
    assert code == 2 and "did you mean 'latency_s'" in err


def test_resume_refuses_another_spec_and_skips_stored_keys(tmp_path, capsys):
    text = """\
        base: {job: analyze, hw: h100-sxm, model: llama-3.1-8b, phase: decode}
        axes:
          batch: [1, 2]
        """
    spec = _spec_file(tmp_path, text)
    out = str(tmp_path / "out")
    assert run(capsys, "sweep", "run", str(spec), "--out", out, "--format", "json")[0] == 0
    code, _, err = run(capsys, "sweep", "run", str(spec), "--out", out)
    assert code == 2 and "--resume" in err
    assert run(capsys, "sweep", "run", str(spec), "--out", out, "--resume", "--format", "json")[0] == 0
    assert len(read_results(out)) == 2       # nothing run twice
    _spec_file(tmp_path, text.replace("[1, 2]", "[1, 4]"))
    code, _, err = run(capsys, "sweep", "run", str(spec), "--out", out, "--resume")
    assert code == 2 and "axes.batch: stored [1, 2], spec [1, 4]" in err and "Traceback" not in err


def test_unreachable_dask_scheduler_is_an_input_error(tmp_path, capsys):
    pytest.importorskip("distributed")
    spec = _spec_file(tmp_path, "base: {job: analyze, hw: h100-sxm, model: llama-3.1-8b, phase: decode}\n")
    code, _, err = run(capsys, "sweep", "run", str(spec), "--out", str(tmp_path / "o"),
                       "--dask", "tcp://127.0.0.1:9", "--format", "json")
    assert code == 2 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in err
    assert not (tmp_path / "o").exists()


def test_dask_missing_says_how_to_install(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_distributed(name, *args, **kwargs):
        if name.startswith("distributed"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_distributed)
    with pytest.raises(InputError, match=r"pip install 'ridgeline\[distributed\]'"):
        Sweep(BASE, {"batch": [1]}).run(dask="local:1")


def test_python_api_run_pareto_plot(tmp_path):
    sweep = Sweep(BASE, {"hw.memory.hbm.bandwidth": ["2 TB/s", "4 TB/s"], "batch": [1, 128]},
                  objectives={"latency_s": "min", "throughput_tok_s": "max"})
    frame = sweep.run(workers=2)
    assert len(frame) == 4 and (frame.status == "ok").all()
    front = sweep.pareto()
    # faster HBM is never worse: the 2 TB/s points are dominated by their 4 TB/s twins
    assert set(front["hw.memory.hbm.bandwidth"]) == {4e12}
    fig = sweep.plot("latency_s", "throughput_tok_s", color="batch")
    fig.savefig(tmp_path / "sweep.png")
    assert (tmp_path / "sweep.png").stat().st_size > 10_000


def test_dask_local_cluster_gives_the_process_pool_rows(tmp_path):
    pytest.importorskip("distributed")
    sweep = Sweep(BASE, {"hw.memory.hbm.bandwidth": ["2 TB/s", "4 TB/s"], "batch": [1, 8]})
    local = sweep.run(workers=1).sort_values("key").reset_index(drop=True)
    on_dask = sweep.run(dask="local:1", out=tmp_path / "out").sort_values("key").reset_index(drop=True)
    columns = ["key", "status", "latency_s", "energy_j", "dominant"]
    pd.testing.assert_frame_equal(local[columns], on_dask[columns])


def test_cli_start_up_imports_neither_sweeps_nor_the_simulator():
    # every ridgeline call builds the whole parser: sweeps/ (the cost model, workload builders) and
    # the simulator load only when a sweep subcommand runs
    code = ("import sys; from reports.cli import build_parser; build_parser(); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'sweeps', 'simulator'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
