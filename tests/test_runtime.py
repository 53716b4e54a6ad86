"""Runtime profiles: the engine around the kernels as data, applied as operators the cost model prices."""

import json

import pytest
from clitools import run

import hwmodels
from hwmodels.errors import InputError
from hwmodels.runtime import RUNTIMES, RuntimeProfile, load_runtime
from simulator import simulate
from simulator.public import runtime_of
from workloads import Graph, build_llm
from workloads.operators import Elementwise, MatMul
from workloads.runtime import with_runtime

US = 1e-6
H100_LAUNCH_S = 4 * US   # h100-sxm.yaml launch_overhead


def chain(batch: int = 4, phase: str = "decode", n: int = 2, numel: int = 2**20) -> Graph:
    """``n`` elementwise kernels one after the other, as a step of ``batch`` sequences."""
    g = Graph("chain", meta={"phase": phase, "batch": batch})
    prev = []
    for i in range(n):
        op = Elementwise(name=f"k{i}", numel=numel)
        g.add(op, prev)
        prev = [op.name]
    return g


def test_bundled_profiles_load_and_none_adds_nothing():
    assert set(RUNTIMES.names()) == {"none", "vllm-v0.6", "vllm-v1", "trtllm", "sglang", "llama.cpp",
                                     "llama.cpp-b1680", "gpt-fast"}
    for name in RUNTIMES.names():
        assert load_runtime(name).name == name
    assert load_runtime("none").is_none and not load_runtime("vllm-v0.6").is_none
    v06 = load_runtime("vllm-v0.6")
    # vLLM V0 model_runner: [1, 2, 4] + [8 * i for i in range(1, 33)]: the largest is 8 x 32
    assert v06.cuda_graph_max_tokens == 8 * 32
    assert v06.graphed("decode", 256) and not v06.graphed("decode", 257) and not v06.graphed("prefill", 1)
    assert load_runtime("vllm-v1").cuda_graph_max_tokens == 512
    g = chain()
    assert with_runtime(g, "none") is g


def test_serial_step_cpu_graph_launch_and_sync_add_up():
    g = chain(batch=4)
    bare = simulate(g, "h100-sxm").latency_s
    prof = RuntimeProfile("t", step_cpu_s=1e-3, per_sequence_cpu_s=100 * US, sync_s=50 * US,
                          graph_launch_s=1 * US, cuda_graph_max_tokens=8)
    res = simulate(g, "h100-sxm", runtime=prof)
    # step CPU 1 ms + 4 x 100 us before the kernels, each kernel pays the 1 us gap and its own
    # 1.81 us minimum in the graph instead of the 4 us eager launch, then 50 us of sync:
    # bare + 1.4 ms - 2 x (4 - 1 - 1.81) us + 50 us
    assert res.latency_s == pytest.approx(bare + 1.4e-3 - 2 * (H100_LAUNCH_S - 1 * US - 1.81 * US) + 50 * US,
                                          rel=1e-9)
    assert res.runtime == "t" and res.meta["cuda_graph"] is True
    # a millisecond of host work is too short for the clocks to drop: the whole step counts as busy
    assert res.busy_s["gpu0"] == pytest.approx(res.latency_s, rel=1e-9)


def test_async_scheduling_overlaps_the_step_cpu_with_the_kernels():
    g = chain(batch=4, numel=2**26)   # two 2^26-element kernels: longer than 0.1 ms of CPU work
    bare = simulate(g, "h100-sxm").latency_s
    assert bare > 0.1e-3
    prof = RuntimeProfile("a", step_cpu_s=0.1e-3, async_scheduling=True)
    assert simulate(g, "h100-sxm", runtime=prof).latency_s == pytest.approx(bare, rel=1e-9)
    longer = RuntimeProfile("a", step_cpu_s=10 * bare, async_scheduling=True)
    assert simulate(g, "h100-sxm", runtime=longer).latency_s == pytest.approx(10 * bare, rel=1e-9)


def test_eager_step_is_bounded_by_the_host_dispatching_every_kernel():
    g = chain(batch=16, n=3, numel=1024)   # tiny kernels: 4 us of launch each dominates
    prof = RuntimeProfile("e", dispatch_cpu_s=20 * US, graph_launch_s=1 * US, cuda_graph_max_tokens=8)
    res = simulate(g, "h100-sxm", runtime=prof)
    # batch 16 > 8: no graph; the host issues 3 kernels at 20 us = 60 us, longer than the GPU's
    assert res.meta["cuda_graph"] is False
    assert res.latency_s == pytest.approx(3 * 20 * US, rel=1e-9)


