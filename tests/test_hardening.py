"""Every class of bad input the outside fuzzing run found: a clean error naming file, line and field,
a bounded size named with the variable that raises it, or a warning for a legal but implausible value."""

import json
import math
import re
import warnings
from pathlib import Path

import pytest
from clitools import run
from fuzz.harness import run_cli

import hwmodels
from hwmodels import limits
from hwmodels.errors import InputError, InputWarning
from hwmodels.units import COMPUTABLE, PLAUSIBLE, parse_quantity
from hwmodels.yamlio import loads
from reports.output import check_finite, print_json
from workloads import load_config, load_workload
from workloads.configs import parse_config, read_json

DOCS = Path(__file__).resolve().parents[1] / "docs" / "limits.md"


def problem(exc_info):
    return exc_info.value.problems[0]


# -- YAML ---------------------------------------------------------------------------------------
def test_nul_byte_and_control_characters_are_errors_at_their_line():
    with pytest.raises(InputError) as info:
        loads("id: x\nname: 'a\0b'\n", "f.yaml")
    assert (problem(info).file, problem(info).line) == ("f.yaml", 2)
    assert "U+0000" in problem(info).message


@pytest.mark.parametrize("text", ["latency: !!float abc", "latency: !!int 3.5", "latency: !!timestamp 2020-99-99"])
def test_tags_that_fail_to_construct_are_errors_at_their_field(text):
    with pytest.raises(InputError) as info:
        loads(f"id: x\n{text}\n", "f.yaml")
    assert (problem(info).line, problem(info).path) == (2, "latency")


# -- quantities ---------------------------------------------------------------------------------
@pytest.mark.parametrize("text,kind,why", [
    ("1e-320 TFLOP/s", "compute_rate", "denormal"),          # 1e-320 x 1e12 = 1e-308 < 2.2e-308
    ("1e-320 GB/s", "bandwidth", "denormal"),
    ("1e-310 TB/s", "bandwidth", "outside the range"),       # 1e-298 B/s < 1 B/s
    ("1e300 J/FLOP", "energy_per_flop", "outside the range"),
    ("0.5 B/s", "bandwidth", "outside the range"),
])
def test_denormal_and_incomputable_quantities_are_refused(text, kind, why):
    with pytest.raises(InputError, match=why):
        parse_quantity(text, kind, path="x")


def test_the_ends_of_the_computable_range_are_accepted():
    assert parse_quantity("1 B/s", "bandwidth") == 1.0
    assert parse_quantity("1000 EB/s", "bandwidth") == 1e21   # 1000 x 1e18
    assert parse_quantity("0 J/FLOP", "energy_per_flop", allow_zero=True) == 0.0


def overlay(tmp_path, body: str) -> Path:
    path = tmp_path / "x.yaml"
    path.write_text("extends: h100-sxm\nid: x\n" + body)
    return path


def test_a_bad_quantity_in_a_file_names_the_file_line_and_field(tmp_path):
    path = overlay(tmp_path, "memory:\n  hbm:\n    bandwidth: 1e-320 GB/s\n")
    with pytest.raises(InputError) as info:
        hwmodels.load_hardware(path)
    assert (problem(info).file, problem(info).line, problem(info).path) == (str(path), 5, "memory.hbm.bandwidth")


@pytest.mark.parametrize("body,field", [
    ("memory:\n  hbm:\n    latency: 400 s\n", "memory.hbm.latency"),
    ("memory:\n  hbm:\n    bandwidth: 0.5 MB/s\n", "memory.hbm.bandwidth"),
])
def test_implausible_values_warn_with_their_field(tmp_path, body, field):
    path = overlay(tmp_path, body)
    with pytest.warns(InputWarning, match=rf"x\.yaml:5: {re.escape(field)}: '.*' is (above|below)"):
        device = hwmodels.load_hardware(path)
    assert [p.path for p in device.warnings] == [field]


