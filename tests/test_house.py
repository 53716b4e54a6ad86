"""The house: one registry style at every extension point, each word list once, imports one way,
docs that follow the code, and warnings/labels/units a user reads."""

from __future__ import annotations

import ast
import subprocess
import sys
import typing
import warnings
from pathlib import Path

import networkx as nx
import pytest
import yaml
from clitools import run
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import hwmodels
from hwmodels.errors import InputError, RidgelineWarning
from hwmodels.host import HostFacts, raw_from_facts
from hwmodels.kinds import DEVICE_KINDS, ENGINE_KINDS, HARDWARE_KINDS, LINK_KINDS, MEMORY_KINDS
from hwmodels.registry import Registry
from hwmodels.schema import DeviceSpec, EngineSpec, LinkSpec, MemoryLevelSpec
from hwmodels.units import COMPUTABLE, format_quantity_exact, parse_quantity
from reports.cli import build_parser, main
from reports.commands import COMMANDS
from roofline.costs import COSTS
from simulator import simulate
from workloads import OPERATORS, load_workload
from workloads.graph import Graph
from workloads.importers import IMPORTERS
from workloads.operators import Elementwise
from workloads.yaml_format import loads_workload

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("hwmodels", "workloads", "roofline", "simulator", "calibration", "sweeps", "reports")
CNN = ROOT / "examples" / "workloads" / "cnn.yaml"


# ------------------------------------------------------------------ one registry style
def test_every_extension_point_is_a_registry():
    for reg in (OPERATORS, COSTS, IMPORTERS, COMMANDS):
        assert isinstance(reg, Registry)
    assert OPERATORS["matmul"].kind == "matmul" and "attention" in OPERATORS
    with pytest.raises(InputError, match="did you mean 'matmul'"):
        OPERATORS.get("matmull")


def test_a_new_file_type_plugs_in_by_one_registration(tmp_path):
    seen = []

    def import_toy(path, **knobs):
        seen.append((path.name, knobs))
        g = Graph(name="toy")
        g.add(Elementwise(name="e", numel=4))
        return g

    IMPORTERS.register(".toy", import_toy, help="a test's file type")
    try:
        g = load_workload(tmp_path / "w.TOY", batch=2)      # suffixes compare lower-case
    finally:
        IMPORTERS.unregister(".toy")
    assert seen == [("w.TOY", {"batch": 2})] and [op.name for op in g.ops] == ["e"]
    assert ".toy" not in IMPORTERS and {".yaml", ".yml", ".onnx"} <= set(IMPORTERS)


def test_a_new_command_plugs_in_by_one_registration(capsys):
    @COMMANDS.register("hello", help="say hello")
    def hello_command(parser):
        parser.add_argument("--name", default="world")
        parser.set_defaults(func=lambda args: print(f"hello {args.name}") or 0)

    try:
        code, out, _ = run(capsys, "hello", "--name", "house")
        assert (code, out) == (0, "hello house\n")
        sub = next(a for a in build_parser()._subparsers._group_actions)
        assert list(sub.choices) == COMMANDS.names()
    finally:
        COMMANDS.unregister("hello")
    with pytest.raises(SystemExit) as stop:
        main(["simulte"])
    assert stop.value.code == 2 and "did you mean 'simulate'" in capsys.readouterr().err