def test_unfused_fp8_quantize_adds_one_kernel_per_fp8_gemm():
    g = build_llm("llama-3.1-8b", "decode", batch=8, context=512, dtype="fp8", weight_dtype="fp8", kv_dtype="bf16")
    out = with_runtime(g, RuntimeProfile("q", unfused=("fp8_quantize",)))
    quant = [op for op in out.ops if op.name.endswith(".quantize")]
    # 7 GEMMs a layer (q, k, v, o, gate, up, down) x 32 layers + the LM head
    assert len(quant) == 7 * 32 + 1
    q = quant[0]
    # reads the 16-bit activation and writes it in fp8: 8 x 4096 elements x (2 + 1) bytes
    assert q.inputs[0].dtype == "bf16" and q.outputs[0].dtype == "fp8"
    assert q.inputs[0].bytes + q.outputs[0].bytes == 8 * 4096 * 3
    assert simulate(out, "h100-sxm").latency_s > simulate(g, "h100-sxm").latency_s


def logits_step(tp: int = 1) -> Graph:
    """A decode step of 2 sequences that is only its LM head: 2 rows x 1000 of the vocabulary a rank."""
    g = Graph("head", meta={"phase": "decode", "batch": 2, "tp": tp})
    g.add(MatMul(name="lm_head", m=2, n=1000, k=64, dtype="fp16"))
    return g


def test_sampling_kernels_follow_the_logits_eagerly_before_the_sync():
    prof = RuntimeProfile("t", sampling_kernels=3, sampling_logit_passes=1, launch_s=1 * US,
                          graph_launch_s=0.5 * US, cuda_graph_max_tokens=8, sync_s=20 * US)
    out = with_runtime(logits_step(), prof)
    assert out.meta["cuda_graph"] is True
    first, second, third = (out.op(f"runtime.sample.{i}") for i in range(3))
    # the pass over the logits touches 2 rows x 1000 in the LM head's dtype; the others one 4-byte
    # value a sequence
    assert (first.numel, second.numel, third.numel) == (2 * 1000, 2, 2)
    assert (first.dtype, second.dtype) == ("fp16", "fp32")
    assert out.deps("runtime.sample.0") == ["lm_head"] and out.deps("runtime.sample.2") == ["runtime.sample.1"]
    assert out.deps("runtime.sync") == ["runtime.sample.2"]
    # outside the CUDA graph: the eager launch, not the graph's
    assert {first.launch_s, second.launch_s, third.launch_s} == {1 * US}
    # under TP the decoder reads the gathered logits: 2 rows x 1000 x 4 ranks
    assert with_runtime(logits_step(tp=4), prof).op("runtime.sample.0").numel == 2 * 1000 * 4
    # a graph without an LM head has nothing to sample
    assert not any(op.name.startswith("runtime.sample") for op in with_runtime(chain(), prof).ops)


def test_sampling_kernels_add_a_launch_and_an_access_latency_each():
    base = RuntimeProfile("t", launch_s=1 * US)
    with_sampling = RuntimeProfile("t", launch_s=1 * US, sampling_kernels=3, sampling_logit_passes=1)
    bare = simulate(logits_step(), "h100-sxm", runtime=base).latency_s
    res = simulate(logits_step(), "h100-sxm", runtime=with_sampling).latency_s
    # 3 kernels x (1 us launch + 450 ns HBM latency, h100-sxm.yaml); their bytes (2 x 4 kB of
    # logits and 8-byte values) take nanoseconds at 3.35 TB/s
    assert res - bare == pytest.approx(3 * (1 * US + 450e-9), rel=1e-2)


def test_trtllm_samples_with_six_kernels_three_over_the_logits():
    # gptSessionBenchmark's decoder at top-k 1: penalty, end mask, top-k stage 1 over the logits;
    # top-k stage 2, length criterion, next-step ids over one value a sequence
    trt = load_runtime("trtllm")
    assert (trt.sampling_kernels, trt.sampling_logit_passes) == (6, 3)
    out = with_runtime(build_llm("llama-2-7b", "prefill", batch=1, prompt_len=128, dtype="fp16"), trt)
    sample = [op for op in out.ops if op.name.startswith("runtime.sample.")]
    # llama-2-7b's vocabulary is 32000; the prefill's LM head runs on the last token only
    assert [op.numel for op in sample] == [32000] * 3 + [1] * 3