def test_the_cli_prints_warnings_on_stderr(capsys, tmp_path):
    path = overlay(tmp_path, "memory:\n  hbm:\n    latency: 400 s\n")
    code, out, err = run(capsys, "hw", "validate", str(path))
    assert code == 0 and "ok" in out
    assert err.startswith(f"warning: {path}:5: memory.hbm.latency: '400 s'")
    code, out, _err = run(capsys, "hw", "validate", "--format", "json", str(path))
    assert json.loads(out)[0]["warnings"] == [f"{path}:5: memory.hbm.latency: '400 s' is above 1 s, beyond "
                                              "real hardware; a typo?"]


def test_no_catalog_entry_is_implausible():
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)
        for ref in hwmodels.catalog_ids():
            hwmodels.load_hardware(ref)


def test_plausible_ranges_sit_inside_the_computable_ones():
    for kind, (low, high) in PLAUSIBLE.items():
        c_low, c_high = COMPUTABLE[kind]
        assert (low or c_low) >= c_low and high <= c_high


# -- sizes --------------------------------------------------------------------------------------
def system(tmp_path, count) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(f"id: s\nname: s\nkind: system\nsource: x\ndevices:\n  - {{name: gpu, device: h100-sxm, "
                    f"count: {count}}}\n")
    return path


def test_a_device_count_above_the_limit_is_refused_naming_the_variable(tmp_path, monkeypatch):
    with pytest.raises(InputError) as info:
        hwmodels.load_hardware(system(tmp_path, 10**9))
    assert (problem(info).line, problem(info).path) == (6, "devices[0].count")
    assert "RIDGELINE_MAX_DEVICES" in problem(info).message
    monkeypatch.setenv("RIDGELINE_MAX_DEVICES", "2")
    with pytest.raises(InputError, match="3 is above the limit of 2"):
        hwmodels.load_hardware(system(tmp_path, 3))
    monkeypatch.setenv("RIDGELINE_MAX_DEVICES", "3")
    assert len(hwmodels.load_hardware(system(tmp_path, 3)).accelerators) == 3


def test_operands_stage_and_dimensions_are_bounded(capsys):
    code, _out, err = run(capsys, "op", "elementwise", "--hw", "h100-sxm", "--numel", "8",
                          "--operands", "1" * 20)
    assert code == 2 and "RIDGELINE_MAX_OPERANDS" in err
    code, _out, err = run(capsys, "op", "matmul", "--hw", "h100-sxm", "--m", "1", "--n", "1", "--k", "1",
                          "--stage", "1000000000000")
    assert code == 2 and "stage" in err and "RIDGELINE_MAX_STAGES" in err
    code, _out, err = run(capsys, "op", "matmul", "--hw", "h100-sxm", "--m", "1", "--n", "1", "--k", "1" + "0" * 400)
    assert code == 2 and "a 401-digit number" in err


LLAMA = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
         "intermediate_size": 128, "vocab_size": 100}


@pytest.mark.parametrize("layers", [100_000, 2**63])
def test_a_layer_count_above_the_limit_is_refused(layers):
    with pytest.raises(InputError) as info:
        parse_config({**LLAMA, "num_hidden_layers": layers}, "m")
    assert problem(info).path == "num_hidden_layers" and "RIDGELINE_MAX_LAYERS" in problem(info).message


def test_nested_repeat_blocks_are_counted_before_expanding(tmp_path):
    lines, indent = ["workload: w", "ops:"], "  "
    for i in range(60):
        lines += [f"{indent}- repeat: 2", f"{indent}  name: b{i}", f"{indent}  ops:"]
        indent += "    "
    lines.append(indent + "- {name: x, kind: matmul, m: 1, n: 1, k: 1}")
    path = tmp_path / "w.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as info:
        load_workload(path)
    # 2^16 = 65,536 > 50,000 operators: the 16th block from the inside (block b44, line 3 + 3 x 44)
    assert "65,536 is above the limit of 50,000" in problem(info).message
    assert problem(info).line == 3 + 3 * 44


