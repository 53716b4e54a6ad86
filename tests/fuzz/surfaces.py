"""The input surfaces Ridgeline reads, each as a hypothesis strategy of cases and a way to feed one.

* ``cli``: argv for every command but ``calibrate``/``validate`` (they time this machine for
  minutes; their flags are fuzzed by their own tests), valid and adversarial values per option;
* ``hardware``: catalog YAML files with lines replaced, dropped, duplicated, re-indented or
  corrupted (wrong units, extreme and denormal quantities, failing tags, control characters);
* ``config``: bundled config.json files with keys set to values of every JSON type, removed,
  duplicated (as text) or nested deep, and NaN/Infinity tokens;
* ``workload``: workload YAML built from the operator registry (kinds, fields and nested repeat
  blocks with valid and adversarial values), sometimes corrupted as text;
* ``onnx``: small ONNX graphs built with ``onnx.helper`` (random wiring, so cycles and dangling
  inputs; zero, negative and dynamic dimensions; STRING and other element types; the unfused
  attention pattern), and serialized models truncated or with bytes flipped.

``trace`` (request traces through ``serve``) and ``sweep`` (sweep specs through ``sweep run``)
live in ``surface_trace.py`` and ``surface_sweep.py``, imported by :func:`_discover`.

An accepted input is also costed, and the figures of the result checked for NaN and infinity.
"""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import yaml
from hypothesis import strategies as st

from hwmodels.loader import CATALOG_DIR

from .harness import SURFACES, Surface, check_figures, run_cli_in

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "workloads"
_names = itertools.count()


def _fresh(workdir: Path, suffix: str) -> Path:
    """A file name never used before in this process (the loaders cache by file)."""
    return workdir / f"case{next(_names)}{suffix}"


def _cost_on_device(graph) -> None:
    """Analyze ``graph`` on a GPU and check every figure."""
    from hwmodels import load_device
    from roofline import analyze

    check_figures(graph.summary(), "summary")
    check_figures(analyze(graph, load_device("h100-sxm")).to_dict(), "analysis")


# -- hardware YAML --------------------------------------------------------------------------------
HW_FILES = sorted(CATALOG_DIR.glob("*.yaml"))
# Replacement values: wrong types, wrong units, extreme, denormal and non-finite quantities,
# YAML syntax fragments and tags that fail to construct.
HW_JUNK = ["", "0", "-1", ".nan", ".inf", "null", "true", "[]", "{}", "[1, 2]", "{a: 1}", "'3 TB'", "3 TB/s",
           "80 GiB", "700 W", "1.98 GHz", "250 ns", "5 pJ/B", "1 TFLOP/s", "nan W", "-5 W", "0 s", "1/0 B/s",
           "3 TB/s; 2", "!!python/object:os.system", "*undefined", "&a x", "h100-sxm", "self.yaml",
           "\"\\x00\"", "[unclosed", "{bad: [", "é", "1e400 B", "gpu", "system", "~",
           "1e-310 TB/s", "1e-320 GB/s", "1e300 J/FLOP", "1e-320 TFLOP/s", "400 s", "0.5 MB/s", "1e30 TB/s",
           "1e-300 s", "2e-308 W", "!!float abc", "!!int 3.5", "!!timestamp 2020-99-99", "!!binary '%%'",
           "1000000000", "1e9", "99999999999999999999", "9223372036854775808", "\0", "\x01"]


