"""simulate(): graphs over devices and systems, with times computed by hand in the tests."""

import dataclasses
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hwmodels
import workloads
from hwmodels.errors import InputError
from roofline.collectives import plan_collective
from roofline.costs import cost
from roofline.demands import Demands
from simulator import simulate
from workloads.operators import Collective, MatMul


@pytest.fixture(scope="module")
def h100():
    return hwmodels.load_device("h100-sxm")


@pytest.fixture(scope="module")
def decode8b():
    return workloads.build_llm("llama-3.1-8b", "decode", batch=8, context=512)


def one_op_graph(op, **meta):
    g = workloads.Graph("one", meta={"tokens": 1, **meta})
    g.add(op)
    return g


def test_one_operator_alone_takes_exactly_its_analytic_cost(h100):
    op = MatMul(name="mm", m=4096, n=8192, k=4096)
    # this GEMM runs above the default efficiency, so it would draw more than the TDP (whose
    # per-FLOP energy assumes the default): without the power cap it takes its analytic time
    res = simulate(one_op_graph(op), h100, power_cap=False)
    d = cost(op, h100)
    assert res.latency_s == pytest.approx(d.time_s, rel=1e-12)
    # Energy: the operator's dynamic energy, static power over the makespan, and the active
    # baseline above static over the time the device is busy (here: the whole makespan).
    p = h100.power
    assert res.energy_j == pytest.approx(d.energy_j + p.static_w * d.time_s + (p.active_w - p.static_w) * d.time_s,
                                         rel=1e-12)
    assert res.avg_power_w["gpu0"] == pytest.approx(res.energy_j / res.latency_s)
    assert res.bottleneck["resource"] == d.bound


def test_single_stream_decode_is_the_serial_sum(h100, decode8b):
    res = simulate(decode8b, h100)
    serial = sum(cost(op, h100).time_s for op in decode8b.ops)
    assert res.latency_s == pytest.approx(serial, rel=1e-9)
    assert res.tokens == 8 and res.throughput_tok_s == pytest.approx(8 / res.latency_s)
    # The critical path of one in-order stream is every operator, summing to the makespan.
    assert sum(r["time_s"] for r in res.critical_path) == pytest.approx(res.latency_s)
    assert res.bottleneck["bound"] == "memory"


def _ring_system(tmp_path, n, bw="100 GB/s", latency="2 us"):
    text = f"""
id: ring{n}
name: {n} GPUs in a ring
kind: system
source: a test topology
devices:
  - {{name: gpu, device: h100-sxm, count: {n}}}
edges:
  - mesh: gpu
    shape: [{n}]
    wrap: true
    link: {{kind: nvlink, bandwidth: {bw}, latency: {latency}, energy_per_byte: 10 pJ/B}}
"""
    path = tmp_path / f"ring{n}.yaml"
    path.write_text(text)
    return hwmodels.load_system(path)


def _links_only(op, device):
    """A cost of 1 ms of tensor work per operator (collectives: see :func:`_links_only_plan`)."""
    return Demands(op.name, {"compute:tensor": 1.0}, {"compute:tensor": 1e3}, 0.0, 0.0, op.kind)


def _links_only_plan(op, device, **choice):
    """The cost model's plan of a collective with nothing but the topology: the algorithm's steps
    over links at their full bandwidth, no local work and no fixed time."""
    plan = plan_collective(op, device, **choice)
    return dataclasses.replace(plan, link_efficiency=1.0, overhead_s=0.0,
                               demands=Demands(op.name, {}, {}, 0.0, 0.0, op.kind))


LINKS_ONLY = {"cost_fn": _links_only, "collective_fn": _links_only_plan}


@pytest.mark.parametrize("n", [3, 4, 8])
def test_ring_all_reduce_matches_the_textbook_formula(tmp_path, n):
    system = _ring_system(tmp_path, n)
    payload = 64e6
    g = one_op_graph(Collective(name="ar", collective="all_reduce", payload_bytes=payload, group="tp",
                                group_size=n), tp=n)
    for merge in (True, False):
        res = simulate(g, system, algorithm="ring", **LINKS_ONLY, merge_steps=merge)
        expected = 2 * (n - 1) / n * payload / 100e9 + 2 * (n - 1) * 2e-6
        assert res.latency_s == pytest.approx(expected, rel=1e-9)


