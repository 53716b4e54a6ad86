"""A collective algorithm is one registration in ``roofline.collectives``: its steps and its peers.

The toy below (a one-shot all-reduce priced as a library's, with a pipeline startup: every rank
sends its whole buffer straight to every other rank in one step) is registered in one place; the
analytic cost, ``ridgeline op``, and the simulator's routing over a system must all use it.
The registry is restored after each test.
"""

import json

import pytest
from clitools import run

import hwmodels
import workloads
from hwmodels.errors import InputError
from roofline import collectives
from roofline.collectives import ALGORITHMS, Algorithm, Step, Transfer, plan_collective
from roofline.costs import clear_memo, cost_collective
from simulator import simulate
from workloads.operators import Collective


def _one_shot_steps(collective: str, payload: float, n: int) -> list[Step]:
    # one step: the whole buffer to each of the n-1 others
    return [Step(payload * (n - 1), 1)]


def _one_shot_peers(collective, index, members, nbytes, switch):
    n = len(members)
    share = nbytes / (n - 1)
    return [[Transfer(a, b, share)] for a in members for b in members if a != b]


@pytest.fixture
def one_shot(monkeypatch):
    """``one_shot`` registered for the test only (the registry's entries are restored after)."""
    monkeypatch.setattr(ALGORITHMS, "_entries", dict(ALGORITHMS._entries))
    monkeypatch.setattr(ALGORITHMS, "_help", dict(ALGORITHMS._help))
    ALGORITHMS.register("toy_one_shot", Algorithm(("all_reduce",), _one_shot_steps, _one_shot_peers),
                        help="every rank sends its buffer to every other rank at once")
    yield "toy_one_shot"
    clear_memo()


def _all_reduce(payload=8e6, n=4):
    return Collective(name="ar", collective="all_reduce", payload_bytes=payload, group="tp", group_size=n)


def test_a_registered_algorithm_is_costed_and_simulated(one_shot):
    system = hwmodels.load_system("hgx-h100")
    gpu = system.devices["gpu0"]
    link = system.link("gpu0", "nvswitch")
    op = _all_reduce()
    # analytic: 3 x 8 MB leave each rank over NVLink in one step of one hop; every byte sent is
    # read and every byte received written, and the reduction reads 3/4 of the local 8 MB
    plan = plan_collective(op, gpu, algorithm=one_shot)
    assert plan.algorithm == one_shot
    d = cost_collective(op, gpu, algorithm=one_shot)
    assert d.work["link:nvlink"] == pytest.approx(3 * 8e6)
    assert d.work["memory:hbm"] == pytest.approx(2 * 3 * 8e6 + 3 / 4 * 8e6)
    assert d.fixed_s == pytest.approx(plan.overhead_s + link.latency_s)

    g = workloads.Graph("one", meta={"tp": 4, "tokens": 1})
    g.add(op)
    res = simulate(g, system, algorithm=one_shot)
    # routed over the NVSwitch: each GPU's uplink carries its 24 MB out and its downlink 24 MB in,
    # at the link's efficiency; one NVLink latency per route (gpu -> switch -> gpu)
    link_s = 3 * 8e6 / (link.bandwidth_bytes_s * plan.link_efficiency)
    memory_s = d.work["memory:hbm"] / d.rates["memory:hbm"]
    assert res.latency_s == pytest.approx(max(link_s, memory_s) + plan.overhead_s + link.latency_s, rel=1e-9)
    assert res.dynamic_energy_j == pytest.approx(4 * d.energy_j, rel=1e-12)


def test_a_registered_algorithm_is_a_cli_choice(capsys, one_shot):
    code, out, _ = run(capsys, "op", "collective", "--hw", "h100-sxm", "--collective", "all_reduce",
                       "--payload-bytes", "8 MB", "--group-size", "4", "--algorithm", one_shot, "--format", "json")
    assert code == 0
    assert json.loads(out)["link_bytes"]["nvlink"] == pytest.approx(3 * 8e6)


def test_the_registry_is_restored_after_a_test():
    assert "toy_one_shot" not in ALGORITHMS
    assert ALGORITHMS.names() == ["ring", "tree", "in_switch", "one_shot", "two_shot"]