def test_framework_column_names_the_profile():
    assert runtime_of({"framework": "TensorRT-LLM v0.9.0"}) == "trtllm"
    assert runtime_of({"framework": "vLLM 0.6.0 (--num-scheduler-steps 10)"}) == "vllm-v0.6"
    assert runtime_of({"framework": "vLLM (GPU energy via Zeus)"}) == "vllm-v0.6"
    assert runtime_of({"framework": "vLLM 0.19"}) == "vllm-v1"
    assert runtime_of({"framework": "SGLang 0.3.0"}) == "sglang"
    assert runtime_of({"framework": "llama.cpp llama-bench"}) == "llama.cpp"
    assert runtime_of({"framework": "llama.cpp llama-bench b2824 (4426e298), CUDA 12.1"}) == "llama.cpp"
    assert runtime_of({"framework": "llama.cpp ./main b1680 (afefa31), CUDA 12.1"}) == "llama.cpp-b1680"
    assert runtime_of({"framework": "PyTorch eager"}) == "none"


@pytest.mark.parametrize("text, match", [
    ("step_cpu: 3\n", r"rt.yaml:1: step_cpu: expected a time with its unit"),
    ("sync: '2 GB'\n", r"rt.yaml:1: sync: "),
    ("step_cpus: '1 ms'\n", r"unknown field 'step_cpus'.*did you mean 'step_cpu'"),
    ("unfused: [swiglu2]\n", r"rt.yaml:1: unfused\[0\]: unknown unfused kernel 'swiglu2'"),
    ("cuda_graph_max_tokens: -8\n", r"cuda_graph_max_tokens: expected a whole number of tokens >= 0"),
    ("async_scheduling: 1\n", r"async_scheduling: expected true or false"),
    ("gemm_accumulate: fp8\n", r"gemm_accumulate: expected one of: fp32, fp16"),
    ("ubatch_tokens: 0.5\n", r"ubatch_tokens: expected a whole number of tokens >= 0"),
    ("matvec_memory_fraction: {hbm: 1.5}\n", r"matvec_memory_fraction\.hbm: expected a fraction in \(0, 1\]"),
    ("matvec_memory_fraction: {hbn: 0.5}\n", r"unknown memory kind 'hbn'.*did you mean 'hbm'"),
    ("matvec_memory_fraction: 0.5\n", r"expected a mapping of memory kind to a fraction"),
    ("kernel_memory_fraction: {gddr: 0}\n", r"kernel_memory_fraction\.gddr: expected a fraction in \(0, 1\]"),
    ("activation_dtype: fp33\n", r"activation_dtype: unknown dtype 'fp33'.*did you mean 'fp32'"),
    ("sampling_kernels: -1\n", r"rt.yaml:1: sampling_kernels: expected a whole number of kernels >= 0"),
    ("attention_kernel: 2\n", r"rt.yaml:1: attention_kernel: expected the name of an attention kernel family"),
    ("sampling_kernels: 2\nsampling_logit_passes: 3\n",
     r"rt.yaml:2: sampling_logit_passes: 3 passes over the logits but only 2 sampling_kernels"),
])
def test_bad_profile_files_name_file_line_and_field(tmp_path, text, match):
    path = tmp_path / "rt.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        load_runtime(str(path))
    assert err.match(match) or pytest.fail(str(err.value))


def test_cli_runtime_in_table_and_json_and_bad_name_exits_2(capsys):
    args = ("simulate", "--hw", "h100-sxm", "--model", "llama-3.1-8b", "--phase", "decode", "--batch", "8",
            "--context", "512", "--top", "0")
    code, out, _ = run(capsys, *args, "--runtime", "vllm-v0.6")
    assert code == 0 and "vllm-v0.6 (CUDA graph)" in out
    code, out, _ = run(capsys, *args, "--runtime", "trtllm", "--format", "json", "--no-timeline")
    assert code == 0 and json.loads(out)["runtime"] == "trtllm"
    code, out, err = run(capsys, *args, "--runtime", "vllm-v2")
    assert code == 2 and out == "" and "unknown runtime profile 'vllm-v2'" in err