def test_communication_overlaps_compute_only_across_streams_and_without_a_dependency(tmp_path):
    """Each operator costs 1 ms of tensor work (``_links_only``); the all-reduce of 100 MB over a
    4-GPU ring at 100 GB/s takes 2 x 3/4 x 1 ms + 6 x 2 us. Independent, the all-reduce (comm
    stream) runs beside the GEMM (compute stream); after it, it waits; two independent GEMMs share
    the in-order compute stream and run one after the other."""
    system = _ring_system(tmp_path, 4)
    ar_s = 2 * 3 / 4 * 100e6 / 100e9 + 6 * 2e-6

    def play(ar_deps, b_deps=None):
        g = workloads.Graph("overlap", meta={"tp": 4, "tokens": 1})
        g.add(MatMul(name="a", m=64, n=64, k=64))
        if b_deps is not None:
            g.add(MatMul(name="b", m=64, n=64, k=64), b_deps)
        g.add(Collective(name="ar", collective="all_reduce", payload_bytes=100e6, group="tp", group_size=4),
              ar_deps)
        return simulate(g, system, algorithm="ring", **LINKS_ONLY).latency_s

    assert play([]) == pytest.approx(max(1e-3, ar_s), rel=1e-9)
    assert play(["a"]) == pytest.approx(1e-3 + ar_s, rel=1e-9)
    assert play([], b_deps=[]) == pytest.approx(max(2e-3, ar_s), rel=1e-9)
    assert play(["b"], b_deps=[]) == pytest.approx(2e-3 + ar_s, rel=1e-9)


def test_collective_alone_over_nvswitch_takes_its_analytic_cost():
    # HGX H100 reduces in the switch (NVLS): P up and P down over each GPU's NVLink, two link
    # latencies; routed over the system graph it takes exactly what the cost model says.
    system = hwmodels.load_system("hgx-h100")
    op = Collective(name="ar", collective="all_reduce", payload_bytes=256e6, group="tp", group_size=8)
    res = simulate(one_op_graph(op, tp=8), system)
    assert res.latency_s == pytest.approx(cost(op, system.devices["gpu0"]).time_s, rel=1e-9)


def test_in_switch_all_reduce_is_cheaper_than_the_ring_on_nvswitch():
    system = hwmodels.load_system("hgx-h100")
    g = one_op_graph(Collective(name="ar", collective="all_reduce", payload_bytes=256e6, group="tp",
                                group_size=8), tp=8)
    ring = simulate(g, system, algorithm="ring", **LINKS_ONLY).latency_s
    nvls = simulate(g, system, **LINKS_ONLY).latency_s
    link = system.link("gpu0", "nvswitch")
    # in-switch: (1 + 1/8) P up and down in parallel, two latencies; ring: 2(N-1)/N P, 14 latencies.
    assert nvls == pytest.approx(9 / 8 * 256e6 / link.bandwidth_bytes_s + 2 * link.latency_s, rel=1e-9)
    assert ring == pytest.approx(2 * 7 / 8 * 256e6 / link.bandwidth_bytes_s + 14 * link.latency_s, rel=1e-9)


def test_a_collective_pinned_to_another_algorithm_is_routed_by_its_own():
    # Same payload and group, one left to the library's choice (in-switch), one pinned to the
    # ring: played one after the other, each takes its own algorithm's time.
    system = hwmodels.load_system("hgx-h100")
    g = workloads.Graph("two", meta={"tp": 8, "tokens": 1})
    g.add(Collective(name="nvls", collective="all_reduce", payload_bytes=256e6, group="tp", group_size=8))
    ring_op = Collective(name="ring", collective="all_reduce", payload_bytes=256e6, group="tp", group_size=8)
    ring_op.algorithm = "ring"
    g.add(ring_op, ["nvls"])
    link = system.link("gpu0", "nvswitch")
    nvls = 9 / 8 * 256e6 / link.bandwidth_bytes_s + 2 * link.latency_s
    ring = 2 * 7 / 8 * 256e6 / link.bandwidth_bytes_s + 14 * link.latency_s
    assert simulate(g, system, **LINKS_ONLY).latency_s == pytest.approx(nvls + ring, rel=1e-9)


