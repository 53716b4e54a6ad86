"""A runtime's own tensor-parallel all-reduce kernel (vLLM's custom all-reduce, TensorRT-LLM's):
one-shot / two-shot below its size limits on NVLink, NCCL above them, without NVLink, for other
group sizes, and without a runtime."""

import json

import pytest
from clitools import run

import hwmodels
import workloads
from hwmodels.errors import InputError
from hwmodels.runtime import AllReduceKernel, RuntimeProfile, load_runtime
from roofline.collectives import plan_collective
from simulator import simulate
from workloads.operators import Collective

MIB = 2**20
US = 1e-6
# a kernel like the vllm-v1 profile's, written out here: 1 us per call, 0.48 of the line rate
KERNEL = AllReduceKernel("k", 1 * US, 0.48, one_shot_below=((2, 8 * MIB), (8, 256 * 1024)),
                         two_shot_below=((8, 8 * MIB),))


def _all_reduce(payload, n=8):
    return Collective(name="ar", collective="all_reduce", payload_bytes=payload, group="tp", group_size=n)


def test_the_bundled_engines_name_their_kernel_and_none_has_none():
    assert load_runtime("none").all_reduce_kernel is None
    for name in ("vllm-v0.6", "vllm-v1", "sglang"):
        k = load_runtime(name).all_reduce_kernel
        # vLLM's custom_all_reduce: 8 ranks one-shot below 256 KiB, two-shot below 8 MiB
        assert k.name == "vllm-custom-all-reduce" and k.algorithm(255 * 1024, 8) == "one_shot"
        assert k.algorithm(256 * 1024, 8) == "two_shot" and k.algorithm(8 * MIB, 8) is None
        assert k.algorithm(7 * MIB, 2) == "one_shot" and k.algorithm(1024, 16) is None
    assert load_runtime("trtllm").all_reduce_kernel.algorithm(300 * 1024, 8) == "one_shot"   # 512 KiB on 8


def test_gpt_fast_runs_pytorchs_intra_node_comm_for_bf16_only():
    k = load_runtime("gpt-fast").all_reduce_kernel
    # IntraNodeComm.selectAllReduceAlgo: one-shot to 256 KiB, two-shot to 10 MiB, bf16 only
    assert k.name == "pytorch-intra-node-comm"
    assert k.algorithm(8 * 1024, 8, "bf16") == "one_shot" and k.algorithm(1 * MIB, 8, "bf16") == "two_shot"
    assert k.algorithm(11 * MIB, 8, "bf16") is None
    assert k.algorithm(8 * 1024, 8, "fp16") is None and k.algorithm(8 * 1024, 8, "fp32") is None
    # a kernel that names no dtypes takes any
    assert KERNEL.algorithm(1024, 8, "fp16") == "one_shot"
    gpu = hwmodels.load_system("dgx-a100").devices["gpu0"]
    fp16 = Collective(name="ar", collective="all_reduce", payload_bytes=8192, group="tp", group_size=8, dtype="fp16")
    assert plan_collective(_all_reduce(8192), gpu, kernel=k).algorithm == "one_shot"
    assert plan_collective(fp16, gpu, kernel=k).algorithm == "ring"


def test_two_shot_cost_by_hand():
    gpu = hwmodels.load_system("hgx-h100").devices["gpu0"]
    link = gpu.links["nvlink"]
    plan = plan_collective(_all_reduce(1 * MIB), gpu, reducing_switch=True, kernel=KERNEL)
    assert plan.algorithm == "two_shot" and plan.link_efficiency == 0.48
    # two steps of 7/8 x 1 MiB each: 2 x 917,504 = 1,835,008 B over the NVLink
    assert plan.demands.work["link:nvlink"] == pytest.approx(1_835_008)
    # at 0.48 x 450 GB/s = 216 GB/s: 1,835,008 / 216e9 = 8.4954 us
    assert plan.demands.times()["link:nvlink"] == pytest.approx(1_835_008 / 216e9)
    assert link.bandwidth_bytes_s == 450e9 and link.latency_s == 1 * US
    # fixed: the launch (4 us), the NVLink's access latency (1 us), the kernel's 1 us (no NCCL
    # pipeline startup), then 2 hops of 1 us
    assert plan.overhead_s == pytest.approx(gpu.launch_overhead_s + 1 * US + 1 * US)
    assert plan.demands.fixed_s == pytest.approx(4 * US + 1 * US + 1 * US + 2 * US)


def test_one_shot_cost_by_hand_and_in_the_simulator():
    system = hwmodels.load_system("hgx-h100")
    gpu = system.devices["gpu0"]
    plan = plan_collective(_all_reduce(128 * 1024), gpu, reducing_switch=True, kernel=KERNEL)
    # one step: every rank reads the 128 KiB of each of its 7 peers, 7 x 131,072 = 917,504 B
    assert plan.algorithm == "one_shot" and [(s.bytes_per_rank, s.count) for s in plan.steps] == [(917_504, 1)]
    assert plan.demands.fixed_s == pytest.approx(4 * US + 1 * US + 1 * US + 1 * US)
    g = workloads.Graph("one", meta={"tp": 8, "tokens": 1})
    g.add(_all_reduce(128 * 1024))
    res = simulate(g, system, runtime=RuntimeProfile("k", all_reduce_kernel=KERNEL))
    assert res.collectives == {"all_reduce": {"one_shot": 1}}
    # routed over the NVSwitch: each GPU's uplink and downlink carry 917,504 B at 216 GB/s (4.248 us)
    # while its HBM moves 2 x 917,504 + 7/8 x 131,072 B; one route's latency, plus the fixed 6 us
    link_s = 917_504 / 216e9
    memory_s = plan.demands.times()["memory:hbm"]
    assert link_s > memory_s
    assert res.latency_s == pytest.approx(link_s + 4 * US + 1 * US + 1 * US + 1 * US, rel=1e-6)


