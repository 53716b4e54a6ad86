"""Result documents of each kind, written once per test session by the CLI (``--format json
--out FILE``), for the report tests."""

import contextlib
import importlib.util
import io
from pathlib import Path

from reports.cli import main

# Small on purpose: a 2-layer-deep picture is not needed, only every section filled.
SIMULATE = ["simulate", "--hw", "hgx-h100", "--tp", "2", "--model", "llama-2-7b", "--phase", "decode",
            "--batch", "4", "--context", "256"]
ROOFLINE = ["roofline", "--hw", "a100-sxm-80gb", "--hw", "mi300x", "--model", "llama-2-7b", "--phase", "prefill",
            "--batch", "1", "--prompt-len", "256"]
OP = ["op", "attention", "--hw", "a100-sxm-80gb", "--batch", "4", "--q-len", "1024", "--kv-len", "4096",
      "--heads", "32", "--kv-heads", "8", "--head-dim", "128"]

SERVE = ["serve", "--hw", "h100-sxm", "--model", "llama-3.1-8b", "--num-requests", "30", "--rate", "10",
         "--input-len", "256", "--output-len", "16"]
SWEEP_SPEC = """\
base: {job: analyze, hw: h100-sxm, model: llama-3.1-8b, phase: decode, batch: 1, context: 512}
axes:
  hw.memory.hbm.bandwidth: [2 TB/s, 8 TB/s]
  batch: [1, 64, 512]
objectives: {latency_s: min, throughput_tok_s: max}
"""


def quiet(*argv) -> int:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return main(list(argv))


def write_docs(folder: Path) -> dict[str, Path]:
    """{kind: path of its JSON document} in ``folder``."""
    paths = {"simulate": folder / "simulate.json", "roofline": folder / "roofline.json"}
    assert quiet(*SIMULATE, "--format", "json", "--out", str(paths["simulate"])) == 0
    assert quiet(*ROOFLINE, "--format", "json", "--out", str(paths["roofline"])) == 0
    paths["op"] = folder / "op.json"
    assert quiet(*OP, "--format", "json", "--out", str(paths["op"])) == 0
    paths["serve"] = folder / "serve.json"
    assert quiet(*SERVE, "--format", "json", "--out", str(paths["serve"])) == 0
    assert quiet("validate", "--public", "--no-progress", "--out", str(folder / "validation"),
                 "--html", str(folder / "validate_direct.html")) == 0
    paths["validate"] = folder / "validation" / "validation.json"
    if importlib.util.find_spec("pyarrow") is None:   # sweeps store Parquet: no sweep kind without it
        return paths
    spec = folder / "sweep.yaml"
    spec.write_text(SWEEP_SPEC)
    assert quiet("sweep", "run", str(spec), "--out", str(folder / "sweep"), "--workers", "1",
                 "--html", str(folder / "sweep_direct.html")) == 0
    paths["sweep"] = folder / "sweep"            # a sweep's report is made from its folder
    return paths
