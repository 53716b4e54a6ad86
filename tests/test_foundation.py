"""The shared infrastructure: units, safe YAML, error formatting, the CLI's exit codes."""

import json

import pytest

from hwmodels.dtypes import dtype_bytes, normalize_dtype
from hwmodels.errors import InputError, Problem
from hwmodels.units import format_quantity, parse_quantity
from hwmodels.yamlio import loads
from reports.cli import main


@pytest.mark.parametrize("text,kind,expected", [
    ("3.35 TB/s", "bandwidth", 3.35e12),
    ("80 GiB", "capacity", 80 * 2**30),
    ("80 GB", "capacity", 80e9),
    ("700 W", "power", 700.0),
    ("1.98 GHz", "frequency", 1.98e9),
    ("250 ns", "time", 250e-9),
    ("989 TFLOP/s", "compute_rate", 989e12),
    ("989 TFLOPS", "compute_rate", 989e12),
    ("393 TOPS", "compute_rate", 393e12),
    ("100 Gb/s", "bandwidth", 12.5e9),
    ("5 pJ/B", "energy_per_byte", 5e-12),
])
def test_parse_quantity_si(text, kind, expected):
    assert parse_quantity(text, kind) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("value,kind,fragment", [
    ("80 GB", "bandwidth", "data size"),
    ("3.35 TB/s", "capacity", "bandwidth"),
    ("nan TB/s", "bandwidth", "finite"),
    ("-1 W", "power", "positive"),
    ("0 B/s", "bandwidth", "positive"),
    (700, "power", "no unit"),
    ("3 furlongs", "time", "cannot parse"),
    (["x"], "time", "string with a unit"),
])
def test_parse_quantity_rejects(value, kind, fragment):
    with pytest.raises(InputError) as info:
        parse_quantity(value, kind, path="a.b")
    assert fragment in str(info.value)
    assert "a.b" in str(info.value)


def test_zero_allowed_only_when_asked():
    assert parse_quantity("0 ns", "time", allow_zero=True) == 0.0


def test_format_round_trips():
    for value, kind in [(3.35e12, "bandwidth"), (80 * 2**30, "capacity"), (2.5e-7, "time")]:
        assert parse_quantity(format_quantity(value, kind), kind) == pytest.approx(value, rel=1e-3)


def test_dtypes():
    assert dtype_bytes("int4") == 0.5
    assert normalize_dtype("bfloat16") == "bf16"
    with pytest.raises(InputError, match="did you mean 'bf16'"):
        normalize_dtype("bf61")


def test_yaml_lines_and_paths():
    doc = loads("a:\n  b: 1\n  c:\n    - x\n    - y\n", "f.yaml")
    assert doc.data == {"a": {"b": 1, "c": ["x", "y"]}}
    assert doc.line_of(("a", "b")) == 2
    assert doc.line_of(("a", "c", 1)) == 5
    assert doc.line_of(("a", "missing")) == 1
    assert str(doc.error("bad", ("a", "c", 1))) == "f.yaml:5: a.c[1]: bad"


@pytest.mark.parametrize("text,fragment,line", [
    ("a: [1,\n  b", "syntax error", 2),
    ("a: 1\na: 2\n", "duplicate key 'a'", 2),
    ("a: !!python/object/apply:os.system ['true']\n", "not allowed", 1),
    ("", "empty", 1),
])
def test_yaml_rejects(text, fragment, line):
    with pytest.raises(InputError) as info:
        loads(text, "f.yaml")
    assert fragment in str(info.value)
    assert info.value.problems[0].line == line


def test_yaml_alias_bomb_is_bounded():
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for prev, name in zip("abcdefg", "bcdefgh"):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    with pytest.raises(InputError, match="alias bomb"):
        loads("\n".join(lines))


def test_problem_format():
    p = Problem("expected a bandwidth", "hw.yaml", 12, "memory.hbm.bandwidth", "bandwidth")
    assert str(p) == "hw.yaml:12: memory.hbm.bandwidth: expected a bandwidth (did you mean 'bandwidth'?)"


def test_cli_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["no-such-command"])
    assert info.value.code == 2


def test_print_json_is_strict(capsys):
    from reports.output import print_json
    with pytest.raises(InputError) as info:      # a result never carries a NaN figure, not even as null
        print_json({"x": float("nan"), "y": 1})
    assert info.value.problems[0].path == "x" and capsys.readouterr().out == ""
    print_json({"x": float("nan"), "y": 1}, finite=False)   # where a missing figure is meant
    assert json.loads(capsys.readouterr().out) == {"x": None, "y": 1}


@pytest.mark.parametrize("text", [
    "3 TB/s; 2", "TB/s", "'3' TB/s", "3 TB/s + 2 GB/s", "3 TB/s)", ".", "-",
    "1/0 TB/s", "2**2**2**2**2 B/s", "9**9**9 B",
])
def test_parse_quantity_refuses_expressions(text):
    """pint evaluates expressions; a quantity must be a number and a unit, nothing more."""
    with pytest.raises(InputError, match="not a number followed by a unit"):
        parse_quantity(text, "bandwidth")


def test_validation_problems_keep_user_keys_with_brackets():
    from pydantic import BaseModel, ConfigDict, ValidationError

    from hwmodels.yamlio import validation_problems

    class M(BaseModel):
        model_config = ConfigDict(extra="forbid")
        source: str = ""

    doc = loads("sou[ce: x\n", "f.yaml")
    with pytest.raises(ValidationError) as info:
        M.model_validate(doc.data)
    (problem,) = validation_problems(info.value, doc, M)
    assert problem.path == "sou[ce" and problem.line == 1


def test_cli_unwritable_output_is_exit_2_not_a_traceback(capsys, tmp_path):
    missing = tmp_path / "no-such-dir" / "trace.json"
    code = main(["simulate", "--hw", "h100-sxm", "--model", "llama-2-7b", "--phase", "decode",
                 "--trace", str(missing)])
    err = capsys.readouterr().err
    assert code == 2
    assert str(missing) in err and "Traceback" not in err


def test_yaml_unclosed_bracket_names_the_line_it_opened_on():
    with pytest.raises(InputError, match=r"opened at line 2"):
        loads("a: 1\nb: [1, 2\nc: 3\n", "f.yaml")
