"""The fluid processor-sharing engine, with hand-made demands and hand-computed times."""

import math

import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmodels.errors import InputError
from simulator.engine import FluidEngine, _max_min_rates


def test_one_task_alone_takes_its_analytic_time():
    eng = FluidEngine({"compute:tensor": 1e15, "memory:hbm": 3e12})
    # 2e12 FLOP at 1e15 FLOP/s = 2 ms; 9e9 B at 3e12 B/s = 3 ms; plus 4 us fixed.
    eng.add({"compute:tensor": 2e12, "memory:hbm": 9e9}, fixed_s=4e-6)
    res = eng.run()
    assert res.end_s[0] == pytest.approx(3e-3 + 4e-6, rel=1e-12)
    assert res.limit[0] == "memory:hbm"


def test_two_equal_transfers_on_one_link_take_twice_as_long():
    eng = FluidEngine({"link:a": 100e9})
    eng.add({"link:a": 1e9}, streams=["s1"])
    eng.add({"link:a": 1e9}, streams=["s2"])
    res = eng.run()
    assert res.end_s == pytest.approx([0.02, 0.02], rel=1e-12)  # 2 GB at 100 GB/s


def test_transfers_on_different_links_overlap():
    eng = FluidEngine({"link:a": 100e9, "link:b": 100e9})
    eng.add({"link:a": 1e9}, streams=["s1"])
    eng.add({"link:b": 1e9}, streams=["s2"])
    assert eng.run().end_s == pytest.approx([0.01, 0.01], rel=1e-12)


def test_processor_sharing_of_unequal_transfers():
    # Both get 5 units/s until the small one ends at t=2; the big one then has 10 left at 10/s.
    eng = FluidEngine({"m": 10.0})
    eng.add({"m": 10.0})
    eng.add({"m": 20.0})
    res = eng.run()
    assert res.end_s == pytest.approx([2.0, 3.0])
    assert res.utilisation()["m"] == pytest.approx(1.0)


def test_water_filling_gives_unused_share_to_others():
    # Task 0 needs 1 s of cmp and 0.1 s of mem; task 1 needs 0.9 s of mem. Level L: task 0 holds
    # L of cmp and 0.1 L of mem, task 1 holds L of mem; mem saturates at 1.1 L = 1, L = 1/1.1.
    # Task 1 (rate L/0.9) ends at 0.99 s; task 0 then has 1 - 0.99/1.1 = 0.1 left alone: 1.09 s.
    # (A naive equal split would hold task 1 at half of mem while task 0 uses a tenth: 1.4 s.)
    eng = FluidEngine({"cmp": 10.0, "mem": 100.0})
    eng.add({"cmp": 10.0, "mem": 10.0})
    eng.add({"mem": 90.0})
    res = eng.run()
    assert res.end_s == pytest.approx([1.09, 0.99])
    assert res.limit == ["mem", "mem"]


def test_max_min_rates_are_feasible_and_fair():
    works = {0: {"a": 1.0, "b": 1.0}, 1: {"a": 1.0}, 2: {"b": 3.0, "c": 1.0}, 3: {"c": 2.0}}
    users = {"a": {0, 1}, "b": {0, 2}, "c": {2, 3}}
    cap = {"a": 1.0, "b": 1.0, "c": 1.0}
    rates = _max_min_rates(works, users, cap)
    # b saturates first: tasks 0 and 2 hold level L of their dominant resource (a or b for 0,
    # b for 2): L + L = 1 on b -> L = 1/2; x0 = 1/2, x2 = 1/6. Then a: task 1 gets 1 - 1/2;
    # c: task 3 gets 1 - 1/6 of c, at 2 s of work: x3 = 5/12.
    assert rates[0][0] == pytest.approx(0.5) and rates[2][0] == pytest.approx(1 / 6)
    assert rates[1][0] == pytest.approx(0.5) and rates[3][0] == pytest.approx(5 / 12)
    for r, ts in users.items():
        assert sum(works[t][r] * rates[t][0] for t in ts) <= cap[r] * (1 + 1e-12)


def test_streams_are_in_order_and_dependencies_wait():
    eng = FluidEngine({"x": 1.0, "y": 1.0})
    a = eng.add({"x": 1.0}, streams=["s"])
    b = eng.add({"y": 2.0}, streams=["t"])
    c = eng.add({"x": 1.0}, deps=[b], streams=["s"])     # waits for b (ends at 2)
    d = eng.add({"y": 0.5}, streams=["s"])                # in order behind c on stream s
    res = eng.run()
    assert res.end_s[a] == pytest.approx(1.0)
    assert res.start_s[c] == pytest.approx(2.0) and res.end_s[c] == pytest.approx(3.0)
    assert res.start_s[d] == pytest.approx(3.0) and res.end_s[d] == pytest.approx(3.5)
    assert res.gate[c] == b and res.gate[d] == c and res.gate[b] == -1


