"""HTML and Markdown reports of saved results: self-contained, every section of the kind filled,
the headline figures those of the JSON, bad input an exit code 2, new kinds one registration."""

import base64
import json
import re

import pytest
from clitools import run

pytest.importorskip("jinja2")

from reports.html import REPORT_KINDS, REPORT_SECTIONS, ReportKind, Section, Text, build_report  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("kind, sections", [
    ("simulate", ["roofline", "timeline", "bottleneck", "memory", "energy", "manifest"]),
    ("roofline", ["roofline", "bounds", "manifest"]),
    ("validate", ["validation", "manifest"]),
    ("sweep", ["pareto", "points", "spec", "manifest"]),
    ("serve", ["serving", "deployment", "manifest"]),
    ("op", ["roofline", "operator", "manifest"]),
])
def test_each_kind_is_one_self_contained_page_with_its_sections(result_reports, kind, sections):
    html = result_reports[kind].read_text()
    assert f'data-kind="{kind}"' in html
    assert re.findall(r'<section id="([a-z_]+)">', html) == sections
    # Nothing is fetched: no http(s) URL in any src/href, no <link>, every image a PNG data URI.
    assert not re.search(r'(src|href)="(https?:)?//', html) and "<link" not in html
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == html.count("<img ") >= 1
    assert all(base64.b64decode(data).startswith(PNG_MAGIC) for data in images)
    assert "<style>" in html and "table.sortable" in html


def test_simulation_headline_and_manifest_repeat_the_result(result_docs, result_reports):
    doc = json.loads(result_docs["simulate"].read_text())
    html = result_reports["simulate"].read_text()
    # latency in the headline as hwmodels formats it: 4 significant digits with its unit
    from hwmodels.units import format_quantity

    assert format_quantity(doc["latency_s"], "time") in html
    assert "llama-2-7b decode, batch 4, context 256, bf16, tp 2" in html
    m = doc["manifest"]
    assert m["command"].startswith("ridgeline simulate --hw hgx-h100 --tp 2")
    assert m["seed"] == 0 and m["workload"]["batch"] == 4 and m["workload"]["tp"] == 2
    assert m["hardware"][0]["ref"] == "hgx-h100" and "accelerators" in m["hardware"][0]["yaml"]
    assert m["command"] in html and m["ridgeline_version"] in html
    # every operator of the workload is placed on the roofline: the distinct ones carry their counts
    import workloads
    from workloads import StepOptions

    graph = workloads.load_workload("llama-2-7b", StepOptions(phase="decode", batch=4, context=256, tp=2))
    assert sum(p["count"] for p in doc["roofline"]["points"]) == len(graph.ops)


def test_simulation_headline_shows_the_intervals_of_its_json(result_docs, result_reports):
    doc = json.loads(result_docs["simulate"].read_text())
    html = result_reports["simulate"].read_text()
    from hwmodels.units import format_quantity

    lo, hi = doc["latency_s_interval"]
    assert lo <= doc["latency_s"] <= hi
    # the headline gives the 80% interval as the JSON has it (the timeline's title is inside its PNG)
    assert f"80% interval: {format_quantity(lo, 'time')} - {format_quantity(hi, 'time')}" in html
    assert f"{doc['regime']} regime" in html


def test_cli_gantt_title_carries_the_latency_interval(capsys, tmp_path, monkeypatch):
    import matplotlib.figure

    titles = []
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig",
                        lambda fig, *a, **k: titles.append(fig.axes[0].get_title()))
    code, out, _ = run(capsys, "simulate", "--hw", "h100-sxm", "--model", "llama-2-7b", "--phase", "decode",
                       "--batch", "1", "--context", "128", "--plot", str(tmp_path / "g.png"), "--format", "json")
    doc = json.loads(out)
    from hwmodels.units import format_quantity

    lo, hi = doc["latency_s_interval"]
    assert code == 0 and titles[0].endswith(
        f"(80% interval: {format_quantity(lo, 'time')} - {format_quantity(hi, 'time')})")


