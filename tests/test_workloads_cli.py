"""`ridgeline workload list/show`: JSON on stdout, exit code 2 and one clear line for bad input."""

import json
from pathlib import Path

import pytest
from clitools import run

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "workloads" / "toy_decoder.yaml"



def test_list_json(capsys):
    code, out, _ = run(capsys, "workload", "list", "--format", "json")
    assert code == 0
    rows = {r["id"]: r for r in json.loads(out)}
    assert set(rows) == {"llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-3.1-8b", "llama-3.1-70b", "mistral-7b",
                         "mixtral-8x7b", "qwen2.5-7b", "qwen2.5-72b", "gpt3-175b", "mamba-2.8b", "deepseek-v2-lite"}
    assert rows["llama-2-7b"]["params"] == 6738415616
    assert rows["mixtral-8x7b"]["active_params"] < rows["mixtral-8x7b"]["params"]


def test_list_table(capsys):
    code, out, _ = run(capsys, "workload", "list")
    assert code == 0 and "deepseek-v2-lite" in out and "70.6 B" in out


def test_show_json_has_the_contract_keys(capsys):
    B, C = 4, 2000
    code, out, err = run(capsys, "workload", "show", "llama-3.1-8b", "--phase", "decode", "--batch", str(B),
                         "--context", str(C), "--kv-dtype", "fp8", "--format", "json")
    assert code == 0 and err == ""
    doc = json.loads(out)
    assert {"params", "flops", "bytes", "kv_cache_bytes", "ops", "by_kind"} <= set(doc)
    assert doc["kv_cache_bytes"] == B * (C + 1) * 2 * 32 * 8 * 128 * 1
    assert set(doc["bytes"]) == {"weight", "activation", "kv", "state"}
    assert doc["by_kind"]["attention"]["ops"] == 32


def test_show_table_for_tp_and_yaml(capsys):
    code, out, _ = run(capsys, "workload", "show", "llama-3.1-70b", "--tp", "8")
    assert code == 0 and "one tensor-parallel rank" in out and "collective" in out
    code, out, _ = run(capsys, "workload", "show", str(EXAMPLE))
    assert code == 0 and "toy-decoder" in out


def test_context_beyond_max_positions_warns_on_stderr(capsys):
    code, out, err = run(capsys, "workload", "show", "llama-2-7b", "--context", "8000", "--format", "json")
    assert code == 0
    json.loads(out)                                          # stdout stays one JSON document
    assert "warning:" in err and "4096" in err


@pytest.mark.parametrize("argv,fragment", [
    (["workload", "show", "lama-2-7b"], "did you mean 'llama-2-7b'"),
    (["workload", "show", "llama-2-70b", "--tp", "3"], "tp values that work"),
    (["workload", "show", "llama-2-7b", "--batch", "0"], "batch must be a positive integer"),
    (["workload", "show", "llama-2-7b", "--prompt-len", "-1"], "prompt_len"),
    (["workload", "show", "llama-2-7b", "--unknown-ops", "elementwise"], "do not apply"),
    (["workload", "show", str(EXAMPLE), "--tp", "2"], "do not apply"),
    (["workload", "show", "missing.yaml"], "file not found"),
    (["workload", "show", "llama-2-7b", "--group-size", "64"], "applies to int4/int8 weights"),
    (["workload", "show", "llama-2-7b", "--phase", "decode", "--acceptance", "0.6"], "give spec_tokens"),
    (["workload", "show", "llama-2-7b", "--phase", "prefill", "--prompt-len", "64", "--context", "9"],
     "context (9) differs from prompt_len (64)"),
])
def test_bad_input_exits_2_without_traceback(capsys, argv, fragment):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert fragment in err and "Traceback" not in err and out == ""


def test_show_a_users_config_json(capsys):
    config = EXAMPLE.parent / "my-llama-config.json"
    code, out, _ = run(capsys, "workload", "show", str(config), "--format", "json")
    h, layers, heads, kv, inter, vocab = 2048, 22, 32, 4, 5632, 32000
    by_hand = layers * (2 * h * h + 2 * h * kv * (h // heads) + 3 * h * inter + 2 * h) + 2 * vocab * h + h
    assert code == 0 and json.loads(out)["params"] == by_hand


def test_show_int4_weight_bytes_by_hand(capsys):
    code, out, _ = run(capsys, "workload", "show", "llama-2-7b", "--weight-dtype", "int4", "--group-size", "64",
                       "--format", "json")
    assert code == 0
    quantized = 32 * (4 * 4096 * 4096 + 3 * 4096 * 11008)      # q/k/v/o and gate/up/down of 32 layers
    per_weight = 0.5 + (2 + 0.5) / 64                          # int4 + an fp16 scale and int4 zero per 64
    unquantized = 32000 * 4096 * 2 + (2 * 32 + 1) * 4096 * 2 + 4096 * 2   # LM head, norms, one embedding row
    assert json.loads(out)["bytes"]["weight"] == quantized * per_weight + unquantized


@pytest.mark.parametrize("text,where", [
    ("ops:\n  - {name: a, kind: elementwise, numel: [1\n", ":3: "),                    # YAML syntax
    ("ops:\n  - {name: a, kind: elementwize, numel: 1}\n", ":2: ops[0].kind: "),      # unknown kind
    ("ops:\n  - name: a\n    kind: matmul\n    m: 4\n    n: 4\n    k: -4\n", ":6: ops[0].k: "),
])
def test_malformed_workload_yaml_is_file_line_field_exit_2(capsys, tmp_path, text, where):
    path = tmp_path / "w.yaml"
    path.write_text(text)
    code, out, err = run(capsys, "workload", "show", str(path), "--format", "json")
    assert code == 2 and out == "" and "Traceback" not in err
    assert f"{path}{where}" in err


def test_config_json_missing_keys_through_the_cli(capsys, tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "llama", "num_hidden_layers": 2, "num_attention_heads": 8,
                                "intermediate_size": 64}))
    code, out, err = run(capsys, "workload", "show", str(path), "--format", "json")
    assert code == 2 and out == "" and "Traceback" not in err
    assert str(path) in err and "hidden_size" in err and "vocab_size" in err


def test_show_json_for_config_yaml_and_tp(capsys):
    """The contract keys for a config.json and a workload YAML; TP8 shows one rank's share."""
    config = EXAMPLE.parent / "my-llama-config.json"
    for ref in (str(config), str(EXAMPLE)):
        code, out, _ = run(capsys, "workload", "show", ref, "--format", "json")
        assert code == 0
        assert {"params", "flops", "bytes", "kv_cache_bytes", "ops", "by_kind"} <= set(json.loads(out))
    # the toy decoder YAML: 4 layers x 8 sequences x 1024 cached tokens x (K + V) x 8 heads x 128, bf16
    assert json.loads(out)["kv_cache_bytes"] == 4 * 8 * 1024 * 2 * 8 * 128 * 2
    code, out, _ = run(capsys, "workload", "show", "llama-3.1-70b", "--batch", "8", "--context", "1023",
                       "--tp", "8", "--format", "json")
    doc = json.loads(out)
    assert doc["scope"] == "one tensor-parallel rank of each pipeline stage"
    assert doc["kv_cache_bytes"] == 8 * 1024 * 2 * 80 * (8 // 8) * 128 * 2     # one KV head per rank
