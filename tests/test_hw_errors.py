"""Bad hardware input: each case of the issue is an InputError naming file, line and field,
never a traceback and never a silent default."""

import textwrap

import pytest

import hwmodels
from hwmodels.errors import InputError

TOY = textwrap.dedent("""\
    id: toy
    name: Toy GPU
    kind: gpu
    source: test fixture
    engines:
      tensor:
        kind: matrix
        peak: {bf16: 100 TFLOP/s}
    memory:
      hbm:
        kind: hbm
        capacity: 16 GB
        bandwidth: 1 TB/s
        latency: 500 ns
        energy_per_byte: 30 pJ/B
    power:
      static: 50 W
      tdp: 300 W
      energy_per_flop: {bf16: 0.4 pJ/FLOP}
    """)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def problems_of(ref, loader=hwmodels.load_hardware):
    with pytest.raises(InputError) as info:
        loader(ref)
    return info.value.problems


def one_problem(ref, loader=hwmodels.load_hardware):
    probs = problems_of(ref, loader)
    assert len(probs) == 1, [str(p) for p in probs]
    return probs[0]


def toy_with(tmp_path, old, new, name="toy.yaml"):
    assert old in TOY
    return write(tmp_path, name, TOY.replace(old, new))


def test_the_toy_is_valid(tmp_path):
    d = hwmodels.load_device(write(tmp_path, "toy.yaml", TOY))
    assert d.peak_flops("bf16") == 100e12 and d.memory["hbm"].bandwidth_bytes_s == 1e12


def test_malformed_yaml_names_the_line(tmp_path):
    p = one_problem(toy_with(tmp_path, "    capacity: 16 GB\n", "    capacity: [16 GB\n"))
    assert "syntax error" in p.message
    assert p.file.endswith("toy.yaml") and p.line in (12, 13)


def test_unknown_key_suggests_the_right_one(tmp_path):
    probs = problems_of(toy_with(tmp_path, "    bandwidth: 1 TB/s", "    bandwdith: 1 TB/s"))
    unknown = [p for p in probs if p.path == "memory.hbm.bandwdith"]
    assert len(unknown) == 1
    assert unknown[0].line == 13
    assert unknown[0].suggestion == "bandwidth"
    assert "did you mean 'bandwidth'?" in str(unknown[0])
    # and the field it should have been is reported missing, not defaulted
    assert any(p.path == "memory.hbm.bandwidth" and "missing" in p.message for p in probs)


def test_unknown_top_level_key(tmp_path):
    p = one_problem(write(tmp_path, "t.yaml", TOY + "sorce: typo\n"))
    assert p.path == "sorce" and p.suggestion == "source" and p.line == 20


def test_missing_required_fields(tmp_path):
    probs = problems_of(write(tmp_path, "m.yaml", "id: m\nname: M\nkind: gpu\n"))
    assert {p.path for p in probs} == {"source", "memory", "power"}
    assert all("required field is missing" in p.message for p in probs)


def test_compute_device_without_engines(tmp_path):
    text = TOY.replace("engines:\n  tensor:\n    kind: matrix\n    peak: {bf16: 100 TFLOP/s}\n", "")
    p = one_problem(write(tmp_path, "e.yaml", text))
    assert "at least one entry under 'engines'" in p.message


@pytest.mark.parametrize("old,new,path,fragment", [
    ("bandwidth: 1 TB/s", "bandwidth: 1 TB", "memory.hbm.bandwidth", "data size"),
    ("capacity: 16 GB", "capacity: 16 GB/s", "memory.hbm.capacity", "bandwidth"),
    ("tdp: 300 W", "tdp: 300 J", "power.tdp", "energy"),
    ("latency: 500 ns", "latency: 500 GHz", "memory.hbm.latency", "frequency"),
    ("bf16: 100 TFLOP/s", "bf16: 100 TB/s", "engines.tensor.peak.bf16", "bandwidth"),
    ("bandwidth: 1 TB/s", "bandwidth: 1000", "memory.hbm.bandwidth", "no unit"),
    ("bandwidth: 1 TB/s", "bandwidth: 3 TB/s; 2", "memory.hbm.bandwidth", "not a number followed by a unit"),
    ("bandwidth: 1 TB/s", "bandwidth: TB/s", "memory.hbm.bandwidth", "not a number followed by a unit"),
    ("bandwidth: 1 TB/s", "bandwidth: 1/0 TB/s", "memory.hbm.bandwidth", "not a number followed by a unit"),
    ("bandwidth: 1 TB/s", "bandwidth: 1 furlong/s", "memory.hbm.bandwidth", "cannot parse"),
])
def test_wrong_dimension_or_no_unit(tmp_path, old, new, path, fragment):
    p = one_problem(toy_with(tmp_path, old, new))
    assert p.path == path and fragment in p.message
    assert p.file.endswith("toy.yaml") and p.line == TOY.replace(old, new).splitlines().index(
        next(line for line in TOY.replace(old, new).splitlines() if new in line)) + 1