def test_a_huge_repeat_of_an_empty_block_is_refused(tmp_path):
    # found by the fuzz run (seed 3): 2^40 iterations of a block whose only op is an invalid
    # `repeat: 0` expanded nothing, but looped 2^40 times
    path = tmp_path / "w.yaml"
    path.write_text("workload: w\nops:\n  - repeat: 1099511627776\n    name: b\n    ops:\n"
                    "      - {repeat: 0, name: c, ops: [{name: x, kind: matmul, m: 1, n: 1, k: 1}]}\n")
    with pytest.raises(InputError) as info:
        load_workload(path)
    assert (problem(info).line, problem(info).path) == (3, "ops[0].repeat")


def test_workload_meta_tokens_must_be_finite(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text("workload: w\nmeta: {tokens: .inf}\nops:\n  - {name: x, kind: matmul, m: 1, n: 1, k: 1}\n")
    with pytest.raises(InputError) as info:
        load_workload(path)
    assert (problem(info).line, problem(info).path) == (2, "meta.tokens")


# -- config.json --------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ['"false"', '"4096"', "[4096]", "1e30"])
def test_tie_word_embeddings_must_be_a_boolean(tmp_path, value):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(LLAMA, indent=1)[:-2] + f',\n "tie_word_embeddings": {value}\n}}')
    with pytest.raises(InputError) as info:
        load_config(str(path))
    assert (problem(info).line, problem(info).path) == (8, "tie_word_embeddings")   # 6 keys after "{"
    assert problem(info).message.startswith("expected true or false")


def test_duplicate_keys_nan_and_deep_nesting_are_refused():
    with pytest.raises(InputError) as info:
        read_json('{"a": 1,\n "a": 2}', "c.json")
    assert (problem(info).line, problem(info).message) == (2, "duplicate key 'a'")
    with pytest.raises(InputError, match="NaN"):
        read_json('{"a": NaN}', "c.json")
    with pytest.raises(InputError, match="10,001 is above the limit of 256"):   # the object, then 10,000 lists
        read_json('{"a": ' + "[" * 10_000 + "]" * 10_000 + "}", "c.json")


@pytest.mark.parametrize("key,value", [("ssm_cfg", "abc"), ("rope_theta", "abc"), ("hidden_size", 64.0),
                                       ("attention_bias", 1), ("num_attention_heads", True)])
def test_wrong_types_are_named(key, value):
    base = {**LLAMA, "model_type": "mamba"} if key == "ssm_cfg" else LLAMA
    with pytest.raises(InputError) as info:
        parse_config({**base, key: value}, "m")
    assert problem(info).path == key


def test_a_valid_config_still_loads_with_unknown_keys():
    cfg = parse_config({**LLAMA, "some_future_key": {"x": [1]}, "tie_word_embeddings": True}, "m")
    assert cfg.tie_embeddings and cfg.head_dim == 16   # 64 / 4


# -- ONNX ---------------------------------------------------------------------------------------
@pytest.fixture
def onnx():
    return pytest.importorskip("onnx")


def save(onnx, tmp_path, nodes, inputs, outputs, name="m.onnx") -> Path:
    helper = onnx.helper
    graph = helper.make_graph(nodes, "g", inputs, outputs)
    path = tmp_path / name
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def info(onnx, name, elem=None, shape=(4, 4)):
    return onnx.helper.make_tensor_value_info(name, elem or onnx.TensorProto.FLOAT, list(shape))


def test_onnx_cycle_string_tensors_and_empty_files_are_errors(onnx, tmp_path):
    helper, string = onnx.helper, onnx.TensorProto.STRING
    cyclic = save(onnx, tmp_path, [helper.make_node("Relu", ["b"], ["a"], name="r1"),
                                   helper.make_node("Relu", ["a"], ["b"], name="r2")],
                  [info(onnx, "x")], [info(onnx, "b")], "c.onnx")
    with pytest.raises(InputError, match="cycle: r1 -> r2 -> r1"):
        load_workload(cyclic)
    strings = save(onnx, tmp_path, [helper.make_node("MatMul", ["x", "y"], ["z"], name="mm")],
                   [info(onnx, "x", string), info(onnx, "y", string)], [info(onnx, "z", string)], "s.onnx")
    with pytest.raises(InputError, match="'mm' .*STRING"):
        load_workload(strings)
    empty = tmp_path / "e.onnx"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        load_workload(empty)


