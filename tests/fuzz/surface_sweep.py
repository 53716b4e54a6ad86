"""``sweep``: sweep specs for ``ridgeline sweep run SPEC --out DIR``.

Cases start from the example specs (examples/sweeps/*.yaml), shrunk to a few points (two values per
axis, two steps per range, a few requests per serve point), then edited: axes added with unknown
paths, wrong units, empty or reversed ranges, huge grids and mixed types; bad modes, objectives,
constraints, prices, seeds and jobs; fields removed; and sometimes the YAML text corrupted line by
line. Each runs through the CLI with one worker. A spec the parser accepts with more than
:data:`MAX_POINTS` points is counted as accepted without running (its size, not its validity,
would cost the time), so every case stays short.
"""

from __future__ import annotations

import copy
import json
import random
import shutil
from pathlib import Path

import yaml
from hypothesis import strategies as st

from .harness import SURFACES, Surface, check_figures, run_cli_in
from .surfaces import HW_JUNK, _fresh, mutate_lines

SWEEPS = Path(__file__).resolve().parents[2] / "examples" / "sweeps"
MAX_POINTS = 4


def _example_specs() -> dict[str, dict]:
    """The example sweep specs (files with ``axes``), each cut to at most two values per axis."""
    specs = {}
    for path in sorted(SWEEPS.glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        if not isinstance(data, dict) or "axes" not in data:
            continue   # a hardware or workload file the specs refer to
        for name, values in data["axes"].items():
            if isinstance(values, list):
                data["axes"][name] = values[:2]
            elif isinstance(values, dict) and "steps" in values:
                values["steps"] = 2
        if "num_requests" in data["base"]:
            data["base"]["num_requests"] = 3
        if data["base"].get("model") == "llama-3.1-70b":
            data["axes"].pop("tp", None)
        specs[path.name] = data
    return specs


SPECS = _example_specs()
AXIS_PATHS = ["batch", "context", "tp", "pp", "phase", "dtype", "rate", "scheduler", "hw", "model",
              "hw.memory.hbm.bandwidth", "hw.memory.hbm.capacity", "hw.power.tdp", "hw.engines.tensor.peak.bf16",
              "hw.memory.nope.bandwidth", "hw.engines", "hw.", "hw", "btach", "", "base.batch", "hw.kind",
              "hw.memory.sram.capacity", "hw.engines.mxu.systolic.rows", "num_requests", "input_len", "seed"]
AXIS_VALUES = st.one_of(
    st.lists(st.sampled_from([1, 2, 8, 0, -1, 2.5, 10**30, "x", None, True, "3 TB/s", "80 GB", "700 W",
                              "2 GHz", "1 TB", ".nan", float("nan"), float("inf"), "h100-sxm", "mi300x", "decode",
                              "vllm", [], {}]), max_size=3),
    st.fixed_dictionaries({"from": st.sampled_from(["1 TB/s", "8 TB/s", 1, 0, -5, "x", "1 W", "nan TB/s"]),
                           "to": st.sampled_from(["4 TB/s", "1 TB/s", 4, 1e308, "1 s", None])},
                          optional={"steps": st.sampled_from([2, 0, 1, -3, 2.5, 10**9, "2", 10**7]),
                                    "scale": st.sampled_from(["log", "linear", "cubic", 3])}),
    st.sampled_from([None, 3, "x", {}, [[1, 2]], {"to": 3}, {"from": 1, "to": 2, "steps": 2, "extra": 1}]))
TOP_VALUES = {
    "mode": st.sampled_from(["grid", "random", "latin", "gird", "", 3, None, {"random": 2}, {"latin": 3},
                             {"random": 0}, {"random": -1}, {"random": 10**9}, {"random": "x"},
                             {"sobol": 2}, {"random": 2, "latin": 2}, []]),
    "objectives": st.one_of(st.dictionaries(st.sampled_from(["latency_s", "throughput_tok_s", "energy_j",
                                                             "cost_per_mtok", "ttft_p99_s", "bound", "nope",
                                                             "batch", "hw"]),
                                            st.sampled_from(["min", "max", "minimize", "", None, 1]), max_size=3),
                            st.sampled_from([[], "latency_s", None, ["latency_s"]])),
    "constraints": st.one_of(st.lists(st.sampled_from(
        ["fits_memory", "latency_s <= 0.5", "ttft_p99_s <= 0.5", "latency_s < nan", "latency_s <= inf",
         "latency_s >> 1", "nope <= 1", "latency_s <=", "<= 1", "batch == 2", "bound == memory",
         "latency_s <= 1e400", "fits", "", "latency_s <= 1 ms", "__import__('os')"]), max_size=3),
        st.sampled_from(["fits_memory", None, {}, 3])),
    "seed": st.sampled_from([0, 1, -1, 2**70, "x", 1.5, None, True]),
    "price_per_hour": st.sampled_from([1.0, 0, -1, float("nan"), "x", {}, {"h100-sxm": 2.0}, {"*": 3.0},
                                       {"h100-sxm": -2}, {"h100-sxm": "2 $"}, [1]]),
}
BASE_VALUES = st.sampled_from([0, -1, 1, 2**63, 1e308, float("nan"), "x", None, True, [], {}, "decode",
                               "prefill", "h100-sxm", "nope", "simulate", "serve", "analyze", "analyse",
                               "llama-3.1-8b", "bf16", "int3", "1e3", "../x.yaml"])
BASE_KEYS = ["job", "hw", "model", "phase", "batch", "context", "tp", "pp", "dtype", "num_requests",
             "input_len", "output_len", "rate", "scheduler", "seed", "bogus"]


@st.composite
def sweep_spec(draw) -> str:
    """The YAML text of an example spec with a few edits."""
    spec = copy.deepcopy(SPECS[draw(st.sampled_from(sorted(SPECS)))])
    for _ in range(draw(st.integers(0, 3))):
        edit = draw(st.integers(0, 5))
        if edit == 0:
            if not isinstance(spec.get("axes"), dict):   # an earlier edit set axes to junk
                spec["axes"] = {}
            spec["axes"][draw(st.sampled_from(AXIS_PATHS))] = draw(AXIS_VALUES)
        elif edit == 1 and isinstance(spec.get("axes"), dict) and spec["axes"]:
            spec["axes"].pop(draw(st.sampled_from(sorted(spec["axes"]))))
        elif edit == 2:
            key = draw(st.sampled_from(sorted(TOP_VALUES)))
            spec[key] = draw(TOP_VALUES[key])
        elif edit == 3 and isinstance(spec.get("base"), dict):
            spec["base"][draw(st.sampled_from(BASE_KEYS))] = draw(BASE_VALUES)
        elif edit == 4:
            spec.pop(draw(st.sampled_from(["base", "axes", "mode", "objectives", "constraints", "price_per_hour"])),
                     None)
        else:
            spec[draw(st.sampled_from(["axes", "base", "bogus"]))] = draw(st.sampled_from([None, [], 3, "x", {}]))
    text = yaml.safe_dump(spec, sort_keys=False)
    if draw(st.integers(0, 5)) == 0:
        text = mutate_lines(text, random.Random(draw(st.integers(0, 2**32 - 1))), HW_JUNK)
    return text


def _with_referenced_files(workdir: Path) -> None:
    """The hardware and workload files the example specs name by relative path, next to the case."""
    for path in SWEEPS.glob("*.yaml"):
        if not (workdir / path.name).exists():
            shutil.copy(path, workdir / path.name)


def run_sweep(text: str, workdir: Path) -> None:
    from sweeps import load_spec

    _with_referenced_files(workdir)
    path = _fresh(workdir, ".yaml")
    path.write_text(text, encoding="utf-8")
    if load_spec(path).planned_size() > MAX_POINTS:
        return
    out = path.with_suffix("")
    stdout = run_cli_in(["sweep", "run", str(path), "--out", str(out), "--workers", "1", "--format", "json"],
                        workdir)
    check_figures(json.loads(stdout), "sweep")


SURFACES.register("sweep", Surface("sweep", sweep_spec(), run_sweep,
                                   "mutated example sweep specs through `ridgeline sweep run --workers 1`"))