def mutate_lines(text: str, rnd: random.Random, junk: list[str]) -> str:
    """``text`` with one to three lines changed: a value replaced, a line dropped, a key misspelled,
    a line duplicated or re-indented, or one character flipped."""
    lines = text.splitlines() or [""]
    for _ in range(rnd.randint(1, 3)):
        i = rnd.randrange(len(lines))
        line = lines[i]
        op = rnd.randrange(6)
        if op == 0 and ":" in line:
            lines[i] = f"{line.split(':', 1)[0]}: {rnd.choice(junk)}"
        elif op == 1:
            del lines[i]
            lines = lines or [""]
        elif op == 2 and ":" in line:
            key, rest = line.split(":", 1)
            stripped = key.strip()
            if len(stripped) > 1:
                j = rnd.randrange(len(stripped))
                lines[i] = key.replace(stripped, stripped[:j] + stripped[j + 1:]) + ":" + rest
        elif op == 3:
            lines.insert(i, line)
        elif op == 4:
            lines[i] = ("  " + line) if rnd.random() < 0.5 else line.lstrip()
        elif line:
            j = rnd.randrange(len(line))
            lines[i] = line[:j] + rnd.choice(" :-[]{}#&*!|>'\"0x%\0\x07") + line[j + 1:]
    return "\n".join(lines) + "\n"


def run_hardware(case: tuple[str, str], workdir: Path) -> None:
    import hwmodels
    from roofline import cost
    from workloads import make_operator

    name, text = case
    path = _fresh(workdir, "-" + name)
    path.write_text(text, encoding="utf-8")
    hw = hwmodels.load_hardware(path)
    device = hw if isinstance(hw, hwmodels.Device) else hw.first_accelerator() if hw.accelerators else None
    if isinstance(hw, hwmodels.System):
        check_figures(hw.summary(), "system")
    if device is None or not device.engines:
        return
    dtype = next(iter(next(iter(device.engines.values())).peak_flops))
    for op in (make_operator("matmul", name="mm", m=4096, n=4096, k=4096, dtype=dtype),
               make_operator("elementwise", name="ew", numel=1 << 20, dtype=dtype)):
        check_figures(cost(op, device).to_dict(), f"cost of {op.kind}")


HARDWARE = st.builds(lambda path, seed: (path.name, mutate_lines(path.read_text(), random.Random(seed), HW_JUNK)),
                     st.sampled_from(HW_FILES), st.integers(0, 2**32 - 1))
SURFACES.register("hardware", Surface("hardware", HARDWARE, run_hardware,
                                      "mutated catalog YAML through load_hardware and the cost model"))


# -- config.json ----------------------------------------------------------------------------------
CONFIG_FILES = sorted((ROOT / "workloads" / "models").glob("*.json"))
JSON_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 5000), st.sampled_from([0, -1, 2**31, 2**53 + 1, 2**63, 10**30]),
    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([1e30, 1e-320, 0.5, 4096.0]),
    st.sampled_from(["false", "true", "4096", "auto", "", "llama", "mamba", "x" * 100]),
    st.lists(st.integers(-2, 4096), max_size=3), st.dictionaries(st.sampled_from(["d_state", "a"]),
                                                                 st.integers(-1, 64), max_size=2))
CONFIG_KEYS = ["model_type", "hidden_size", "num_hidden_layers", "vocab_size", "num_attention_heads",
               "num_key_value_heads", "head_dim", "intermediate_size", "max_position_embeddings",
               "tie_word_embeddings", "attention_bias", "mlp_bias", "sliding_window", "use_sliding_window",
               "num_local_experts", "num_experts_per_tok", "n_routed_experts", "kv_lora_rank", "q_lora_rank",
               "ssm_cfg", "d_model", "n_layer", "n_embd", "n_head", "rope_theta", "torch_dtype", "_source",
               "time_step_rank", "pad_vocab_size_multiple", "first_k_dense_replace", "moe_intermediate_size"]
CONFIG_EDIT = st.tuples(st.sampled_from(["set", "set", "set", "delete", "duplicate", "nan"]),
                        st.sampled_from(CONFIG_KEYS), JSON_VALUES)


def config_text(path: Path, edits: list, depth: int) -> str:
    """The JSON text of the config at ``path`` after ``edits``; ``depth`` > 0 nests one value
    that many levels deep."""
    data = json.loads(path.read_text())
    tail = []
    for op, key, value in edits:
        if op == "set":
            data[key] = value
        elif op == "delete":
            data.pop(key, None)
        elif op == "duplicate":
            tail.append(f"{json.dumps(key)}: {json.dumps(value)}")
        else:
            tail.append(f"{json.dumps(key)}: {'NaN' if value is None else 'Infinity'}")
    if depth:
        tail.append('"nested": ' + "[" * depth + "1" + "]" * depth)
    text = json.dumps(data, indent=1)
    return text[:-2] + "".join(f",\n {t}" for t in tail) + "\n}" if tail else text