def test_onnx_zero_size_heads_are_an_error(onnx, tmp_path):
    helper = onnx.helper
    nodes = [helper.make_node("MatMul", ["q", "kt"], ["s"], name="qk"),
             helper.make_node("Softmax", ["s"], ["p"], name="sm", axis=-1),
             helper.make_node("MatMul", ["p", "v"], ["o"], name="pv")]
    path = save(onnx, tmp_path, nodes, [info(onnx, "q", shape=(1, 0, 4, 8)), info(onnx, "kt", shape=(1, 0, 8, 4)),
                                        info(onnx, "v", shape=(1, 0, 4, 8))], [info(onnx, "o", shape=(1, 0, 4, 8))])
    with pytest.raises(InputError, match="dimension of size 0"):
        load_workload(path)


def test_onnx_node_missing_inputs_is_an_error_naming_it(onnx, tmp_path):
    # found by the fuzz run (seed 4): an Attention node with one input unpacked into q, k, v
    helper = onnx.helper
    path = save(onnx, tmp_path, [helper.make_node("Attention", ["x"], ["y"], name="att")],
                [info(onnx, "x", shape=(1, 2, 4, 8))], [info(onnx, "y", shape=(1, 2, 4, 8))])
    with pytest.raises(InputError, match="node 'att' \\(Attention\\) is malformed"):
        load_workload(path, unknown_ops="elementwise")


def test_onnx_nodes_out_of_order_are_sorted(onnx, tmp_path):
    # y = relu(x @ w); written consumer first. MatMul of (4 x 4) by (4 x 4): 2 * 4 * 4 * 4 = 128 FLOPs
    helper = onnx.helper
    nodes = [helper.make_node("Relu", ["t"], ["y"], name="relu"), helper.make_node("MatMul", ["x", "w"], ["t"], name="mm")]
    path = save(onnx, tmp_path, nodes, [info(onnx, "x"), info(onnx, "w")], [info(onnx, "y")])
    graph = load_workload(path)
    assert [op.name for op in graph.ops] == ["mm", "relu"]
    assert graph.ops[0].total_flops == 128


# -- results and the CLI ------------------------------------------------------------------------
def test_non_finite_figures_are_refused_at_the_result_boundary(capsys):
    with pytest.raises(InputError) as info:
        print_json({"latency_s": 1.0, "per_op": [{"energy_j": math.inf}]})
    assert problem(info).path == "per_op[0].energy_j"
    assert capsys.readouterr().out == ""
    assert check_finite({"a": [1.0, 2]}) == {"a": [1.0, 2]}


def test_hw_validate_json_also_writes_its_problems_on_stderr():
    code, out, err = run_cli(["hw", "validate", "", "--format", "json"])
    assert code == 2 and json.loads(out)[0]["valid"] is False
    assert err == "error: empty hardware reference; expected a catalog id or a YAML file\n"


@pytest.mark.parametrize("argv", [
    ["simulate", "--hw", "h100-sxm", "--model", "llama-2-7b", "--trace", ""],
    ["roofline", "--hw", "h100-sxm", "--model", "llama-2-7b", "--top", "-1"],
    ["roofline", "--hw", "h100-sxm", "--model", "llama-2-7b", "--out", ""],
    ["simulate", "--hw", "h100-sxm", "--model", "llama-2-7b", "--seed", "-1"],
])
def test_bad_cli_values_exit_2(argv):
    code, out, err = run_cli(argv)
    assert code == 2 and out == "" and "Traceback" not in err and err


def test_docs_list_every_limit():
    text = DOCS.read_text()
    for name, limit in limits.LIMITS.items():
        row = next((line for line in text.splitlines() if line.startswith(f"| `{name}` |")), "")
        assert f"{limit.default:,}" in row and limit.env in row, name
