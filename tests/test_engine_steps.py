"""What a serving engine's CPU work costs a step: the scheduling pass a multi-step run shares, the
output processing every step pays, and the asynchronous output processor that hides it behind
the GPU (vLLM 0.6; see hwmodels/runtime.py and hwmodels/runtimes/vllm-v0.6.yaml)."""

import dataclasses

import pytest

from hwmodels.errors import InputError
from hwmodels.runtime import RuntimeProfile, load_runtime
from simulator import simulate
from simulator.serving import serve
from workloads import Graph
from workloads.operators import Elementwise

US = 1e-6
MS = 1e-3


def engine(**fields) -> RuntimeProfile:
    """vLLM 0.6's shape: a 1.5 ms pass + 25 us a sequence, 150 us of output work a sequence."""
    base = dict(step_cpu_s=1.5 * MS, per_sequence_cpu_s=25 * US, output_cpu_per_sequence_s=150 * US,
                scheduler_steps=10)
    return RuntimeProfile("e", **{**base, **fields})


def test_a_ten_step_run_shares_its_pass_and_pays_output_every_step():
    serial = engine()
    # the pass for 256 sequences: 1.5 ms + 256 x 25 us = 7.9 ms, a tenth of it per decode step
    assert serial.step_cpu_total_s(256) == pytest.approx(0.79 * MS)
    # the output work is not shared: 256 x 150 us = 38.4 ms in every one of the ten steps
    assert serial.output_cpu_s(256) == pytest.approx(38.4 * MS)
    # serial: 0.79 ms + 30 ms of GPU + 38.4 ms = 69.19 ms
    assert serial.step_time(30 * MS, 256) == pytest.approx(69.19 * MS)
    # a prompt step is a one-step run: the whole pass for 4 sequences, 1.5 + 0.1 = 1.6 ms,
    # then 50 ms of GPU and 4 x 150 us = 0.6 ms of output work: 52.2 ms
    assert serial.step_time(50 * MS, 4, prefill=True) == pytest.approx(52.2 * MS)


def test_asynchronous_output_processing_hides_behind_the_gpu_only_while_it_is_shorter():
    overlapped = engine(async_output=True)
    # the pass precedes the step, the output work (38.4 ms) runs beside 30 ms of GPU work:
    # 0.79 + max(30, 38.4) = 39.19 ms; beside 45 ms of GPU work: 0.79 + 45 = 45.79 ms
    assert overlapped.step_time(30 * MS, 256) == pytest.approx(39.19 * MS)
    assert overlapped.step_time(45 * MS, 256) == pytest.approx(45.79 * MS)
    # a batch of 10: 1.5 ms of output work beside 10 ms of GPU; the pass's tenth is
    # (1.5 ms + 10 x 25 us) / 10 = 0.175 ms: 10.175 ms
    assert overlapped.step_time(10 * MS, 10) == pytest.approx(10.175 * MS)
    # with async scheduling the pass too runs beside the GPU: max(45, 0.79 + 38.4) = 45 ms
    assert engine(async_scheduling=True).step_time(45 * MS, 256) == pytest.approx(45 * MS)


def one_request(profile: RuntimeProfile):
    return serve("llama-3.1-8b", "a100-sxm-80gb", num_requests=1, input_len="128", output_len="21",
                 scheduler="orca", profile=profile, prefix_caching=False)


def test_a_served_request_pays_the_pass_once_a_run_and_the_output_work_every_step():
    """One request of 21 tokens: a prompt step (its own run, the first token) and 20 decode steps
    in two runs of 10. Only the CPU figures differ between the runs compared, so the difference
    in busy time is theirs alone."""
    bare = RuntimeProfile("b", scheduler_steps=10)
    busy = one_request(bare).steps["duration_s"].sum()
    passes = one_request(dataclasses.replace(bare, step_cpu_s=1 * MS)).steps["duration_s"].sum()
    # 1 ms for the prompt step's pass + 20 decode steps x 1 ms / 10 = 3 ms
    assert passes - busy == pytest.approx(3 * MS, rel=1e-9)
    output = one_request(dataclasses.replace(bare, output_cpu_per_sequence_s=1 * MS)).steps["duration_s"].sum()
    # 1 ms in each of the 21 steps, one sampled sequence each: 21 ms
    assert output - busy == pytest.approx(21 * MS, rel=1e-9)
    # asynchronous: 1 ms of output work hides behind every step's GPU work (several ms for an 8B
    # model on one A100), so nothing is added
    hidden = one_request(dataclasses.replace(bare, output_cpu_per_sequence_s=1 * MS, async_output=True))
    assert hidden.steps["duration_s"].sum() == pytest.approx(busy, rel=1e-9)


def step_graph(batch: int = 4) -> Graph:
    g = Graph("step", meta={"phase": "decode", "batch": batch})
    g.add(Elementwise(name="k", numel=2**20))
    return g


@pytest.mark.parametrize("sync_s", [0.0, 50 * US])
def test_simulate_runtime_places_the_output_work_after_or_beside_the_kernels(sync_s):
    g = step_graph(batch=4)
    base = RuntimeProfile("s", step_cpu_s=1 * MS, sync_s=sync_s)
    bare = simulate(g, "h100-sxm", runtime=base).latency_s
    serial = simulate(g, "h100-sxm", runtime=dataclasses.replace(base, output_cpu_per_sequence_s=100 * US))
    # after the kernels (and the sync): 4 x 100 us more
    assert serial.latency_s == pytest.approx(bare + 400 * US, rel=1e-9)
    hidden = simulate(g, "h100-sxm", runtime=dataclasses.replace(base, output_cpu_per_sequence_s=1 * US,
                                                                  async_output=True))
    # beside them: 4 us of output work after the 1 ms pass ends before the kernel does
    assert hidden.latency_s == pytest.approx(bare, rel=1e-9)
    long = simulate(g, "h100-sxm", runtime=dataclasses.replace(base, output_cpu_per_sequence_s=1.0,
                                                                async_output=True))
    # 4 x 1 s of output work beside the kernels outlasts them: the 1 ms pass + 4 s, then the sync
    assert long.latency_s == pytest.approx(1 * MS + 4.0 + sync_s, rel=1e-9)