@pytest.mark.parametrize("old,new,path,fragment", [
    ("bandwidth: 1 TB/s", "bandwidth: -1 TB/s", "memory.hbm.bandwidth", "positive"),
    ("bandwidth: 1 TB/s", "bandwidth: 0 TB/s", "memory.hbm.bandwidth", "positive"),
    ("bandwidth: 1 TB/s", "bandwidth: nan TB/s", "memory.hbm.bandwidth", "finite"),
    ("capacity: 16 GB", "capacity: 0 GB", "memory.hbm.capacity", "positive"),
    ("bf16: 100 TFLOP/s", "bf16: -100 TFLOP/s", "engines.tensor.peak.bf16", "positive"),
    ("latency: 500 ns", "latency: -5 ns", "memory.hbm.latency", "non-negative"),
    ("tdp: 300 W", "tdp: 0 W", "power.tdp", "positive"),
    ("kind: matrix", "kind: matrix\n    efficiency: 0", "engines.tensor.efficiency", "greater than 0"),
    ("kind: matrix", "kind: matrix\n    efficiency: 1.5", "engines.tensor.efficiency", "less than or equal"),
    ("kind: matrix", "kind: matrix\n    efficiency: .nan", "engines.tensor.efficiency", ""),
    ("kind: matrix", "kind: matrix\n    units: 0", "engines.tensor.units", "greater than 0"),
])
def test_negative_zero_nan(tmp_path, old, new, path, fragment):
    p = one_problem(toy_with(tmp_path, old, new))
    assert p.path == path and fragment in p.message and p.line is not None


def test_all_problems_of_a_file_at_once(tmp_path):
    text = TOY.replace("bandwidth: 1 TB/s", "bandwidth: 1 TB").replace("tdp: 300 W", "tdp: 300 GB")
    text = text.replace("kind: hbm", "kind: hmb")
    probs = problems_of(write(tmp_path, "many.yaml", text))
    assert {p.path for p in probs} == {"memory.hbm.bandwidth", "power.tdp", "memory.hbm.kind"}
    assert sorted(p.line for p in probs) == [11, 13, 18]


def test_unknown_dtype_suggests(tmp_path):
    probs = problems_of(toy_with(tmp_path, "bf16: 100 TFLOP/s", "bf61: 100 TFLOP/s"))
    assert any("unknown dtype 'bf61'" in p.message for p in probs)


def test_energy_missing_for_a_supported_dtype(tmp_path):
    p = one_problem(toy_with(tmp_path, "peak: {bf16: 100 TFLOP/s}", "peak: {bf16: 100 TFLOP/s, fp8: 200 TFLOP/s}"))
    assert p.path == "engines.tensor.peak.fp8" and "energy_per_flop" in p.message and p.line == 8


def test_static_power_above_tdp(tmp_path):
    p = one_problem(toy_with(tmp_path, "static: 50 W", "static: 500 W"))
    assert p.path == "power.static" and "exceeds the TDP" in p.message


def test_engine_without_peak_or_derivation(tmp_path):
    p = one_problem(toy_with(tmp_path, "    peak: {bf16: 100 TFLOP/s}\n", "    units: 4\n"))
    assert p.path == "engines.tensor" and "'peak'" in p.message


def test_memory_without_an_off_chip_level(tmp_path):
    p = one_problem(toy_with(tmp_path, "kind: hbm", "kind: sram"))
    assert "off-chip" in p.message


def test_wrong_kind(tmp_path):
    p = one_problem(toy_with(tmp_path, "kind: gpu", "kind: gpus"))
    assert p.path == "kind" and p.line == 3 and "'gpu'" in p.message


# ---------------------------------------------------------------- extends