def run_config(case: tuple, workdir: Path) -> None:
    from workloads import build_llm, load_config

    name, text, phase = case
    path = _fresh(workdir, "-" + name)
    path.write_text(text, encoding="utf-8")
    cfg = load_config(str(path))
    graph = build_llm(cfg, phase, batch=2, prompt_len=16, context=32)
    check_figures(graph.summary(), "summary")


CONFIG = st.builds(lambda path, edits, depth, phase: (path.name, config_text(path, edits, depth), phase),
                   st.sampled_from(CONFIG_FILES), st.lists(CONFIG_EDIT, max_size=4),
                   st.one_of(st.just(0), st.just(0), st.sampled_from([3, 300, 10_000])),
                   st.sampled_from(["decode", "prefill"]))
SURFACES.register("config", Surface("config", CONFIG, run_config,
                                    "mutated bundled config.json through load_config and build_llm"))


# -- workload YAML --------------------------------------------------------------------------------
def _operator_fields() -> dict[str, list[str]]:
    import dataclasses

    from workloads.operators import OPERATORS

    skip = {"name", "inputs", "outputs", "param_prefix"}
    return {kind: [f.name for f in dataclasses.fields(cls) if f.init and f.name not in skip]
            for kind, cls in OPERATORS.items()}


OP_FIELDS = _operator_fields()
FIELD_VALUES = st.one_of(st.integers(1, 4096), st.integers(1, 4096), st.integers(1, 64),
                         st.sampled_from([0, -1, 2**53 + 1, 2**63, 10**30, 1e308, float("inf"), float("nan"),
                                          0.5, True, None, "x", "bf16", "fp8", "int4", [], {"a": 1}]))


def _template_ops() -> list[dict]:
    """Every op of the example workloads (valid on their own), as starting points."""
    def flat(items):
        for item in items:
            if "repeat" in item:
                yield from flat(item["ops"])
            else:
                yield {k: v for k, v in item.items() if k not in ("after", "from")}

    return [op for path in sorted(EXAMPLES.glob("*.yaml")) for op in flat(yaml.safe_load(path.read_text())["ops"])]


TEMPLATE_OPS = _template_ops()


@st.composite
def workload_op(draw) -> dict:
    """An op: mostly an example's op with at most one field replaced, else one made from the
    operator registry (a kind, some of its fields, values valid and adversarial)."""
    if draw(st.integers(0, 3)):
        op = dict(draw(st.sampled_from(TEMPLATE_OPS)))
        if draw(st.booleans()):
            op[draw(st.sampled_from(sorted(op)))] = draw(FIELD_VALUES)
    else:
        kind = draw(st.sampled_from([*OP_FIELDS, "matmull", 3]))
        fields = OP_FIELDS.get(kind, ["m", "n"])
        chosen = draw(st.lists(st.sampled_from(fields), max_size=len(fields), unique=True))
        op = {"kind": kind, **{f: draw(FIELD_VALUES) for f in chosen}}
    op["name"] = draw(st.sampled_from(["a", "b", "c", "d", "e", "a.b", ""]))
    if draw(st.integers(0, 4)) == 0:
        op[draw(st.sampled_from(["after", "from"]))] = draw(st.sampled_from(["op0", "op1", "op2", "nope", 3]))
    return op


def _ops(children):
    block = st.builds(lambda repeat, name, ops: {"repeat": repeat, "name": name, "ops": ops},
                      st.one_of(st.sampled_from([1, 2, 3, 7]), st.sampled_from([1000, 10**6, 2**40, 0, -1, "2", 2.5])),
                      st.sampled_from(["blk", "layer", "blk"]), children)
    return st.lists(st.one_of(workload_op(), block), min_size=1, max_size=4)


