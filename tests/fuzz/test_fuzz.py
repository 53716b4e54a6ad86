"""Every input surface, fuzzed at a small example count: a valid result or a clean InputError,
never a traceback, a time-out or a non-finite figure. ``make fuzz`` runs the same surfaces for
thousands of cases (tests/fuzz/run.py)."""

import os
import signal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hwmodels
from hwmodels.errors import InputError

from . import surfaces as _registered  # noqa: F401 - registers the surfaces
from .harness import FAILURES, SURFACES, Surface, attempt, attempt_isolated, check_figures, run_cli

# examples per surface in CI (the whole module stays under about 30 s on two cores; trace and
# sweep run a simulation or a sweep per case, so they get few)
EXAMPLES = {"hardware": 100, "config": 100, "workload": 100, "onnx": 100, "cli": 60, "trace": 8, "sweep": 12}
TIME_OUT_S = 60


@pytest.mark.parametrize("name", SURFACES.names())
def test_surface_gives_a_result_or_a_clean_error(name, tmp_path_factory):
    surface = SURFACES.get(name)
    for module in surface.requires:
        pytest.importorskip(module)
    workdir = tmp_path_factory.mktemp(name)

    @settings(max_examples=EXAMPLES.get(name, 20), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=surface.strategy)
    def check(case):
        outcome = attempt(surface, case, workdir, TIME_OUT_S)
        assert outcome.kind not in FAILURES, (outcome.kind, outcome.detail, outcome.trace)

    check()


@settings(max_examples=40, deadline=None)
@given(path=st.sampled_from(["memory.hbm.bandwidth", "power.tdp", "engines.tensor.peak.bf16",
                             "links.nvlink.ports", "memory.hbm", "engines", "kind", "memory.new.kind"]),
       value=st.one_of(st.sampled_from(["1e-310 TB/s", "1e300 W", ".nan", "3 TB", "-1 W", "0"]), st.integers(),
                       st.floats(), st.none(), st.booleans(), st.lists(st.integers(), max_size=3),
                       st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2)))
def test_random_overrides_are_valid_or_an_input_error(path, value):
    device = hwmodels.load_device("h100-sxm")
    try:
        device.with_overrides({path: value})
    except InputError as err:
        assert err.problems


# -- the harness itself: each outcome is told apart ------------------------------------------------
def _surface(run):
    return Surface("t", st.none(), run)


def test_the_harness_tells_the_outcomes_apart(tmp_path):
    def error(_case, _dir):
        raise InputError("bad", file="x.yaml", line=3)

    def bug(_case, _dir):
        return {}["missing"]

    def spin(_case, _dir):
        while True:
            pass

    def inf(_case, _dir):
        check_figures({"latency_s": [1.0, float("inf")]})

    assert attempt(_surface(lambda c, d: None), None, tmp_path, 5).kind == "accepted"
    assert attempt(_surface(error), None, tmp_path, 5).detail == "x.yaml:3: bad"
    out = attempt(_surface(bug), None, tmp_path, 5)
    assert out.kind == "traceback" and out.detail.startswith("KeyError")
    assert attempt(_surface(spin), None, tmp_path, 0.2).kind == "time_out"
    out = attempt(_surface(inf), None, tmp_path, 5)
    assert out.kind == "non_finite" and out.detail == "result.latency_s[1] = inf"


def test_an_isolated_case_is_killed_at_its_limit_and_a_crash_is_counted(tmp_path):
    def spin(_case, _dir):
        while True:
            pass

    def crash(_case, _dir):
        os.kill(os.getpid(), signal.SIGSEGV)

    def error(_case, _dir):
        raise InputError("bad")

    assert attempt_isolated(_surface(spin), None, tmp_path, 0.3).kind == "time_out"
    out = attempt_isolated(_surface(crash), None, tmp_path, 5)
    assert (out.kind, out.detail) == ("traceback", f"the interpreter died (signal {int(signal.SIGSEGV)})")
    assert attempt_isolated(_surface(error), None, tmp_path, 5).detail == "bad"


def test_run_cli_reports_exit_codes():
    code, out, err = run_cli(["hw", "show", "no-such-device"])
    assert code == 2 and out == "" and err.startswith("error: ")
    assert run_cli(["--help"])[0] == 0


def test_the_trace_property_catches_a_lost_request_and_a_negative_latency():
    from .harness import NonFinite
    from .surface_trace import check_serve_json

    ok = {"requests": [{"id": 0}], "rejected": [{"id": 1, "reason": "too long"}],
          "latencies": {"ttft_s": [0.1], "e2e_s": [0.5]}}
    check_serve_json(ok, 2)   # one completed + one rejected = two arrivals
    with pytest.raises(AssertionError, match="3 arrivals but 1 completed and 1 rejected"):
        check_serve_json(ok, 3)
    with pytest.raises(NonFinite, match="latencies.ttft_s has -0.1"):
        check_serve_json({**ok, "latencies": {"ttft_s": [-0.1]}}, 2)