def test_a_device_is_unchanged_by_a_runtime():
    dev = hwmodels.load_device("h100-sxm")
    simulate(chain(), dev, runtime="vllm-v0.6")
    assert dev.launch_overhead_s == H100_LAUNCH_S


def test_serving_asks_the_same_profile_for_a_step_time():
    from simulator.serving.profile import load_profile

    assert load_profile("vllm-v1") is not None and load_profile("vllm-v1") == load_runtime("vllm-v1")
    prof = RuntimeProfile("s", step_cpu_s=1e-3, per_sequence_cpu_s=10 * US)
    # serial: 18 ms of GPU + 1 ms + 100 x 10 us = 20 ms
    assert prof.step_time(18e-3, 100) == pytest.approx(20e-3)
    overlapped = RuntimeProfile("a", step_cpu_s=1e-3, per_sequence_cpu_s=10 * US, async_scheduling=True)
    assert overlapped.step_time(1.5e-3, 100) == pytest.approx(2e-3)   # CPU 2 ms > GPU 1.5 ms


def test_a_kernel_in_a_replayed_graph_pays_the_gap_and_its_own_minimum_time():
    prof = RuntimeProfile("g", graph_launch_s=1 * US, cuda_graph_max_tokens=8)
    # 1 us gap + the fitted 1.81 us minimum (hwmodels.defaults.GRAPH_KERNEL_FIXED_S)
    assert prof.graph_kernel_s == pytest.approx(2.81 * US)
    assert RuntimeProfile("n", cuda_graph_max_tokens=8).graph_kernel_s is None   # device launch stays
    out = with_runtime(chain(batch=4), prof)
    assert [op.launch_s for op in out.ops] == pytest.approx([2.81 * US] * 2)
    # eager (batch 16 > 8): the profile's eager launch, not the graph's
    eager = with_runtime(chain(batch=16), RuntimeProfile("g", launch_s=3 * US, graph_launch_s=1 * US,
                                                         cuda_graph_max_tokens=8))
    assert [op.launch_s for op in eager.ops] == pytest.approx([3 * US] * 2)


def test_gpt_fast_rows_run_under_the_gpt_fast_profile():
    prof = load_runtime("gpt-fast")
    # the whole decode step one CUDA graph, the prefill eager; no scheduler, no sync a step
    assert prof.graphed("decode", 1) and not prof.graphed("prefill", 1)
    assert prof.async_scheduling and prof.sync_s == 0
    # ENABLE_INTRA_NODE_COMM=1 in the README's tensor-parallel command: PyTorch's own kernel
    assert prof.all_reduce_kernel.name == "pytorch-intra-node-comm"
    row = {"framework": "gpt-fast generate.py --compile (torch.compile mode=reduce-overhead: decode as CUDA graphs)"}
    assert runtime_of(row) == "gpt-fast"


def test_a_profile_names_the_attention_kernel_of_fused_attention_only():
    from calibration.public import stated_attention_kernel
    from workloads.operators import Attention

    step = build_llm("llama-2-7b", "prefill", batch=2, prompt_len=256, dtype="fp16")
    kernels = {op.kernel for op in with_runtime(step, "vllm-v0.6").ops if isinstance(op, Attention)}
    assert kernels == {"fa2"}                 # vLLM 0.5/0.6: vllm-flash-attn, FlashAttention 2.x
    assert {op.kernel for op in with_runtime(step, "vllm-v1").ops if isinstance(op, Attention)} == {None}
    # llama.cpp's attention is unfused here: no fused kernel to name
    unfused = [op for op in with_runtime(step, RuntimeProfile("u", unfused=("attention_scores",),
                                                              attention_kernel="fa2")).ops
               if isinstance(op, Attention)]
    assert unfused and all(op.kernel is None and not op.fused for op in unfused)
    # a public kernel row runs the family its framework names, not the device's
    assert stated_attention_kernel({"framework": "FlashAttention-2 paged KV decode (nvbench)"}) == "fa2"
    assert stated_attention_kernel({"framework": "FlashAttention-3 forward via tritonbench"}) == "fa3"
    assert stated_attention_kernel({"framework": "torch 2.6"}) is None