WORKLOAD_OPS = st.recursive(st.lists(workload_op(), min_size=1, max_size=4), _ops, max_leaves=12)
META = st.one_of(st.just({}), st.just({"phase": "decode", "batch": 8, "tokens": 8}), st.dictionaries(st.sampled_from(["tokens", "batch", "tp", "pp", "phase", "microbatches"]),
                       st.one_of(st.integers(-1, 64), st.sampled_from([float("inf"), float("nan"), 1e300,
                                                                       2**63, "x", None])), max_size=3))


def _rename(items: list, counter) -> None:
    for item in items:
        item["name"] = f"op{next(counter)}"
        if "repeat" in item and isinstance(item.get("ops"), list):
            _rename(item["ops"], counter)


@st.composite
def workload_case(draw) -> str:
    ops = draw(WORKLOAD_OPS)
    if draw(st.integers(0, 9)):   # mostly unique names; sometimes the drawn ones (duplicates, dots)
        _rename(ops, itertools.count())
    doc = {"workload": "fuzz", "dtype": draw(st.sampled_from(["bf16", "bf16", "fp16", "fp8", "xx"])),
           "meta": draw(META), "ops": ops}
    text = yaml.safe_dump(doc, sort_keys=False)
    if draw(st.integers(0, 9)) == 0:   # sometimes corrupted as text too
        text = mutate_lines(text, random.Random(draw(st.integers(0, 2**32 - 1))), HW_JUNK)
    return text


def run_workload(text: str, workdir: Path) -> None:
    from workloads import load_workload

    path = _fresh(workdir, ".yaml")
    path.write_text(text, encoding="utf-8")
    _cost_on_device(load_workload(path))


def _example_mutation(path: Path, seed: int) -> str:
    return mutate_lines(path.read_text(), random.Random(seed), HW_JUNK)


WORKLOADS = st.one_of(workload_case(), workload_case(), st.builds(_example_mutation, st.sampled_from(sorted(EXAMPLES.glob("*.yaml"))),
                                                 st.integers(0, 2**32 - 1)))
SURFACES.register("workload", Surface("workload", WORKLOADS, run_workload,
                                      "generated and mutated workload YAML through load_workload and analyze"))


# -- ONNX -----------------------------------------------------------------------------------------
ONNX_OPS = ["MatMul", "MatMul", "Gemm", "Add", "Relu", "Softmax", "Conv", "MaxPool", "GlobalAveragePool",
            "LayerNormalization", "Gather", "Attention", "Reshape", "Transpose", "Concat", "Cast", "Sum",
            "BatchNormalization", "Constant", "FooBar"]
DIMS = st.one_of(*[st.sampled_from([1, 2, 4, 8, 16])] * 5, st.sampled_from([0, -1, "N", 2**40]))