def test_the_algorithm_asked_for_is_the_one_the_cost_model_charges():
    # simulate(algorithm="ring") on NVSwitch: every rank pays the ring's memory traffic and
    # reduction FLOPs (cost_collective with "ring"), not those of the in-switch default.
    from roofline.costs import cost_collective

    system = hwmodels.load_system("hgx-h100")
    op = Collective(name="ar", collective="all_reduce", payload_bytes=64e6, group="tp", group_size=8)
    gpu = system.devices["gpu0"]
    ring = cost_collective(op, gpu, "ring").energy_j
    assert ring != pytest.approx(cost_collective(op, gpu, "in_switch").energy_j)
    res = simulate(one_op_graph(op, tp=8), system, algorithm="ring")
    assert res.dynamic_energy_j == pytest.approx(8 * ring, rel=1e-12)
    assert not hasattr(op, "algorithm")          # the graph's operator is left as it was


def test_a_forced_algorithm_applies_to_the_collectives_it_implements():
    # "tree" implements all-reduce, not all-gather. Over NVSwitch every step sends P/3 up and
    # down each GPU's link (recursive doubling over 2 x ceil(log2 8) = 6 steps: 2P per direction,
    # one link latency per step); the all-gather keeps the library's choice (NVLS multicast:
    # P one way, two latencies).
    system = hwmodels.load_system("hgx-h100")
    g = workloads.Graph("two", meta={"tp": 8, "tokens": 1})
    g.add(Collective(name="ar", collective="all_reduce", payload_bytes=240e6, group="tp", group_size=8))
    g.add(Collective(name="ag", collective="all_gather", payload_bytes=240e6, group="tp", group_size=8), ["ar"])
    link = system.link("gpu0", "nvswitch")
    tree = 2 * 240e6 / link.bandwidth_bytes_s + 6 * link.latency_s
    gather = 240e6 / link.bandwidth_bytes_s + 2 * link.latency_s
    assert simulate(g, system, algorithm="tree", **LINKS_ONLY).latency_s == pytest.approx(tree + gather,
                                                                                               rel=1e-9)
    with pytest.raises(InputError, match="did you mean 'tree'"):
        simulate(g, system, algorithm="trea", **LINKS_ONLY)


def _stage_graph(p, m, t_s=1e-3):
    g = workloads.Graph("pipe", meta={"pp": p, "microbatches": m, "tokens": m})
    prev = []
    for s in range(p):
        op = MatMul(name=f"s{s}", m=64, n=64, k=64, stage=s)
        g.add(op, prev)
        prev = [op.name]
    return g


def _fixed_time(op, device, t_s=1e-3):
    return Demands(op.name, {"compute:tensor": t_s * 1e12}, {"compute:tensor": 1e12}, 0.0, 1.0, op.kind)


@pytest.mark.parametrize("p,m", [(2, 1), (2, 4), (4, 4), (4, 8), (3, 5)])
def test_pipeline_bubble_fraction(h100, p, m):
    # 1 J per 1 ms op is 1000 W, above the TDP: the power cap is left out of this timing test
    res = simulate(_stage_graph(p, m), h100, cost_fn=_fixed_time, power_cap=False)
    assert res.latency_s == pytest.approx((m + p - 1) * 1e-3)
    tl = res.timeline
    for _dev, part in tl.groupby("device"):
        busy = part["duration"].sum()
        assert 1 - busy / res.latency_s == pytest.approx((p - 1) / (m + p - 1))
    assert len(set(tl["device"])) == p


def test_pipeline_send_recv_uses_the_link_between_stages(h100):
    g = workloads.Graph("pipe", meta={"pp": 2, "microbatches": 2})
    a = g.add(MatMul(name="a", m=64, n=64, k=64, stage=0))
    send = g.add(Collective(name="send", collective="send_recv", payload_bytes=45e6, group="pp", group_size=2,
                            stage=0, peer_stage=1), [a])
    g.add(MatMul(name="b", m=64, n=64, k=64, stage=1), [send])
    res = simulate(g, h100, **LINKS_ONLY)
    link = h100.links["nvlink"]
    send_s = 45e6 / link.bandwidth_bytes_s + link.latency_s   # gpu0 -> nvswitch -> gpu1: one latency
    mm = 1e-3
    # mb0: a, send, b; mb1's a overlaps mb0's send; its send follows mb0's on the comm streams.
    assert res.latency_s == pytest.approx(mm + 2 * send_s + mm if send_s > mm else 2 * mm + send_s + mm,
                                          rel=1e-9)