def test_simulate_overlaps_vllm_06_output_work_with_the_kernels():
    """A vLLM 0.6 decode step of 256 sequences under `simulate --runtime vllm-v0.6`: the pass,
    then the longer of the kernels and the output work, then the sync."""
    from workloads import build_llm

    v06 = load_runtime("vllm-v0.6")
    g = build_llm("llama-3.1-8b", "decode", batch=256, prompt_len=512, context=512)
    kernels = simulate(g, "a100-sxm-80gb", runtime=dataclasses.replace(v06, output_cpu_per_sequence_s=0.0,
                                                                        step_cpu_s=0.0, per_sequence_cpu_s=0.0))
    full = simulate(g, "a100-sxm-80gb", runtime=v06).latency_s
    gpu = kernels.latency_s      # kernels + the 30 us sync
    # pass: 1.5 ms + 256 x 25 us = 7.9 ms; output 256 x 141 us = 36.096 ms beside the kernels
    assert full == pytest.approx(7.9 * MS + max(gpu - 30 * US, 36.096 * MS) + 30 * US, rel=1e-9)


def test_vllm_06_profile_says_what_it_amortizes_and_what_not():
    v06 = load_runtime("vllm-v0.6")
    assert v06.async_output and not v06.async_scheduling
    assert v06.output_cpu_per_sequence_s > 0
    assert "output_cpu_per_sequence" in v06.fitted and "serve-a100-llama31-8b-vllm-tput" in v06.fitted
    sglang = load_runtime("sglang")
    # SGLang 0.3 processes and streams every step's outputs in its scheduler, not asynchronously
    assert not sglang.async_output and sglang.scheduler_steps == 1
    assert v06.to_dict()["async_output"] is True


@pytest.mark.parametrize("text, match", [("async_output: 1\n", "async_output: expected true or false"),
                                         ("output_cpu_per_sequence: 100\n",
                                          "output_cpu_per_sequence: expected a time with its unit")])
def test_bad_output_fields_are_input_errors(tmp_path, text, match):
    path = tmp_path / "engine.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=match):
        load_runtime(path)


def test_the_fitted_constant_is_what_its_fit_row_gives():
    from calibration import engine_fit

    rows = engine_fit.fit_rows()
    assert [r["id"] for r in rows] == ["serve-a100-llama31-8b-vllm-tput"] and rows[0]["role"] == "fit"
    value = round(load_runtime("vllm-v0.6").output_cpu_per_sequence_s / US)
    # the bisection's answer is the whole microsecond with the smallest error: no neighbour is better
    here = engine_fit.loss(rows, value)
    assert here <= engine_fit.loss(rows, value - 1) and here <= engine_fit.loss(rows, value + 1), \
        "rerun `python -m calibration.engine_fit` and copy its figure into hwmodels/runtimes/vllm-v0.6.yaml"


@pytest.mark.parametrize("fast_forward", [True, False])
def test_a_multi_step_run_streams_its_tokens_at_its_end(fast_forward):
    """vLLM 0.6 builds a request's output only at the end of a multi-step run (or when it
    finishes), so a streaming client sees one chunk per run: one inter-token gap per chunk."""
    res = serve("llama-3.1-8b", "a100-sxm-80gb", num_requests=1, input_len="128", output_len="21",
                scheduler="orca", profile=RuntimeProfile("b", scheduler_steps=10), prefix_caching=False,
                fast_forward=fast_forward)
    steps = res.steps["duration_s"].to_numpy()
    assert len(steps) == 21          # the prompt step, then two runs of 10 decode steps
    # the first token at the prompt step's end; then chunks at the ends of steps 11 and 21, so two
    # gaps of ten decode steps each, their mean the two runs' sum / 2
    itl = res.metrics["itl_s"]
    assert itl["mean"] == pytest.approx(steps[1:].sum() / 2, rel=1e-9)
    low, high = sorted((steps[1:11].sum(), steps[11:21].sum()))
    assert itl["p99"] == pytest.approx(low + 0.99 * (high - low), rel=1e-9)   # numpy's linear p99 of two
    # TPOT is the time from the first to the last token over the 20 after the first: unchanged
    assert res.metrics["tpot_s"]["median"] == pytest.approx(steps[1:].sum() / 20, rel=1e-9)


def test_a_request_finishing_inside_a_run_streams_its_last_tokens_at_once():
    """A run of 10 decode steps with a request of 6 tokens: it leaves after its 5th decode step,
    and its 5 held tokens go out then, as one chunk."""
    res = serve("llama-3.1-8b", "a100-sxm-80gb", num_requests=1, input_len="128", output_len="6",
                scheduler="orca", profile=RuntimeProfile("b", scheduler_steps=10), prefix_caching=False)
    steps = res.steps["duration_s"].to_numpy()
    assert len(steps) == 6
    assert res.metrics["itl_s"]["mean"] == pytest.approx(steps[1:].sum(), rel=1e-9)