def test_operator_report_repeats_its_cost(result_docs, result_reports):
    doc = json.loads(result_docs["op"].read_text())
    html = result_reports["op"].read_text()
    from hwmodels.units import format_quantity

    # attention b4 x 32 heads, q 1024 over kv 4096, d 128, causal: QK^T and PV are 2 x 2 x b h q kv d
    # FLOPs, the causal mask keeps (kv - q) q + q (q + 1) / 2 of the q kv products
    kept = (4096 - 1024) * 1024 + 1024 * 1025 / 2
    assert doc["op"]["flops"]["matrix:bf16"] == pytest.approx(4 * 4 * 32 * 128 * kept)
    assert "Operator: attention batch=4 heads=32 kv_heads=8 q_len=1024 kv_len=4096" in html
    lo, hi = doc["latency_s_interval"]
    assert f"{format_quantity(doc['latency_s'], 'time')} (80% interval: {format_quantity(lo, 'time')} - " in html
    assert doc["manifest"]["command"].startswith("ridgeline op attention --hw a100-sxm-80gb")
    assert ">compute:tensor</td>" in html and ">memory:hbm</td>" in html


def test_validation_report_lists_every_public_row(result_docs, result_reports):
    doc = json.loads(result_docs["validate"].read_text())
    html = result_reports["validate"].read_text()
    rows = doc["public"]["rows"]
    assert rows and all(f">{r['name']}<" in html for r in rows)
    err = next(r for r in rows if r["error"] is not None)
    assert f">{err['error']:+.1%}<" in html   # signed relative error, as the table formats it
    # per held-out class: the signed mean error and the interval coverage the JSON holds
    cov = doc["public"]["interval_coverage"]["collective"]
    signed = doc["public"]["groups"]["held-out"]["collective"]["signed_mean_error"]
    assert "inside 80% interval" in html and f">{cov['inside']}/{cov['n']}<" in html
    assert f">{signed:+.1%}<" in html


def test_sweep_report_draws_the_front_and_lists_every_point(result_docs, result_reports):
    import pandas as pd

    from sweeps.pareto import pareto_front

    frame = pd.read_parquet(result_docs["sweep"] / "results.parquet")
    html = result_reports["sweep"].read_text()
    assert len(frame) == 2 * 3 and html.count("<tr><td data-sort=\"ok\">ok</td>") == len(frame)
    front = pareto_front(frame, {"latency_s": "min", "throughput_tok_s": "max"})
    assert f"{len(front)} non-dominated points" in html
    direct = (result_docs["sweep"].parent / "sweep_direct.html").read_text()
    assert 'data-kind="sweep"' in direct and "ridgeline sweep run " in direct   # the exact command


def test_serving_report_repeats_the_metrics(result_docs, result_reports):
    doc = json.loads(result_docs["serve"].read_text())
    html = result_reports["serve"].read_text()
    m = doc["metrics"]
    assert m["completed"] == 30 and len(doc["latencies"]["ttft_s"]) == 30
    # the headline's TTFT median in ms, 4 significant digits, with its 80% interval from the JSON
    lo, hi = m["ttft_s"]["median_interval"]
    assert 0 < lo < hi      # (it may lie wholly above the median: see test_intervals)
    assert f"median {m['ttft_s']['median'] * 1e3:.4g} [{lo * 1e3:.4g}, {hi * 1e3:.4g}] ms" in html
    assert "80% intervals of the run" in html and m["interval_basis"]["serving"]["group"] in html
    assert doc["manifest"]["command"].startswith("ridgeline serve --hw h100-sxm")


def test_validate_writes_its_html_directly(result_docs):
    html = (result_docs["validate"].parent.parent / "validate_direct.html").read_text()
    assert 'data-kind="validate"' in html and '<section id="validation">' in html


def test_manifest_fingerprints_the_calibration_beside_an_overlay(tmp_path):
    import argparse
    import hashlib

    from reports.manifest import manifest

    overlay = tmp_path / "host.yaml"
    overlay.write_text("extends: h100-sxm\nname: calibrated H100\nmemory:\n  hbm:\n    bandwidth: 3 TB/s\n")
    fingerprint = tmp_path / "fingerprint.json"
    fingerprint.write_text('{"device": "cuda", "cpu_model": "test cpu", "threads_pinned": 2}')
    args = argparse.Namespace(argv=["simulate", "--hw", str(overlay), "--seed", "7"])
    m = manifest(args, hardware=[str(overlay)], meta={"model": "m", "batch": 2, "warnings": ["x"]}, seed=7)
    assert m["calibration"]["sha256"] == hashlib.sha256(fingerprint.read_bytes()).hexdigest()
    assert m["calibration"]["cpu_model"] == "test cpu" and m["seed"] == 7
    assert m["workload"] == {"model": "m", "batch": 2}          # knobs, not warnings
    assert m["command"] == f"ridgeline simulate --hw {overlay} --seed 7"
    assert "bandwidth: 3 TB/s" in m["hardware"][0]["yaml"]      # the overlay, resolved
    assert manifest(args, hardware=["h100-sxm"])["calibration"] is None