def test_tensor_parallel_decode_simulates_every_rank(decode8b):
    g = workloads.build_llm("llama-3.1-8b", "decode", batch=8, context=512, tp=4)
    res = simulate(g, "hgx-h100")
    tl = res.timeline
    assert set(tl["device"]) == {"gpu0", "gpu1", "gpu2", "gpu3"}
    ar = tl[tl["kind"] == "collective"]
    assert len(ar) > 0 and set(ar["device"]) == {"gpu0", "gpu1", "gpu2", "gpu3"}
    # ranks are symmetric: each runs the same operators at the same times
    per = tl[tl["kind"] != "collective"].groupby("device")["end"].max()
    assert per.max() == pytest.approx(per.min())
    assert res.latency_s < simulate(decode8b, "h100-sxm").latency_s


def test_device_replicated_on_the_fly_for_tp():
    g = workloads.build_llm("llama-3.1-8b", "decode", batch=4, context=256, tp=2)
    res = simulate(g, hwmodels.load_device("h100-sxm"))
    assert res.meta["devices"] == 2


def test_moe_expert_parallel_all_to_all():
    g = workloads.build_llm("mixtral-8x7b", "decode", batch=16, context=512, tp=2, ep=2)
    res = simulate(g, "hgx-h100")
    kinds = set(res.timeline["kind"])
    assert "collective" in kinds and res.latency_s > 0


def test_system_too_small_is_an_input_error(decode8b):
    g = workloads.build_llm("llama-3.1-8b", "decode", batch=8, context=512, tp=8, pp=2)
    with pytest.raises(InputError, match="needs 16 accelerators"):
        simulate(g, "hgx-h100")


def test_bad_knobs_are_input_errors(h100, decode8b):
    with pytest.raises(InputError):
        simulate(decode8b, h100, jitter=-1.0)
    with pytest.raises(InputError):
        simulate(decode8b, h100, scale={"memory:hbm": 0.0})
    with pytest.raises(InputError, match="did you mean 'memory:hbm'"):
        simulate(decode8b, h100, scale={"memory:hmb": 2.0})
    with pytest.raises(InputError):
        simulate(workloads.Graph("empty"), h100)


def test_sensitivity_is_resimulated(h100, decode8b):
    res = simulate(decode8b, h100)
    sens = res.sensitivity()
    assert res.sensitivity() is sens          # kept: asking again re-simulates nothing
    assert "memory:hbm" in sens
    faster = simulate(decode8b, h100, scale={"memory:hbm": 2.0}).latency_s
    assert sens["memory:hbm"]["latency_s"] == pytest.approx(faster)
    assert -0.5 <= sens["memory:hbm"]["change"] < 0


def test_outputs_frame_dict_plot_and_trace(tmp_path, h100):
    g = workloads.build_llm("llama-3.1-8b", "decode", batch=4, context=256, tp=2)
    res = simulate(g, "hgx-h100")
    frame = res.to_frame()
    assert list(frame.columns[:3]) == ["op", "kind", "device"] and len(frame) == len(res.timeline)
    d = res.to_dict()
    json.dumps(d, allow_nan=False)
    assert {"latency_s", "energy_j", "avg_power_w", "critical_path", "bottleneck", "sensitivity"} <= set(d)
    fig = res.plot()
    fig.savefig(tmp_path / "gantt.png")
    trace = json.loads(res.write_trace(tmp_path / "t.json").read_text())
    slices = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    counters = [e for e in trace["traceEvents"] if e["ph"] == "C"]
    assert len(slices) == len(frame)
    assert all("bound" in e["args"] for e in slices)
    assert {e["name"] for e in counters} >= {"power_w", "memory:hbm B/s", "link:nvlink out B/s"}


