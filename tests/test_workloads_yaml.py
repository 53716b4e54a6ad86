"""Workload YAML: repeated blocks, dependencies, and errors located as FILE:LINE: field.path."""

from pathlib import Path

import pytest

from hwmodels.errors import InputError
from workloads import load_workload
from workloads.yaml_format import loads_workload

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "workloads"


def test_example_decoder_expands_the_block():
    g = load_workload(EXAMPLES / "toy_decoder.yaml")
    assert len(g) == 1 + 4 * 7 + 2
    assert g.deps("layer.1.norm") == ["layer.0.mlp_down"]       # an iteration follows the previous one
    assert g.deps("final_norm") == ["layer.3.mlp_down"]
    assert g.deps("layer.2.o_proj") == ["layer.2.attn"]         # `from` names the producer
    s = g.summary()
    per_layer = 2 * 8 * (1024 * 3072 + 1024 * 1024 + 1024 * 4096 + 4096 * 1024)
    attention = 2 * 8 * 8 * 1024 * 128 * 2
    assert s["flops_by_engine"]["matrix"] == 4 * (per_layer + attention) + 2 * 8 * 1024 * 32000
    assert s["meta"]["phase"] == "decode" and s["meta"]["batch"] == 8


def test_example_cnn():
    g = load_workload(EXAMPLES / "cnn.yaml")
    stem = g.op("stem")
    assert (stem.out_h, stem.out_w) == (112, 112) and stem.dtype == "fp16"
    assert g.op("fc").inputs[1].dtype == "int8"


def test_explicit_after_and_block_reference():
    g = loads_workload("""
ops:
  - {name: a, kind: elementwise, numel: 4}
  - {name: b, kind: elementwise, numel: 4, after: []}
  - name: blk
    repeat: 2
    ops:
      - {name: x, kind: elementwise, numel: 4, after: [a, b]}
      - {name: y, kind: elementwise, numel: 4}
  - {name: z, kind: elementwise, numel: 4, after: blk}
""", "w.yaml")
    assert g.deps("b") == []
    assert sorted(g.deps("blk.1.x")) == ["a", "b"]
    assert g.deps("z") == ["blk.1.y"]


def error_of(text: str) -> InputError:
    with pytest.raises(InputError) as info:
        loads_workload(text, "bad.yaml")
    return info.value


def test_unknown_kind_with_suggestion_and_line():
    err = error_of("""ops:
  - {name: a, kind: elementwise, numel: 4}
  - {name: b, kind: matmull, m: 1, n: 1, k: 1}
""")
    (p,) = err.problems
    assert (p.file, p.line, p.path, p.suggestion) == ("bad.yaml", 3, "ops[1].kind", "matmul")


def test_cycle_is_reported():
    err = error_of("""ops:
  - {name: a, kind: elementwise, numel: 4, after: [c]}
  - {name: b, kind: elementwise, numel: 4}
  - {name: c, kind: elementwise, numel: 4}
""")
    (p,) = err.problems
    assert "dependency cycle" in p.message
    assert {"a", "b", "c"} <= set(p.message.split(": ")[1].split(" -> "))
    assert (p.file, p.line, p.path) == ("bad.yaml", 2, "ops[0].after")   # the reference closing it


def test_dangling_dependency_with_suggestion():
    err = error_of("""ops:
  - {name: attn, kind: elementwise, numel: 4}
  - {name: out, kind: elementwise, numel: 4, after: [atn]}
""")
    (p,) = err.problems
    assert p.line == 3 and p.path == "ops[1].after" and p.suggestion == "attn"
    assert "not an op" in p.message


def test_dangling_dependency_inside_a_block_suggests_the_local_name():
    err = error_of("""ops:
  - name: layer
    repeat: 2
    ops:
      - {name: attn, kind: elementwise, numel: 4}
      - {name: out, kind: elementwise, numel: 4, from: atn}
""")
    (p,) = err.problems
    assert (p.line, p.path, p.suggestion) == (6, "ops[0].ops[1].from", "attn")


def test_shape_mismatch():
    err = error_of("""ops:
  - {name: up, kind: matmul, m: 8, k: 1024, n: 4096}
  - name: down
    kind: matmul
    m: 8
    k: 1024
    n: 1024
    from: up
""")
    (p,) = err.problems
    assert p.line == 8 and p.path == "ops[1].from"
    assert "shape mismatch" in p.message and "[1, 8, 4096]" in p.message


def test_field_errors_point_at_the_field_in_a_block():
    err = error_of("""ops:
  - name: layer
    repeat: 3
    ops:
      - name: mm
        kind: matmul
        m: 0
        n: 4
        k: 4
      - {name: e, kind: elementwise, numel: 4, flops_per_elment: 2}
""")
    lines = {(p.line, p.path) for p in err.problems}
    assert (7, "ops[0].ops[0].m") in lines
    assert len(err.problems) == 2                                  # not repeated per iteration
    typo = [p for p in err.problems if p.line == 10][0]
    assert typo.suggestion == "flops_per_element"


@pytest.mark.parametrize("text,fragment", [
    ("ops: []", "non-empty list"),
    ("opps: []", "unknown field"),
    ("ops:\n  - {kind: matmul}", "needs a name"),
    ("ops:\n  - {name: a, numel: 3}", "missing field 'kind'"),
    ("ops:\n  - {name: l, repeat: 0, ops: []}", "positive integer"),
    ("ops:\n  - {name: a, kind: elementwise, numel: 1}\n  - {name: a, kind: elementwise, numel: 1}",
     "duplicate"),
    ("ops:\n  - {name: a, kind: elementwise, numel: 1, after: [a]}", "itself"),
    ("meta: {batch: 0}\nops:\n  - {name: a, kind: elementwise, numel: 1}", "positive integer"),
    ("meta: {pp: 2}\nops:\n  - {name: a, kind: elementwise, numel: 1, stage: 2}", "stage 2 does not exist"),
    ("ops:\n  - {name: a, kind: elementwise, numel: 1, stage: -1}", "non-negative"),
])
def test_malformed(text, fragment):
    assert fragment in str(error_of(text))


def test_workload_yaml_takes_no_knobs():
    with pytest.raises(InputError, match="no build options"):
        load_workload(EXAMPLES / "cnn.yaml", batch=4)


def test_collective_payload_in_yaml_takes_a_size_with_a_unit():
    g = loads_workload("ops:\n  - {name: ar, kind: collective, collective: all_reduce, payload_bytes: 64 MiB}\n"
                       "  - {name: cp, kind: memcopy, bytes_moved: 2 GB, after: ar}\n")
    assert g.op("ar").payload_bytes == 64 * 2**20
    assert g.op("cp").bytes_moved == 2e9


def test_misspelled_collective_in_yaml_gets_a_suggestion():
    text = "ops:\n  - {name: ar, kind: collective, collective: all_gahter, payload_bytes: 1e6}\n"
    with pytest.raises(InputError) as err:
        loads_workload(text, "w.yaml")
    assert "w.yaml:2: ops[0].collective: 'all_gahter' is not one of" in str(err.value)
    assert "(did you mean 'all_gather'?)" in str(err.value)
