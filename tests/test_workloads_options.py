"""StepOptions: the LLM step knobs as one dataclass, and everything generated from it."""

import argparse
import dataclasses

import pytest

from hwmodels.errors import InputError
from reports.cli import main
from reports.dataclass_args import add_dataclass_arguments, dataclass_from_args
from workloads import StepOptions, build_llm
from workloads.options import knob_applies


def test_axes_give_type_range_and_choices_for_a_sweep():
    axes = StepOptions.axes()
    assert set(axes) == {f.name for f in dataclasses.fields(StepOptions)}
    assert (axes["batch"].type, axes["batch"].min) == (int, 1)
    assert (axes["context"].type, axes["context"].min) == (int, 0)
    assert axes["phase"].choices == ("prefill", "decode", "chunked")
    assert axes["dtype"].type == "dtype" and axes["dtype"].check("bfloat16") == "bf16"
    assert (axes["kv_fraction"].min, axes["kv_fraction"].max, axes["kv_fraction"].min_open) == (0, 1, True)
    for name, bad in (("tp", 0), ("batch", 1.5), ("kv_fraction", 0.0), ("dtype", "fp7"), ("phase", "x")):
        with pytest.raises(InputError) as info:
            axes[name].check(bad)
        assert info.value.problems[0].path == name


def test_options_object_and_keywords_build_the_same_step():
    opts = StepOptions(phase="decode", batch=4, context=300, tp=2, kv_dtype="fp8")
    a = build_llm("llama-3.1-8b", opts)
    b = build_llm("llama-3.1-8b", "decode", batch=4, context=300, tp=2, kv_dtype="fp8")
    c = build_llm("llama-3.1-8b", opts, batch=8)      # keywords override the options' fields
    assert a.meta == b.meta and a.flops() == b.flops()
    assert c.meta["batch"] == 8 and opts.batch == 4   # frozen: the original is unchanged
    chunked = StepOptions(phase="chunked", prompt_len=128)
    assert chunked.replace(chunk_start=64).effective("chunk_size") == 128 - 64   # checked as a whole


def test_unknown_and_bad_options_name_the_field():
    with pytest.raises(InputError) as info:
        build_llm("llama-2-7b", bach=4)
    assert info.value.problems[0].suggestion == "batch"
    with pytest.raises(InputError) as info:
        StepOptions(phase="prefill", chunk_start=3)
    assert info.value.problems[0].path == "chunk_start"
    with pytest.raises(dataclasses.FrozenInstanceError):
        StepOptions().batch = 3


def test_cli_flags_are_generated_from_the_fields():
    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, StepOptions)
    args = parser.parse_args(["--phase", "chunked", "--prompt-len", "128", "--chunk-start", "64",
                              "--unfused-attention", "--kv-fraction", "0.5"])
    assert dataclass_from_args(args, StepOptions) == StepOptions(phase="chunked", prompt_len=128, chunk_start=64,
                                                                 fused_attention=False, kv_fraction=0.5)
    assert dataclass_from_args(parser.parse_args([]), StepOptions) == StepOptions()


@pytest.mark.parametrize("command", [["workload", "show", "x"], ["simulate", "--hw", "x", "--model", "x"],
                                     ["roofline", "--hw", "x", "--model", "x"]])
def test_every_knob_is_a_flag_of_every_workload_command(capsys, command):
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    text = capsys.readouterr().out
    for f in dataclasses.fields(StepOptions):
        assert (f.metadata["flag"] or "--" + f.name.replace("_", "-")) in text, f.name


def test_chunk_start_and_context_zero_through_the_cli(capsys):
    import json

    code = main(["workload", "show", "llama-2-7b", "--phase", "chunked", "--prompt-len", "1024", "--chunk-start",
                 "512", "--chunk-size", "256", "--batch", "2", "--context", "0", "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["meta"]["tokens_processed"] == 256 + 2 and doc["meta"]["context"] == 0
    code = main(["workload", "show", "llama-2-7b", "--phase", "decode", "--chunk-start", "8"])
    assert code == 2 and "applies to phase 'chunked'" in capsys.readouterr().err


def test_workload_show_lists_only_the_knobs_of_the_phase(capsys):
    main(["workload", "show", "llama-2-7b", "--phase", "decode", "--context", "100"])
    decode = capsys.readouterr().out.splitlines()
    assert any(line.split()[:2] == ["context", "100"] for line in decode)
    assert not any(line.startswith("prompt_len") for line in decode)
    main(["workload", "show", "llama-2-7b", "--phase", "prefill", "--prompt-len", "64"])
    prefill = capsys.readouterr().out.splitlines()
    assert any(line.split()[:2] == ["prompt_len", "64"] for line in prefill)
    assert not any(line.startswith("context") for line in prefill)
    assert knob_applies("prompt_len", "decode", best_of=4)      # the prefix best_of samples share


def test_simulate_says_what_a_prefills_numbers_are(capsys):
    import json

    code = main(["simulate", "--hw", "h100-sxm", "--model", "llama-3.1-8b", "--phase", "prefill", "--batch", "2",
                 "--prompt-len", "128", "--format", "json", "--no-timeline"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["figures"]["headline"] == "processed_tok_s"
    assert "time to first token" in doc["figures"]["latency_s"]
    assert "prompt tokens" in doc["figures"]["processed_tok_s"]