def test_fixed_latency_comes_before_the_flow_and_holds_the_stream():
    eng = FluidEngine({"x": 1.0})
    eng.add({"x": 1.0}, fixed_s=0.5, streams=["s"])
    eng.add({}, fixed_s=0.25, streams=["s"])
    res = eng.run()
    assert res.flow_start_s[0] == pytest.approx(0.5)
    assert res.end_s == pytest.approx([1.5, 1.75])


def test_a_multi_stream_task_waits_for_all_its_streams():
    eng = FluidEngine({"x": 1.0, "y": 1.0})
    eng.add({"x": 1.0}, streams=["s0"])
    eng.add({"y": 3.0}, streams=["s1"])
    eng.add({}, fixed_s=1.0, streams=["s0", "s1"])   # a collective holding both streams
    assert eng.run().end_s[2] == pytest.approx(4.0)


def test_tasks_submitted_from_another_simpy_process():
    env = simpy.Environment()
    eng = FluidEngine({"x": 2.0}, env=env)
    eng.add({"x": 4.0})                       # alone: 2 s
    eng.start()

    def later():
        yield env.timeout(1.0)
        eng.add({"x": 1.0})                   # shares x from t=1: both at 1/s

    env.process(later())
    env.run()
    res = eng.result()
    # t=1: task 0 has 2 left, task 1 has 1 left, each at 1/s: task 1 ends at 2, task 0 at 2 + 1/2.
    assert res.end_s == pytest.approx([2.5, 2.0])


@pytest.mark.parametrize("bad", [
    lambda e: e.add({"nope": 1.0}),
    lambda e: e.add({"x": -1.0}),
    lambda e: e.add({"x": math.inf}),
    lambda e: e.add({"x": 1.0}, fixed_s=-1.0),
    lambda e: e.add({"x": 1.0}, deps=[5]),
    lambda e: e.add_resource("z", 0.0),
    lambda e: e.add_resource("z", math.nan),
])
def test_bad_tasks_are_input_errors(bad):
    eng = FluidEngine({"x": 1.0})
    with pytest.raises(InputError):
        bad(eng)


# ---------------------------------------------------------------- properties
RES = ["a", "b", "c"]


@st.composite
def task_sets(draw):
    n = draw(st.integers(1, 8))
    tasks = []
    for i in range(n):
        used = draw(st.lists(st.sampled_from(RES), min_size=0, max_size=3, unique=True))
        work = {r: draw(st.floats(0.1, 10.0)) for r in used}
        fixed = draw(st.sampled_from([0.0, 0.0, 0.5]))
        deps = draw(st.lists(st.integers(0, i - 1), max_size=2, unique=True)) if i else []
        stream = draw(st.integers(0, 2))
        tasks.append((work, fixed, deps, stream))
    caps = {r: draw(st.floats(0.5, 4.0)) for r in RES}
    return tasks, caps


def _play(tasks, caps):
    eng = FluidEngine(caps)
    for work, fixed, deps, stream in tasks:
        eng.add(work, fixed, deps, [stream])
    return eng.run()


def _alone(work, fixed, caps):
    return max((w / caps[r] for r, w in work.items()), default=0.0) + fixed


@settings(max_examples=40, deadline=None)
@given(task_sets())
def test_makespan_between_critical_path_and_serial_sum(case):
    tasks, caps = case
    res = _play(tasks, caps)
    longest = []
    for work, fixed, deps, _ in tasks:
        longest.append(max((longest[d] for d in deps), default=0.0) + _alone(work, fixed, caps))
    serial = sum(_alone(w, f, caps) for w, f, _, _ in tasks)
    assert max(longest) * (1 - 1e-9) <= res.makespan_s <= serial * (1 + 1e-9)
    # Following the gates back from the last task walks a chain with no gaps.
    last = max(range(len(tasks)), key=res.end_s.__getitem__)
    t, total = last, 0.0
    while t >= 0:
        total += res.end_s[t] - res.start_s[t]
        t = res.gate[t]
    assert total == pytest.approx(res.makespan_s)


@settings(max_examples=40, deadline=None)
@given(task_sets(), st.sampled_from(RES), st.floats(1.0, 4.0))
def test_more_capacity_never_increases_makespan_of_independent_streams(case, res_key, factor):
    tasks, caps = case
    # One stream per task, no dependencies, one resource per task: each resource is a
    # processor-sharing queue whose jobs all arrive at their fixed latency. (With tasks on
    # several resources, fair sharing has Graham-like anomalies: a faster resource lets one
    # task take a share of another resource from a task on the critical path.)
    free = [({r: w for r, w in list(w.items())[:1]}, f, [], i) for i, (w, f, _, _) in enumerate(tasks)]
    base = _play(free, caps).makespan_s
    faster = _play(free, {**caps, res_key: caps[res_key] * factor}).makespan_s
    assert faster <= base * (1 + 1e-9)


@settings(max_examples=25, deadline=None)
@given(task_sets())
def test_same_input_same_result(case):
    tasks, caps = case
    a, b = _play(tasks, caps), _play(tasks, caps)
    assert a.end_s == b.end_s and a.limit == b.limit