def test_trace_is_chrome_trace_format_with_a_counter_track_per_device_resource(tmp_path, h100):
    g = workloads.build_llm("llama-3.1-8b", "decode", batch=2, context=128, tp=2)
    res = simulate(g, "hgx-h100")
    trace = json.loads(res.write_trace(tmp_path / "t.json").read_text())
    events = trace["traceEvents"]
    required = {"X": {"name", "ph", "ts", "dur", "pid", "tid", "args"}, "C": {"name", "ph", "ts", "pid", "args"},
                "M": {"name", "ph", "pid", "args"}}
    assert {e["ph"] for e in events} == set(required)
    for e in events:
        assert required[e["ph"]] <= set(e)
    procs = {e["pid"]: e["args"]["name"] for e in events if e["name"] == "process_name"}
    threads = {(e["pid"], e["tid"]): e["args"]["name"] for e in events if e["name"] == "thread_name"}
    assert sorted(procs.values()) == ["gpu0", "gpu1"]
    # slices: timeline rows in microseconds on the track of their device and stream
    slices = sorted((procs[e["pid"]], threads[(e["pid"], e["tid"])], e["ts"], e["dur"], e["name"])
                     for e in events if e["ph"] == "X")
    rows = sorted((r.device, r.stream, r.start * 1e6, (r.end - r.start) * 1e6, r.op)
                  for r in res.timeline.itertuples())
    assert [s[:2] + s[4:] for s in slices] == [r[:2] + r[4:] for r in rows]
    # pytest.approx takes flat sequences only
    assert [x for s in slices for x in s[2:4]] == pytest.approx([x for r in rows for x in r[2:4]])
    # counters: numeric values only, one track per resource each device used, and power
    counters = [e for e in events if e["ph"] == "C"]
    assert all(len(e["args"]) == 1 and math.isfinite(next(iter(e["args"].values()))) for e in counters)
    tracks = {(procs[e["pid"]], e["name"]) for e in counters}
    for dev in ("gpu0", "gpu1"):
        used = {k for k, u in res.utilisation[dev].items() if u > 0 and "->" not in k}
        assert {n.rsplit(" ", 1)[0] for d, n in tracks if d == dev and n != "power_w"} >= used
        assert (dev, "power_w") in tracks and (dev, "link:nvlink out B/s") in tracks
    # the HBM counter of gpu0, integrated over time, is every byte its operators read from HBM
    hbm = sorted((e["ts"] * 1e-6, e["args"]["memory:hbm B/s"]) for e in counters
                 if e["name"] == "memory:hbm B/s" and procs[e["pid"]] == "gpu0")
    moved = sum(rate * (t1 - t0) for (t0, rate), (t1, _) in zip(hbm, hbm[1:]))
    expected = sum(cost(op, h100).work.get("memory:hbm", 0.0) for op in g.ops)
    assert moved == pytest.approx(expected, rel=1e-6)


# ---------------------------------------------------------------- properties
@settings(max_examples=25, deadline=None)
@given(st.sampled_from(["memory:hbm", "compute:tensor", "memory:l2", "link:nvlink"]),
       st.floats(1.0, 8.0), st.sampled_from([1, 16, 64]))
def test_faster_resources_never_increase_makespan(key, factor, batch):
    g = workloads.build_llm("llama-3.1-8b", "decode", batch=batch, context=256, tp=2)
    base = simulate(g, "hgx-h100")
    fast = simulate(g, "hgx-h100", scale={key: factor})
    assert fast.latency_s <= base.latency_s * (1 + 1e-9)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**16), st.floats(0.0, 0.3))
def test_energy_bounds_and_determinism(seed, jitter):
    g = workloads.build_llm("llama-3.1-8b", "prefill", batch=1, prompt_len=128, tp=2)
    a = simulate(g, "hgx-h100", seed=seed, jitter=jitter)
    b = simulate(g, "hgx-h100", seed=seed, jitter=jitter)
    assert a.latency_s == b.latency_s and a.energy_j == b.energy_j
    assert a.timeline.equals(b.timeline)
    static = sum(hwmodels.load_system("hgx-h100").devices[n].power.static_w for n in ("gpu0", "gpu1"))
    assert a.energy_j >= static * a.latency_s
    assert math.isfinite(a.energy_j)