def test_markdown_with_its_figures_beside_it(capsys, tmp_path, result_docs):
    out = tmp_path / "sim.md"
    code, _, _ = run(capsys, "report", str(result_docs["simulate"]), "--markdown", "--out", str(out))
    assert code == 0
    text = out.read_text()
    links = re.findall(r"!\[[a-z]+\]\((sim_figures/[a-z]+\.png)\)", text)
    assert {link.split("/")[1] for link in links} == {"roofline.png", "timeline.png", "sensitivity.png", "power.png"}
    assert all((tmp_path / link).read_bytes().startswith(PNG_MAGIC) for link in links)
    assert text.startswith("# Simulation: llama-2-7b decode") and "| operator | kind |" in text


def test_html_straight_from_simulate_and_json_from_report(capsys, tmp_path):
    html = tmp_path / "direct.html"
    code, out, err = run(capsys, "simulate", "--hw", "h100-sxm", "--model", "llama-2-7b", "--phase", "decode",
                         "--batch", "1", "--context", "128", "--html", str(html))
    assert code == 0 and "latency" in out and f"wrote {html}" in err
    assert '<section id="timeline">' in html.read_text()
    code, out, _ = run(capsys, "report", str(html), "--format", "json")
    assert code == 2   # an HTML file is not a result document


def test_json_to_a_file_leaves_stdout_empty(capsys, tmp_path):
    path = tmp_path / "op.json"
    code, out, _ = run(capsys, "roofline", "--hw", "h100-sxm", "--model", "llama-2-7b", "--phase", "decode",
                       "--batch", "1", "--context", "128", "--format", "json", "--out", str(path))
    assert code == 0 and out == ""
    doc = json.loads(path.read_text())
    assert doc["kind"] == "roofline" and doc["plot"]["device"] == "h100-sxm"
    code, out, _ = run(capsys, "report", str(path), "--format", "json")
    assert code == 0 and json.loads(out) == {"kind": "roofline", "written": [str(path.with_suffix(".html"))]}
    code, out, err = run(capsys, "roofline", "--hw", "h100-sxm", "--model", "llama-2-7b", "--phase", "decode",
                         "--html", str(tmp_path / "no" / "such" / "dir.html"))
    assert code == 2 and out == "" and "dir.html" in err and "Traceback" not in err


@pytest.mark.parametrize("content, message", [
    ("not json", "not JSON"),
    ('{"hello": 1}', "not a Ridgeline result"),
    ('{"kind": "simulat"}', "did you mean 'simulate'"),
    ("[1, 2]", "JSON object"),
])
def test_bad_result_files_exit_2_with_one_line(capsys, tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    code, out, err = run(capsys, "report", str(path), "--out", str(tmp_path / "x.html"))
    assert code == 2 and out == "" and message in err and "Traceback" not in err


def test_missing_result_file_exits_2(capsys, tmp_path):
    code, _, err = run(capsys, "report", str(tmp_path / "none.json"))
    assert code == 2 and "no such file" in err


def test_a_new_kind_plugs_in_with_one_registration_each(monkeypatch):
    monkeypatch.setattr(REPORT_KINDS, "_entries", dict(REPORT_KINDS._entries))
    monkeypatch.setattr(REPORT_SECTIONS, "_entries", dict(REPORT_SECTIONS._entries))
    REPORT_SECTIONS.register("answer", lambda doc: Section("answer", "The answer", [Text(str(doc["answer"]))]))
    REPORT_KINDS.register("oracle", ReportKind(detect=lambda d: "answer" in d, title=lambda d: ("Oracle", "asked"),
                                               headline=lambda d: [("answer", str(d["answer"]))],
                                               sections=("answer", "manifest")))
    report = build_report({"answer": 42})
    assert report.kind == "oracle" and [s.key for s in report.sections] == ["answer", "manifest"]
    assert report.sections[0].blocks[0].text == "42"


def test_without_jinja2_html_is_one_clear_error(capsys, tmp_path, monkeypatch):
    import sys

    # as on a machine without the html extra: importing jinja2 or markupsafe raises ImportError
    monkeypatch.setitem(sys.modules, "jinja2", None)
    monkeypatch.setitem(sys.modules, "markupsafe", None)
    code, _, err = run(capsys, "op", "matmul", "--hw", "h100-sxm", "--m", "64", "--n", "64", "--k", "64",
                       "--html", str(tmp_path / "r.html"))
    assert code == 2 and "HTML reports need Jinja2: pip install 'ridgeline[html]'" in err
    assert "Traceback" not in err