def test_top_level_help_lists_every_registered_command(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    out = capsys.readouterr().out
    assert stop.value.code == 0
    for name in COMMANDS:
        assert f"\n    {name}" in out


def test_docs_extending_is_generated_from_the_current_registries():
    # a fresh interpreter: registrations made by other tests do not leak into the page
    fresh = subprocess.run([sys.executable, "-m", "reports.extending"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout
    assert fresh == (ROOT / "docs" / "extending.md").read_text(encoding="utf-8"), \
        "docs/extending.md is stale: python -m reports.extending > docs/extending.md"
    for name in ("matmul", "memcopy", ".onnx", "simulate", "hw"):
        assert f"\n{name} " in fresh


# ------------------------------------------------------------------ each word list once
def test_kinds_are_written_once_and_used_by_schema_cli_and_docs(capsys):
    assert typing.get_args(DeviceSpec.model_fields["kind"].annotation) == DEVICE_KINDS
    assert typing.get_args(EngineSpec.model_fields["kind"].annotation) == ENGINE_KINDS
    assert typing.get_args(MemoryLevelSpec.model_fields["kind"].annotation) == MEMORY_KINDS
    assert typing.get_args(LinkSpec.model_fields["kind"].annotation) == LINK_KINDS
    hw = build_parser()._subparsers._group_actions[0].choices["hw"]
    kind = next(a for a in hw._subparsers._group_actions[0].choices["list"]._actions if a.dest == "kind")
    assert tuple(kind.choices) == HARDWARE_KINDS == (*DEVICE_KINDS, "system")
    with pytest.raises(SystemExit) as stop:
        main(["hw", "list", "--kind", "gpx"])
    assert stop.value.code == 2 and "did you mean 'gpu'" in capsys.readouterr().err
    internals = (ROOT / "docs" / "internals.md").read_text(encoding="utf-8")
    for words in (DEVICE_KINDS, ENGINE_KINDS, MEMORY_KINDS, LINK_KINDS):
        assert f"`{' '.join(words)}`" in internals


# ------------------------------------------------------------------ imports run one way
# A result's .plot() may stay a thin call into reports/ (drawing lives there): an import inside a
# function named here, and nowhere else, may point up the layers. SimResult and ServeResult draw,
# trace and summarise themselves for Jupyter through reports.views; Sweep.plot calls
# reports.sweep_plot.
THIN_CALLS = ("plot", "trace", "write_trace", "_repr_html_")


def _imports(tree: ast.AST):
    """(import node, name of the function it sits in or None at module level) for every import."""
    def walk(node, function):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child, function
            inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            yield from walk(child, inner)
    yield from walk(tree, None)


def _import_graph() -> nx.DiGraph:
    """Project module -> project module it imports (module-level or inside a function); each edge
    knows the functions its imports sit in (``functions``; None: at module level)."""
    files = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
             for layer in LAYERS if (ROOT / layer).is_dir() for p in (ROOT / layer).rglob("*.py")}
    graph = nx.DiGraph()
    for module, path in files.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node, function in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                targets = [f"{base}.{a.name}" for a in node.names] + [base]
            for target in targets:
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if target and target != module and not module.startswith(target + "."):
                    graph.add_edge(module, target)
                    graph.edges[module, target].setdefault("functions", set()).add(function)
                    break
    return graph


def _thin_call(graph: nx.DiGraph, a: str, b: str) -> bool:
    """Whether every import of ``b`` in ``a`` is a result's thin call into reports/ (THIN_CALLS)."""
    return b.startswith("reports.") and graph.edges[a, b]["functions"] <= set(THIN_CALLS)


def test_no_import_cycles_and_no_import_against_the_layers():
    graph = _import_graph()
    cycles = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    assert cycles == []
    upward = [(a, b) for a, b in graph.edges
              if LAYERS.index(a.split(".")[0]) < LAYERS.index(b.split(".")[0])]
    assert [e for e in upward if not _thin_call(graph, *e)] == []
    assert not any(b.startswith("reports") for a, b in graph.edges if a.startswith("calibration"))


def test_the_import_checks_see_function_level_imports_and_thin_calls():
    # the checks above cannot pass by not looking: an import inside a function is an edge too (so
    # it can close a cycle), and only a plot() may reach up into reports/
    tree = ast.parse("import a\ndef plot():\n    from reports import x\ndef draw():\n    import b\n")
    assert [(n.names[0].name if isinstance(n, ast.Import) else n.module, f) for n, f in _imports(tree)] == \
        [("a", None), ("reports", "plot"), ("b", "draw")]
    graph = _import_graph()
    assert graph.edges["sweeps.api", "reports.sweep_plot"]["functions"] == {"plot"}
    assert _thin_call(graph, "sweeps.api", "reports.sweep_plot")
    assert not _thin_call(graph, "sweeps.points", "sweeps.spec")
    assert None in graph.edges["sweeps.points", "sweeps.spec"]["functions"]
    assert graph.edges["sweeps.jobs", "simulator.simulate"]["functions"] == {"run_simulate"}


# ------------------------------------------------------------------ what a user reads
SPILLING = ("--hw", "h100-sxm", "--model", "llama-2-7b", "--phase", "decode", "--batch", "64",
            "--context", "4096", "--top", "0", "--no-timeline")


def test_a_spill_warns_in_the_python_api():
    from workloads import build_llm

    # KV cache: 2 (K, V) x 32 layers x 4096 hidden x 2 B x 64 sequences x 4097 tokens = 137 GB > 85 GB
    graph = build_llm("llama-2-7b", "decode", batch=64, context=4096)
    with pytest.warns(RidgelineWarning, match=r"KV cache 137 GB does not fit in hbm \(85 GB"):
        simulate(graph, "h100-sxm")


def test_a_spill_warning_is_printed_once_by_the_cli(capsys):
    code, out, err = run(capsys, "simulate", *SPILLING, "--format", "json")
    assert code == 0 and out.startswith("{")
    lines = [line for line in err.splitlines() if "does not fit" in line]
    assert len(lines) == 1 and lines[0].startswith("warning: ")


def test_a_device_made_into_a_system_is_labelled_readably(capsys):
    assert hwmodels.system_from_device(hwmodels.load_device("h100-sxm"), 8).id == "h100-sxm-x8"
    code, out, _ = run(capsys, "simulate", "--hw", "h100-sxm", "--model", "llama-2-7b", "--phase", "decode",
                       "--batch", "1", "--context", "128", "--top", "0")
    assert code == 0 and "h100-sxm-x1 (1 accelerator(s)" in out


def test_a_cnn_reports_samples_per_second_not_tokens(capsys):
    res = simulate(load_workload(CNN), "h100-sxm")
    assert res.tokens == 0 and res.throughput_tok_s is None
    # meta.samples: 32 images per step
    assert res.samples == 32 and res.throughput_samples_s == pytest.approx(32 / res.latency_s, rel=1e-12)
    code, out, _ = run(capsys, "simulate", "--hw", "h100-sxm", "--model", str(CNN), "--top", "0")
    assert code == 0 and "samples/s" in out and "tok/s" not in out


def test_workload_meta_samples_is_checked(capsys):
    ops = "ops:\n  - {name: e, kind: elementwise, numel: 4}\n"
    with pytest.raises(InputError, match=r"meta\.samples: must be a non-negative number"):
        loads_workload("meta: {samples: -1}\n" + ops)
    with pytest.raises(InputError, match="tokens .* or samples .* not both"):
        loads_workload("meta: {tokens: 4, samples: 4}\n" + ops)


def test_hw_show_host_writes_figures_with_units():
    # 2 cores x 2.5 GHz x 8 fp32 lanes (AVX2) x 2 FLOP (FMA) x 2 FMA pipes = 160e9 FLOP/s;
    # caches: 48 KiB L1 and 2 MiB L2 per core, 2 instances of each
    facts = HostFacts(physical_cores=2, logical_cpus=2, clock_hz=2.5e9, flags={"avx2", "fma"},
                      caches={1: (48 * 1024, 2), 2: (2 * 2**20, 2)})
    raw = raw_from_facts(facts)
    assert raw["engines"]["vector"]["peak"]["fp32"] == "160 GFLOP/s"
    assert raw["memory"]["l1"]["capacity"] == "96 KiB"       # 2 x 48 KiB
    assert raw["memory"]["l2"]["capacity"] == "4 MiB"        # 2 x 2 MiB
    text = yaml.safe_dump(raw)
    assert "000000 " not in text                              # no raw 1e6+ figures before a unit


@settings(deadline=None, max_examples=200)      # the first example loads pint
@given(st.floats(min_value=1e-12, max_value=1e18, allow_nan=False, allow_infinity=False),
       st.sampled_from(["compute_rate", "bandwidth", "capacity", "power", "time"]))
def test_exact_formatting_reads_back_the_same_number(value, kind):
    low, high = COMPUTABLE[kind]
    assume(low <= value <= high)     # outside, parse_quantity refuses the value by design
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert parse_quantity(format_quantity_exact(value, kind), kind) == value