def test_the_algorithm_is_chosen_in_one_place():
    op = _all_reduce()
    # the library's default: in the switch where it reduces, else the ring
    assert collectives.choose_algorithm(op, reducing_switch=True) == "in_switch"
    assert collectives.choose_algorithm(op, reducing_switch=False) == "ring"
    # a preference applies only where it implements the collective
    gather = Collective(name="ag", collective="all_gather", payload_bytes=1e6, group="tp", group_size=4)
    assert collectives.choose_algorithm(op, reducing_switch=True, preferred="tree") == "tree"
    assert collectives.choose_algorithm(gather, reducing_switch=True, preferred="tree") == "in_switch"
    # a pin on the operator beats a preference; a demanded algorithm beats both and must fit
    op.algorithm = "ring"
    assert collectives.choose_algorithm(op, reducing_switch=True, preferred="tree") == "ring"
    assert collectives.choose_algorithm(op, reducing_switch=True, algorithm="tree") == "tree"
    with pytest.raises(InputError, match="does not implement all_gather"):
        collectives.choose_algorithm(gather, reducing_switch=False, algorithm="tree")
    with pytest.raises(InputError, match="did you mean 'tree'"):
        collectives.choose_algorithm(gather, reducing_switch=False, preferred="trea")


# -- a collective library over NVLink: its share of the line rate and its startup ---------------------
def test_library_startup_per_step_by_hand():
    from roofline.efficiency import COLLECTIVE_STEP_STARTUP_S, collective_startup_s

    nvlink = hwmodels.load_device("h100-sxm").links["nvlink"]
    pcie = hwmodels.load_device("h100-sxm").links["pcie"]
    t0 = COLLECTIVE_STEP_STARTUP_S["ring"]
    # a 4 MiB payload fills half the pipeline: 1 step x t0 x 4 / (4 + 4); 14 steps x 12 / 16 at 12 MiB
    assert collective_startup_s("ring", 4 * 2**20, 1, nvlink) == pytest.approx(t0 / 2)
    assert collective_startup_s("ring", 12 * 2**20, 14, nvlink) == pytest.approx(14 * t0 * 0.75)
    # the tree (no rows of its own) takes the ring's; no library figure for PCIe: no startup
    assert collective_startup_s("tree", 4 * 2**20, 2, nvlink) == pytest.approx(t0)
    assert collective_startup_s("ring", 4 * 2**20, 14, pcie) == 0.0
    # a 64 KB tensor-parallel all-reduce of a decode step barely pays it: 64e3 / (64e3 + 4194304)
    assert collective_startup_s("ring", 64e3, 1, nvlink) == pytest.approx(t0 * 64e3 / (64e3 + 4 * 2**20))
    # an in-switch reduction waits NCCL's NVLS latency, 25 us, before its one step's fill
    nvls = COLLECTIVE_STEP_STARTUP_S["in_switch"]
    assert collective_startup_s("in_switch", 4 * 2**20, 1, nvlink, in_network=True) == pytest.approx(25e-6 + nvls / 2)
    assert collective_startup_s("in_switch", 0.0, 1, nvlink, in_network=True) == pytest.approx(25e-6)


def test_startup_constants_are_the_fit_on_the_fit_rows():
    from calibration.collective_fit import fit_startup, startup_samples
    from calibration.public import FIT_ROWS, load_rows
    from roofline.efficiency import COLLECTIVE_STEP_STARTUP_S

    fitted = fit_startup()
    assert set(fitted) == {"ring", "in_switch"}
    for algo, t0 in fitted.items():
        assert COLLECTIVE_STEP_STARTUP_S[algo] == pytest.approx(t0, rel=1e-3), \
            "rerun `python -m calibration.collective_fit` and copy its figures"
    # only rows marked fit enter; marking every collective row held-out leaves nothing to fit
    rows = load_rows()
    assert startup_samples([{**r, "role": "held-out"} for r in rows]) == {}
    used = {r["id"] for r in rows if r["role"] == "fit" and r["workload"].startswith("all_reduce")}
    assert used and used <= set(FIT_ROWS)