@st.composite
def onnx_model(draw) -> bytes:
    """A small ONNX model: random inputs, initializers and nodes wired at random."""
    import numpy as np
    from onnx import TensorProto as T
    from onnx import helper, numpy_helper

    elem = st.sampled_from([T.FLOAT, T.FLOAT, T.FLOAT16, T.INT64, T.STRING, T.BOOL, T.UINT32, T.UNDEFINED])
    inputs, names = [], []
    for i in range(draw(st.integers(1, 3))):
        shape = draw(st.lists(DIMS, min_size=0, max_size=4))
        inputs.append(helper.make_tensor_value_info(f"x{i}", draw(elem), shape))
        names.append(f"x{i}")
    inits = []
    for i in range(draw(st.integers(0, 2))):
        shape = draw(st.lists(st.sampled_from([1, 2, 4, 8]), min_size=1, max_size=3))
        inits.append(numpy_helper.from_array(np.zeros(shape, dtype=np.float32), f"w{i}"))
        names.append(f"w{i}")
    count = draw(st.integers(1, 6))
    outs = [f"t{j}" for j in range(count)]
    nodes = []
    for j in range(count):
        pool = names + outs + ["missing", ""]    # later outputs: out of order or a cycle
        op_type = draw(st.sampled_from(ONNX_OPS))
        ins = draw(st.lists(st.sampled_from(pool), min_size=0, max_size=3))
        attrs = draw(st.dictionaries(st.sampled_from(["axis", "transB", "group", "kernel_shape", "training_mode"]),
                                     st.one_of(st.integers(-3, 3), st.lists(st.integers(-1, 3), min_size=1,
                                                                              max_size=2)), max_size=2))
        nodes.append(helper.make_node(op_type, ins, [outs[j]], name=draw(st.sampled_from([f"n{j}", "", "n0"])),
                                      **attrs))
        names.append(outs[j])
    out_info = [helper.make_tensor_value_info(outs[-1], draw(elem), None)]
    graph = helper.make_graph(nodes, "fuzz", inputs, out_info, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model.SerializeToString()


@st.composite
def attention_pattern(draw) -> bytes:
    """The unfused attention pattern MatMul(Q, K^T) -> Softmax -> MatMul(P, V) with random dims."""
    from onnx import TensorProto as T
    from onnx import helper

    b, h, s, d = (draw(DIMS) for _ in range(4))
    nodes = [helper.make_node("MatMul", ["q", "kt"], ["s"], name="qk"),
             helper.make_node("Softmax", ["s"], ["p"], name="sm", axis=-1),
             helper.make_node("MatMul", ["p", "v"], ["o"], name="pv")]
    inputs = [helper.make_tensor_value_info("q", T.FLOAT, [b, h, s, d]),
              helper.make_tensor_value_info("kt", T.FLOAT, [b, h, d, s]),
              helper.make_tensor_value_info("v", T.FLOAT, [b, h, s, d])]
    graph = helper.make_graph(nodes, "attn", inputs, [helper.make_tensor_value_info("o", T.FLOAT, None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def _corrupt(data: bytes, how: str, seed: int) -> bytes:
    rnd = random.Random(seed)
    if how == "empty":
        return b""
    if how == "truncate":
        return data[:rnd.randrange(len(data) + 1)]
    raw = bytearray(data)
    for _ in range(rnd.randint(1, 4)):
        raw[rnd.randrange(len(raw))] = rnd.randrange(256)
    return bytes(raw)


ONNX_MODELS = st.one_of(
    onnx_model(), attention_pattern(),
    st.builds(_corrupt, st.one_of(onnx_model(), attention_pattern()),
              st.sampled_from(["empty", "truncate", "flip", "flip"]), st.integers(0, 2**32 - 1)))
ONNX = st.tuples(ONNX_MODELS, st.sampled_from(["error", "elementwise"]), st.sampled_from([None, 1, 4]))


def run_onnx(case: tuple, workdir: Path) -> None:
    from workloads.onnx_import import import_onnx

    data, unknown_ops, batch = case
    path = _fresh(workdir, ".onnx")
    path.write_bytes(data)
    _cost_on_device(import_onnx(path, unknown_ops=unknown_ops, batch=batch))


SURFACES.register("onnx", Surface("onnx", ONNX, run_onnx, "generated and corrupted ONNX through import_onnx",
                                  requires=("onnx",)))


# -- CLI arguments --------------------------------------------------------------------------------
SKIP_COMMANDS = {("calibrate",), ("validate",)}
HW_REFS = ["h100-sxm", "a100-sxm-80gb", "hgx-h100", "tpu-v5e-8", "xeon-8480", "alveo-u280", "mi300x", "host",
           "h100", "", "nope.yaml", "/dev/null", str(CATALOG_DIR / "h100-cxl.yaml")]
MODEL_REFS = ["llama-2-7b", "mamba-2.8b", "mixtral-8x7b", "deepseek-v2-lite", "gpt3-175b", "llama-3.1-70b",
              str(EXAMPLES / "toy_decoder.yaml"), str(EXAMPLES / "cnn.yaml"), str(EXAMPLES / "my-llama-config.json"),
              "llama", "", "x.onnx", "x.json"]
INTS = st.one_of(st.integers(1, 8).map(str), st.integers(1, 8).map(str), st.integers(-2, 4096).map(str),
                 st.sampled_from(["0", "-1", "2", "64", "1024", "9223372036854775808", "1" * 20, "1e3", "abc", "",
                                  "1" + "0" * 400]))
FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr),
                   st.sampled_from(["0.5", "1", "0", "-1", "nan", "inf", "1e308", "1e-320", "x", ""]))
WORDS = st.sampled_from(["bf16", "fp16", "fp8", "int4", "int8", "fp32", "decode", "prefill", "ring", "x", "",
                         "llama-2-7b", "é", "-", "--x"])


def _commands() -> list[tuple[tuple[str, ...], object]]:
    """(command words, parser) of every leaf command of the CLI."""
    from reports.cli import build_parser

    def walk(parser, words):
        sub = parser._subparsers
        if sub is None:
            return [(words, parser)]
        out = []
        for action in sub._group_actions:
            for name, child in (action.choices or {}).items():
                if (*words, name) not in SKIP_COMMANDS:
                    out += walk(child, (*words, name))
        return out or [(words, parser)]

    return walk(build_parser(), ())


COMMANDS = _commands()


def _values_for(action, workdir_token: str):
    dest = action.dest
    if action.choices:
        return st.one_of(st.sampled_from(list(action.choices)), st.sampled_from(list(action.choices)), WORDS)
    if dest == "hw" or dest == "files":
        return st.sampled_from(HW_REFS)
    if dest in ("model", "ref"):
        return st.one_of(st.sampled_from(MODEL_REFS), st.sampled_from(HW_REFS))
    if dest in ("trace", "plot", "out", "html", "csv"):
        return st.sampled_from([f"{workdir_token}/t.json", f"{workdir_token}/p.png", f"{workdir_token}/p.svg",
                                "", " ", "/nonexistent/dir/x.json", f"{workdir_token}/x.txt"])
    if dest == "kind":
        from workloads.operators import OPERATORS
        return st.one_of(st.sampled_from(sorted(OPERATORS)), WORDS)
    name = getattr(action.type, "__name__", "")
    if name == "int":
        return INTS
    if name in ("float", "_number"):
        return st.one_of(INTS, FLOATS)
    return st.one_of(WORDS, INTS)


@st.composite
def cli_case(draw) -> list[str]:
    """argv for one command; ``{work}`` stands for the case's work folder."""
    words, parser = draw(st.sampled_from(COMMANDS))
    argv = list(words)
    actions = [a for a in parser._actions if a.dest != "help"]
    optional = [a for a in actions if a.option_strings and not a.required]
    chosen = [a for a in actions if a.required or not a.option_strings]
    chosen += draw(st.lists(st.sampled_from(optional), max_size=5, unique_by=lambda a: a.dest)) if optional else []
    for action in chosen:
        if action.option_strings:
            argv.append(draw(st.sampled_from(action.option_strings)))
        if action.nargs == 0:
            continue
        argv.append(draw(_values_for(action, "{work}")))
    if draw(st.integers(0, 9)) == 0:
        argv.append(draw(st.sampled_from(["--help", "--bogus", "extra", "--format=json"])))
    return argv


def run_cli_case(argv: list[str], workdir: Path) -> None:
    argv = [a.replace("{work}", str(workdir)) for a in argv]
    out = run_cli_in(argv, workdir)
    if "json" in argv and out.strip().startswith(("{", "[")):
        check_figures(json.loads(out), "stdout")


SURFACES.register("cli", Surface("cli", cli_case(), run_cli_case,
                                 "argv of every command (but calibrate/validate) through the CLI in-process"))


# -- surfaces added by other parts of the project --------------------------------------------------
def _discover() -> None:
    """Import every ``tests/fuzz/surface_<name>.py``: a new input surface (request traces, sweep
    specs) is one such module that calls ``SURFACES.register(...)``; CI and run.py then fuzz it."""
    import importlib

    for path in sorted(Path(__file__).parent.glob("surface_*.py")):
        importlib.import_module(f"{__package__}.{path.stem}")


_discover()