def test_unknown_extends_target(tmp_path):
    p = one_problem(write(tmp_path, "u.yaml", "extends: h100-sxn\n"))
    assert p.path == "extends" and p.line == 1 and p.file.endswith("u.yaml")
    assert p.suggestion == "h100-sxm"


def test_extends_missing_file(tmp_path):
    p = one_problem(write(tmp_path, "u.yaml", "extends: ./nowhere.yaml\n"))
    assert "not found" in p.message and p.path == "extends"


def test_cyclic_extends(tmp_path):
    write(tmp_path, "a.yaml", "extends: b.yaml\n")
    write(tmp_path, "b.yaml", "extends: c.yaml\n")
    write(tmp_path, "c.yaml", "extends: a.yaml\n")
    p = one_problem(tmp_path / "a.yaml")
    assert "cyclic extends: a.yaml -> b.yaml -> c.yaml -> a.yaml" in p.message


def test_self_extends(tmp_path):
    p = one_problem(write(tmp_path, "s.yaml", "extends: s.yaml\n"))
    assert "cyclic" in p.message


def test_extends_a_system_is_refused(tmp_path):
    p = one_problem(write(tmp_path, "x.yaml", "extends: hgx-h100\n"), hwmodels.load_device)
    assert "system" in p.message


def test_problem_in_an_overlay_points_at_the_overlay(tmp_path):
    write(tmp_path, "toy.yaml", TOY)
    child = write(tmp_path, "child.yaml", "extends: toy.yaml\nmemory:\n  hbm:\n    bandwidth: 2 TB\n")
    p = one_problem(child)
    assert p.file.endswith("child.yaml") and p.line == 4 and p.path == "memory.hbm.bandwidth"


def test_problem_in_the_base_points_at_the_base(tmp_path):
    write(tmp_path, "toy.yaml", TOY.replace("tdp: 300 W", "tdp: 300 GB"))
    child = write(tmp_path, "child.yaml", "extends: toy.yaml\nmemory:\n  hbm:\n    bandwidth: 2 TB/s\n")
    p = one_problem(child)
    assert p.file.endswith("toy.yaml") and p.line == 18


def test_overrides_from_python_are_checked():
    d = hwmodels.load_device("h100-sxm")
    with pytest.raises(InputError) as info:
        d.with_overrides({"memory.hbm.bandwdith": "4 TB/s"})
    assert info.value.problems[0].suggestion == "bandwidth"
    with pytest.raises(InputError, match="not a mapping"):
        d.with_overrides({"name.first": "x"})
    with pytest.raises(InputError, match="mapping"):
        d.with_overrides(["memory.hbm.bandwidth"])


# ---------------------------------------------------------------- systems

SYSTEM = textwrap.dedent("""\
    id: s
    name: S
    kind: system
    source: test fixture
    devices:
      - {name: gpu, device: h100-sxm, count: 2}
      - {name: host, device: xeon-8480}
    switches:
      - {name: sw, in_network_reduction: true}
    edges:
      - {from: gpu, to: sw, link: nvlink}
      - {from: host, to: gpu, link: pcie}
    """)


def test_the_toy_system_is_valid(tmp_path):
    s = hwmodels.load_system(write(tmp_path, "s.yaml", SYSTEM))
    assert s.accelerators == ["gpu0", "gpu1"]
    assert s.link("host", "gpu1").bandwidth_bytes_s == 64e9


def test_duplicate_device_names(tmp_path):
    text = SYSTEM.replace("  - {name: host, device: xeon-8480}\n",
                          "  - {name: host, device: xeon-8480}\n  - {name: gpu1, device: l4}\n")
    p = one_problem(write(tmp_path, "s.yaml", text))
    assert "duplicate" in p.message and "gpu1" in p.message
    assert p.line == 8 and p.path == "devices[2].name"


def test_duplicate_group_names(tmp_path):
    text = SYSTEM.replace("{name: host, device: xeon-8480}", "{name: gpu, device: l4}")
    probs = problems_of(write(tmp_path, "s.yaml", text))
    assert any(p.line == 7 and "duplicate" in p.message for p in probs)


def test_switch_named_like_a_device(tmp_path):
    p = one_problem(write(tmp_path, "s.yaml", SYSTEM.replace("name: sw,", "name: host,")))
    assert "duplicate node name 'host'" in p.message and p.line == 9


