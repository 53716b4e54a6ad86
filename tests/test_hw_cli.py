"""``ridgeline hw``: list, show, validate, schema; JSON on stdout only; exit 2 on bad input."""

import json

import pytest
import yaml
from clitools import run
from test_hw_models import ISSUE_DEVICES, ISSUE_SYSTEMS


def test_list_json_has_every_id_and_headline_figures(capsys):
    code, out, _err = run(capsys, "hw", "list", "--format", "json")
    assert code == 0
    rows = json.loads(out)
    assert {r["id"] for r in rows} == ISSUE_DEVICES | ISSUE_SYSTEMS
    assert {r["kind"] for r in rows} == {"gpu", "npu", "fpga", "cpu", "memory", "system"}
    h100 = next(r for r in rows if r["id"] == "h100-sxm")
    assert h100["peak_bf16_flops"] == 989e12
    assert h100["memory_capacity_bytes"] == 80e9
    assert h100["memory_bandwidth_bytes_s"] == 3.35e12
    hgx = next(r for r in rows if r["id"] == "hgx-h100")
    assert hgx["peak_bf16_flops"] == 8 * 989e12
    assert hgx["memory_bandwidth_bytes_s"] == 8 * 3.35e12


def test_list_kind_filter_and_table(capsys):
    code, out, _err = run(capsys, "hw", "list", "--kind", "fpga")
    assert code == 0
    assert "alveo-u280" in out and "alveo-v80" in out and "h100-sxm" not in out
    code, out, _err = run(capsys, "hw", "list", "--kind", "gpu")
    assert "h200-sxm" in out and "a100-sxm-40gb" in out and "tpu-v4" not in out
    code, out, _err = run(capsys, "hw", "list", "--kind", "system", "--format", "json")
    assert {r["id"] for r in json.loads(out)} == ISSUE_SYSTEMS


def test_show_yaml_and_json(capsys, tmp_path):
    code, out, _err = run(capsys, "hw", "show", "a100-sxm-40gb")
    assert code == 0
    shown = yaml.safe_load(out)
    assert "extends" not in shown
    assert shown["memory"]["hbm"]["bandwidth"] == "1555 GB/s"
    assert shown["engines"]["tensor"]["peak"]["bf16"] == "312 TFLOP/s"     # inherited from the 80 GB part
    # the shown description is itself a valid hardware file
    f = tmp_path / "shown.yaml"
    f.write_text(out)
    assert run(capsys, "hw", "validate", str(f))[0] == 0
    code, out, _err = run(capsys, "hw", "show", "tpu-v5e-8", "--format", "json")
    data = json.loads(out)
    assert len(data["resolved"]["edges"]) == 12


def test_validate_ok_and_problems(capsys, tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("extends: h100-sxm\nmemory:\n  hbm:\n    bandwidth: 4.8 TB/s\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("extends: h100-sxm\nmemory:\n  hbm:\n    bandwdith: 4.8 TB/s\n    latency: 3 GB\n")
    code, out, _err = run(capsys, "hw", "validate", str(good))
    assert code == 0 and "ok" in out
    code, out, _err = run(capsys, "hw", "validate", str(good), str(bad))
    assert code == 2
    lines = [line for line in out.splitlines() if line.startswith(str(bad))]
    assert len(lines) == 2
    assert f"{bad}:4: memory.hbm.bandwdith: unknown field" in lines[0]
    assert "(did you mean 'bandwidth'?)" in lines[0]
    assert lines[1].startswith(f"{bad}:5: memory.hbm.latency: '3 GB' is a data size")


def test_validate_json(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("- not a mapping\n")
    code, out, _err = run(capsys, "hw", "validate", "--format", "json", str(bad))
    assert code == 2
    [result] = json.loads(out)
    assert result["valid"] is False and "mapping" in result["problems"][0]


def test_show_unknown_id_exits_2(capsys):
    code, out, err = run(capsys, "hw", "show", "h100-sxn")
    assert code == 2 and out == ""
    assert "did you mean 'h100-sxm'?" in err


def test_schema_is_json_schema_with_both_forms(capsys):
    code, out, _err = run(capsys, "hw", "schema")
    assert code == 0
    schema = json.loads(out)
    device = schema["$defs"]["DeviceSpec"]
    assert device["additionalProperties"] is False
    assert {"engines", "memory", "links", "power", "extends"} <= set(device["properties"])
    assert "from" in schema["$defs"]["EdgeSpec"]["properties"]
    assert len(schema["anyOf"]) == 3
    # an overlay needs only extends:, and its nested fields are optional too
    overlay = schema["$defs"]["Overlay"]
    assert overlay["required"] == ["extends"]
    assert "required" not in schema["$defs"]["OverlayMemoryLevelSpec"]
    assert schema["$defs"]["MemoryLevelSpec"]["required"]


def test_schema_accepts_the_catalog():
    jsonschema = pytest.importorskip("jsonschema")
    from hwmodels.loader import CATALOG_DIR
    from hwmodels.schema import json_schema
    validator = jsonschema.Draft202012Validator(json_schema())
    for path in CATALOG_DIR.glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        errors = list(validator.iter_errors(data))
        assert not errors, (path.name, errors[0].message)
    assert list(validator.iter_errors({"id": "x", "kind": "gpu"}))
