"""``ridgeline hw``: list, show, validate, schema; JSON on stdout only; exit 2 on bad input."""

import json
import re

import pytest
import yaml
from clitools import run
from test_hw_errors import SYSTEM, TOY
from test_hw_models import ISSUE_DEVICES, ISSUE_SYSTEMS


def test_list_json_has_every_id_and_headline_figures(capsys):
    code, out, _err = run(capsys, "hw", "list", "--format", "json")
    assert code == 0
    rows = json.loads(out)
    assert {r["id"] for r in rows} == ISSUE_DEVICES | ISSUE_SYSTEMS
    assert {r["kind"] for r in rows} == {"gpu", "npu", "fpga", "cpu", "memory", "system"}
    h100 = next(r for r in rows if r["id"] == "h100-sxm")
    assert h100["peak_bf16_flops"] == 989e12
    assert h100["memory_capacity_bytes"] == 85_045_477_376    # CUDA's total, 80 GiB of HBM3
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
    code, out, err = run(capsys, "hw", "validate", str(good), str(bad))
    assert code == 2 and str(bad) not in out   # problems go to stderr
    lines = [line.removeprefix("error: ") for line in err.splitlines() if line.startswith(f"error: {bad}")]
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
    jsonschema.Draft202012Validator.check_schema(json_schema())     # valid against the 2020-12 metaschema
    validator = jsonschema.Draft202012Validator(json_schema())
    for path in CATALOG_DIR.glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        errors = list(validator.iter_errors(data))
        assert not errors, (path.name, errors[0].message)
    assert list(validator.iter_errors({"id": "x", "kind": "gpu"}))


def test_schema_refs_resolve_and_required_fields_exist():
    """Without jsonschema installed: every $ref points at a definition, every required field is a
    property, and the device's required fields are exactly the schema's required YAML fields."""
    from hwmodels.schema import json_schema
    schema = json_schema()
    text = json.dumps(schema)
    refs = set(re.findall(r'"\$ref": "#/\$defs/([A-Za-z0-9_]+)"', text))
    assert refs and refs <= set(schema["$defs"])
    for name, definition in schema["$defs"].items():
        assert set(definition.get("required", [])) <= set(definition.get("properties", {})), name
    assert set(schema["$defs"]["DeviceSpec"]["required"]) == {"id", "name", "kind", "source", "memory", "power"}


# Every bad input of the issue through `ridgeline hw validate`: exit 2, nothing but problem lines,
# each `FILE:LINE: field.path: message`. (name, files {name: text}, file named in the line, line, prefix)
_BW = "    bandwidth: 1 TB/s\n"
BAD_INPUTS = [
    ("malformed", {"x.yaml": TOY.replace("name: Toy GPU", "name: [unclosed")}, "x.yaml", 3, "YAML syntax error"),
    ("unknown key", {"x.yaml": TOY.replace("    latency: 500 ns", "    latncy: 500 ns")}, "x.yaml", 14,
     "memory.hbm.latncy: unknown field"),
    ("missing field", {"x.yaml": TOY.replace("source: test fixture\n", "")}, "x.yaml", 1,
     "source: required field is missing"),
    ("wrong dimension", {"x.yaml": TOY.replace(_BW, "    bandwidth: 1 TB\n")}, "x.yaml", 13,
     "memory.hbm.bandwidth: '1 TB' is a data size"),
    ("negative", {"x.yaml": TOY.replace(_BW, "    bandwidth: -1 TB/s\n")}, "x.yaml", 13,
     "memory.hbm.bandwidth: '-1 TB/s' must be positive"),
    ("zero", {"x.yaml": TOY.replace("tdp: 300 W", "tdp: 0 W")}, "x.yaml", 18, "power.tdp: '0 W' must be positive"),
    ("nan", {"x.yaml": TOY.replace(_BW, "    bandwidth: nan TB/s\n")}, "x.yaml", 13,
     "memory.hbm.bandwidth: 'nan TB/s' is not a finite number"),
    ("unknown extends", {"x.yaml": "extends: h100-sxn\n"}, "x.yaml", 1, "extends: unknown hardware id 'h100-sxn'"),
    ("cyclic extends", {"x.yaml": "extends: y.yaml\n", "y.yaml": "extends: x.yaml\n"}, "y.yaml", 1,
     "extends: cyclic extends: x.yaml -> y.yaml -> x.yaml"),
    ("duplicate device names", {"x.yaml": SYSTEM.replace("{name: host, device: xeon-8480}",
                                                         "{name: gpu, device: xeon-8480}")}, "x.yaml", 7,
     "devices[1].name: duplicate device name 'gpu'"),
    ("link to an unknown node", {"x.yaml": SYSTEM.replace("to: sw", "to: sw9")}, "x.yaml", 11,
     "edges[0].to: unknown node 'sw9'"),
    ("non-mapping", {"x.yaml": "- a\n- b\n"}, "x.yaml", 1, "expected a mapping of fields at the top level"),
    ("python tag", {"x.yaml": TOY.replace("name: Toy GPU", "name: !!python/object/apply:os.system [ls]")},
     "x.yaml", 2, "name: YAML tag"),
    ("alias bomb", {"x.yaml": "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{n}: &{n} [" + ", ".join([f"*{p}"] * 9) + "]\n" for p, n in zip("abcdefg", "bcdefgh"))},
     "x.yaml", 1, "document expands to more than"),
]


@pytest.mark.parametrize("files,named,line,prefix", [case[1:] for case in BAD_INPUTS],
                         ids=[case[0] for case in BAD_INPUTS])
def test_every_bad_input_through_validate(capsys, tmp_path, monkeypatch, files, named, line, prefix):
    monkeypatch.chdir(tmp_path)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    code, out, err = run(capsys, "hw", "validate", "x.yaml")
    assert code == 2 and out == "" and "Traceback" not in err
    assert all(ln.startswith("error: ") for ln in err.splitlines())
    lines = [ln.removeprefix("error: ") for ln in err.splitlines()]
    assert lines and all(re.match(r"[xy]\.yaml:\d+: ", ln) for ln in lines), lines   # the file as typed
    assert any(ln.startswith(f"{named}:{line}: {prefix}") for ln in lines), lines