@settings(max_examples=20, deadline=None)
@given(st.sampled_from([1, 8, 64]), st.sampled_from([64, 1024]), st.sampled_from(["decode", "prefill"]))
def test_makespan_between_critical_path_and_serial_sum(batch, length, phase):
    g = workloads.build_llm("llama-3.1-8b", phase, batch=batch, prompt_len=length, context=length, tp=2)
    system = hwmodels.load_system("hgx-h100")
    dev = system.devices["gpu0"]
    res = simulate(g, system)
    t = {op.name: cost(op, dev).time_s for op in g.ops}
    longest: dict[str, float] = {}
    for op in g.ops:
        longest[op.name] = max((longest[d] for d in g.deps(op.name)), default=0.0) + t[op.name]
    # every rank runs every operator; a collective is one operation of the whole group
    serial = sum(v if g.op(k).kind == "collective" else 2 * v for k, v in t.items())
    assert max(longest.values()) * (1 - 1e-9) <= res.latency_s <= serial * (1 + 1e-9)


def _hot(op, device):
    # 1 ms of tensor work drawing 1 J: 1000 W of dynamic power on top of the static power.
    return Demands(op.name, {"compute:tensor": 1e9}, {"compute:tensor": 1e12}, 0.0, 1.0, op.kind)


def test_power_above_tdp_is_capped_and_utilisation_is_exact(h100):
    gpu = h100.with_overrides({"power.active": "300 W"})   # static 70 W, TDP 700 W
    res = simulate(_stage_graph(1, 1), gpu, cost_fn=_hot, power_cap=False)
    assert res.latency_s == pytest.approx(1e-3)
    assert res.avg_power_w["gpu0"] == pytest.approx(1000.0 + 300.0)   # busy all the time: active
    assert res.over_tdp == ["gpu0"]           # 1300 W > 700 W
    # With the cap (the default) the clock drops to c where 1 J / (1 ms / c) + 300 W = 700 W:
    # c = 0.4, the step takes 2.5 ms and draws the TDP; the energy of the work is the same
    capped = simulate(_stage_graph(1, 1), gpu, cost_fn=_hot)
    assert capped.power_cap["gpu0"]["clock_fraction"] == pytest.approx(0.4, rel=1e-3)
    assert capped.power_cap["gpu0"]["uncapped_power_w"] == pytest.approx(1300.0)
    assert capped.latency_s == pytest.approx(2.5e-3, rel=1e-3)
    assert capped.avg_power_w["gpu0"] == pytest.approx(700.0, rel=1e-3) and capped.over_tdp == []
    assert capped.dynamic_energy_j == pytest.approx(1.0)
    assert res.utilisation["gpu0"]["compute:tensor"] == pytest.approx(1.0)
    # Two pipeline stages of the same op in turn: each device is busy half of the 2 ms makespan,
    # 1 J / 2 ms = 500 W + 70 W static + (300 - 70) W x 1/2 busy = 685 W, under the TDP.
    half = simulate(_stage_graph(2, 1), gpu, cost_fn=_hot)
    assert half.avg_power_w["gpu1"] == pytest.approx(500.0 + 70.0 + 230.0 * 0.5)
    assert half.utilisation["gpu1"]["compute:tensor"] == pytest.approx(0.5)
    assert half.over_tdp == []


def test_the_collective_played_is_the_collective_costed(tmp_path):
    """A system whose switch reduces in the network while its A100s' NVLink says it does not: the
    simulator plays the in-switch all-reduce the topology offers, and the cost model must charge that
    algorithm (its memory traffic, energy, latency), exactly as on a system that declares both."""
    def system(name, link_reduces):
        f = tmp_path / f"{name}.yaml"
        f.write_text(
            f"id: {name}\nname: {name}\nkind: system\nsource: test\n"
            "devices:\n"
            f"  - {{name: gpu, device: a100-sxm-80gb, count: 4, "
            f"overrides: {{links.nvlink.in_network_reduction: {str(link_reduces).lower()}}}}}\n"
            "switches: [{name: sw, in_network_reduction: true}]\n"
            "edges:\n  - {from: gpu, to: sw, link: nvlink}\n")
        return hwmodels.load_system(f)

    g = one_op_graph(Collective(name="ar", collective="all_reduce", payload_bytes=64e6, group="tp",
                                group_size=4), tp=4)
    mixed, consistent = simulate(g, system("mixed", False)), simulate(g, system("consistent", True))
    assert mixed.latency_s == pytest.approx(consistent.latency_s, rel=1e-12)
    assert mixed.dynamic_energy_j == pytest.approx(consistent.dynamic_energy_j, rel=1e-12)