def test_link_to_an_unknown_node(tmp_path):
    p = one_problem(write(tmp_path, "s.yaml", SYSTEM.replace("to: sw,", "to: nvswich,")))
    assert "unknown node 'nvswich'" in p.message and p.line == 11 and p.path == "edges[0].to"


def test_edge_naming_a_link_the_devices_lack(tmp_path):
    p = one_problem(write(tmp_path, "s.yaml", SYSTEM.replace("link: nvlink}", "link: nvlnk}")))
    assert p.suggestion == "nvlink" and p.line == 11


def test_unknown_device_in_a_system(tmp_path):
    p = one_problem(write(tmp_path, "s.yaml", SYSTEM.replace("device: xeon-8480", "device: xeon-8408")))
    assert p.suggestion == "xeon-8480" and p.line == 7 and p.file.endswith("s.yaml")


def test_mesh_shape_must_hold_the_group(tmp_path):
    text = SYSTEM.split("switches:")[0] + "edges:\n  - {mesh: gpu, shape: [2, 2], link: nvlink}\n"
    p = one_problem(write(tmp_path, "s.yaml", text))
    assert "holds 4 nodes" in p.message and p.path == "edges[0].shape"


def test_edge_given_twice(tmp_path):
    p = one_problem(write(tmp_path, "s.yaml", SYSTEM + "  - {from: gpu0, to: sw, link: nvlink}\n"))
    assert "given twice" in p.message and p.line == 13


def test_load_system_of_a_device_and_device_of_a_system():
    with pytest.raises(InputError, match="use load_device"):
        hwmodels.load_system("h100-sxm")
    with pytest.raises(InputError, match="use load_system"):
        hwmodels.load_device("hgx-h100")


# ---------------------------------------------------------------- documents that are not hardware

@pytest.mark.parametrize("text,fragment", [
    ("- 1\n- 2\n", "got list"),
    ("just a string\n", "got str"),
    ("42\n", "got int"),
    ("", "empty"),
])
def test_non_mapping_document(tmp_path, text, fragment):
    p = one_problem(write(tmp_path, "n.yaml", text))
    assert fragment in p.message and p.file.endswith("n.yaml")


def test_yaml_tags_that_construct_objects(tmp_path):
    p = one_problem(write(tmp_path, "t.yaml", TOY.replace("name: Toy GPU",
                                                             "name: !!python/object/apply:os.system ['true']")))
    assert "not allowed" in p.message and p.line == 2


def test_alias_bomb(tmp_path):
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for prev, name in zip("abcdefg", "bcdefgh"):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    p = one_problem(write(tmp_path, "bomb.yaml", "\n".join(lines) + "\n"))
    assert "alias bomb" in p.message


def test_duplicate_keys(tmp_path):
    p = one_problem(write(tmp_path, "d.yaml", TOY + "name: Again\n"))
    assert "duplicate key 'name'" in p.message and p.line == 20


def test_unknown_catalog_id():
    p = one_problem("h100-sxn")
    assert p.suggestion == "h100-sxm"


@pytest.mark.parametrize("ref", ["", "a\x00b", "x" * 5000 + ".yaml", "~nosuchuser___/x.yaml"])
def test_impossible_references(ref):
    with pytest.raises(InputError):
        hwmodels.load_hardware(ref)


def test_bad_override_in_a_system_points_at_its_line(tmp_path):
    text = SYSTEM.replace("{name: host, device: xeon-8480}",
                          "{name: host, device: xeon-8480, overrides: {memory.ddr.bandwidth: 3 GB}}")
    p = one_problem(write(tmp_path, "s.yaml", text))
    assert p.file.endswith("s.yaml") and p.line == 7
    assert p.path == "devices[1].overrides.memory.ddr.bandwidth" and "data size" in p.message


def test_bad_nested_override_in_a_system(tmp_path):
    text = SYSTEM.replace(
        "{name: host, device: xeon-8480}",
        "{name: host, device: xeon-8480,\n     overrides: {memory.cxl: {kind: cxl, capacity: 1 TB/s}}}")
    probs = problems_of(write(tmp_path, "s.yaml", text))
    assert all(p.file.endswith("s.yaml") and p.line == 8 for p in probs)
    assert any(p.path == "devices[1].overrides.memory.cxl.capacity" for p in probs)
