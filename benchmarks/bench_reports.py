"""Report speed: the HTML report of a Llama-3.1-70B TP8 decode step (timeline of every operator on
8 GPUs), its size, and each figure's drawing time; and the six-device roofline of the
compare-GPUs notebook.

Run: ``python benchmarks/bench_reports.py [--format json]``. Figures are wall-clock on this machine
(best of ``--repeat`` runs); CPU seconds are given too, since a busy machine stretches wall time.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

from _figures import print_figures

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _best(fn, repeat: int) -> tuple[float, float, object]:
    best_wall, best_cpu, out = float("inf"), float("inf"), None
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        best_wall = min(best_wall, time.perf_counter() - w0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return best_wall, best_cpu, out


def bench_simulation_report(repeat: int) -> dict:
    from reports.cli import main
    from reports.html import build_report, render_html
    from reports.html.render import read_result

    folder = Path(tempfile.mkdtemp())
    doc_path = folder / "sim.json"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        main(["simulate", "--hw", "hgx-h100", "--tp", "8", "--model", "llama-3.1-70b", "--phase", "decode",
              "--batch", "64", "--context", "4096", "--format", "json", "--out", str(doc_path), "--no-progress"])
    doc = read_result(doc_path)
    wall, cpu, report = _best(lambda: build_report(doc), repeat)
    render_wall, _, html = _best(lambda: render_html(report), repeat)
    return {"timeline_rows": len(doc["timeline"]), "result_json_bytes": doc_path.stat().st_size,
            "build_s": wall, "build_cpu_s": cpu, "render_s": render_wall, "html_bytes": len(html.encode()),
            "figures": [b.name for s in report.sections for b in s.blocks if hasattr(b, "png")]}


def bench_six_rooflines(repeat: int) -> dict:
    import hwmodels
    import workloads
    from reports.figures import png_bytes
    from roofline import analyze, plot_rooflines
    from workloads import StepOptions

    step = workloads.load_workload("llama-2-7b", StepOptions(phase="decode", batch=8, context=1024))
    analyses = [analyze(step, hwmodels.load_device(d))
                for d in ("a100-sxm-80gb", "h100-sxm", "h200-sxm", "mi300x", "tpu-v5e", "gaudi2")]
    wall, cpu, png = _best(lambda: png_bytes(plot_rooflines(analyses, ncols=3)), repeat)
    return {"panels": 6, "draw_and_encode_s": wall, "cpu_s": cpu, "png_bytes": len(png)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--format", choices=("table", "json"), default="table")
    args = parser.parse_args()
    results = {"simulation_report": bench_simulation_report(args.repeat),
               "six_rooflines": bench_six_rooflines(args.repeat)}
    print_figures(results, args.format)
    return 0


if __name__ == "__main__":
    sys.exit(main())