def test_nccl_above_the_limit_without_nvlink_for_other_groups_and_without_a_runtime():
    gpu = hwmodels.load_system("hgx-h100").devices["gpu0"]
    # at the limit (exclusive) and above: NCCL's choice, in the switch or the ring
    for payload in (8 * MIB, 64 * MIB):
        assert plan_collective(_all_reduce(payload), gpu, reducing_switch=True, kernel=KERNEL).algorithm == "in_switch"
        assert plan_collective(_all_reduce(payload), gpu, reducing_switch=False, kernel=KERNEL).algorithm == "ring"
    # a group size the kernel does not list (4 here)
    assert plan_collective(_all_reduce(MIB, 4), gpu, reducing_switch=False, kernel=KERNEL).algorithm == "ring"
    # ranks joined by PCIe only (no NVLink): NCCL
    pcie_gpu = hwmodels.load_device("l40s")
    assert [link.kind for link in pcie_gpu.links.values()] == ["pcie"]
    assert plan_collective(_all_reduce(MIB, 2), pcie_gpu, kernel=KERNEL).algorithm == "ring"
    # without a kernel the plan is NCCL's, and the same as a kernel's fallback
    nccl = plan_collective(_all_reduce(64 * MIB), gpu, reducing_switch=True)
    assert nccl == plan_collective(_all_reduce(64 * MIB), gpu, reducing_switch=True, kernel=KERNEL)


def test_none_runs_nccl_and_an_engine_its_kernel_in_a_decode_step(capsys):
    args = ("simulate", "--hw", "hgx-h100", "--tp", "8", "--model", "llama-3.1-8b", "--phase", "decode",
            "--batch", "64", "--context", "512", "--top", "0", "--format", "json", "--no-timeline")
    code, out, _ = run(capsys, *args, "--runtime", "none")
    none = json.loads(out)
    # 64 x 4096 x 2 B = 512 KiB per all-reduce: NCCL's in-switch without a runtime
    assert code == 0 and set(none["collectives"]["all_reduce"]) == {"in_switch"}
    code, out, _ = run(capsys, *args, "--runtime", "vllm-v1")
    vllm = json.loads(out)
    assert code == 0 and set(vllm["collectives"]["all_reduce"]) == {"two_shot"}
    code, out, _ = run(capsys, *args[:-3], "--runtime", "vllm-v1")
    assert "all_reduce: two_shot x" in out


@pytest.mark.parametrize("block, path", [
    ("{name: k, latency: 5}", "all_reduce_kernel.latency"),
    ("{name: k, latency: '1 us', one_shot_below: {eight: '1 MiB'}}", "all_reduce_kernel.one_shot_below.eight"),
    ("{name: k, latency: '1 us', two_shot_below: {8: '1 us'}}", "all_reduce_kernel.two_shot_below[8]"),
    ("{name: k, latency: '1 us', link_efficiency: 1.5}", "all_reduce_kernel.link_efficiency"),
    ("{name: k, latncy: '1 us'}", "all_reduce_kernel.latncy"),
    ("{name: k}", "all_reduce_kernel"),
    ("{name: k, latency: '1 us', dtypes: [bf61]}", "all_reduce_kernel.dtypes[0]"),
    ("{name: k, latency: '1 us', dtypes: bf16}", "all_reduce_kernel.dtypes"),
])
def test_bad_kernel_fields_exit_2_with_their_path(capsys, tmp_path, block, path):
    rt = tmp_path / "rt.yaml"
    rt.write_text(f"name: bad\nall_reduce_kernel: {block}\n")
    with pytest.raises(InputError):
        load_runtime(str(rt))
    code, out, err = run(capsys, "simulate", "--hw", "hgx-h100", "--tp", "8", "--model", "llama-3.1-8b",
                         "--phase", "decode", "--batch", "8", "--runtime", str(rt))
    assert code == 2 and out == "" and f"{path}:" in err


def test_serving_steps_price_the_engines_kernel():
    from roofline.costs import shared_cost
    from simulator.serving.steptime import StepTimeModel

    kernel = load_runtime("vllm-v1").all_reduce_kernel
    nccl = StepTimeModel("llama-3.1-8b", "h100-sxm", tp=4)
    engine = StepTimeModel("llama-3.1-8b", "h100-sxm", runtime=RuntimeProfile("k", all_reduce_kernel=kernel), tp=4)
    # 64 tokens x 4096 x 2 B = 512 KiB per all-reduce: two-shot on 4 ranks (one-shot below 512 KiB)
    ops = nccl._split(nccl._probe(64, 1))
    reduces = [(op, n) for op, n in ops if op.kind == "collective" and op.collective == "all_reduce"]
    assert reduces and all(op.payload_bytes == 64 * 4096 * 2 for op, _ in reduces)
    gpu = nccl.device
    saved = sum(n * (shared_cost(op, gpu)[1] - plan_collective(op, gpu, kernel=kernel).demands.time_s)
                for op, n in reduces)
    assert plan_collective(reduces[0][0], gpu, kernel=kernel).algorithm == "two_shot"
    assert saved > 0
    assert nccl.dense(64)[0] - engine.dense(64)[0] == pytest.approx(saved, rel=1e-9)
