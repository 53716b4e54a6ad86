"""``ridgeline op`` and ``ridgeline roofline``: JSON documents, overlays, errors."""

import json

import pytest
from clitools import run


def test_op_matmul_json(capsys):
    code, out, _ = run(capsys, "op", "matmul", "--hw", "a100-sxm-80gb", "--m", "1024", "--n", "4096",
                       "--k", "4096", "--dtype", "bf16", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["flops"] == 2 * 1024 * 4096 * 4096
    assert doc["bytes"]["hbm"] >= (1024 * 4096 + 4096 * 4096 + 1024 * 4096) * 2
    assert doc["bound"] == max(doc["times_s"], key=doc["times_s"].get)
    assert doc["intensity"]["hbm"] == pytest.approx(doc["flops"] / doc["bytes"]["hbm"])
    # the hierarchical roofline: min(peak, intensity x bandwidth at every level)
    bandwidth = {"smem": 19.5e12, "l2": 7.22e12, "hbm": 2039e9}
    assert doc["attainable_flops"] == pytest.approx(
        min([312e12] + [doc["intensity"][lv] * bw for lv, bw in bandwidth.items()]))
    assert doc["latency_s"] > doc["flops"] / 312e12


def test_op_overlay_file_changes_the_answer(capsys, tmp_path):
    overlay = tmp_path / "slow.yaml"
    overlay.write_text("extends: a100-sxm-80gb\nmemory:\n  hbm:\n    bandwidth: 1019.5 GB/s\n")
    args = ["op", "elementwise", "--numel", "100000000", "--format", "json", "--hw"]
    _, base, _ = run(capsys, *args, "a100-sxm-80gb")
    _, slow, _ = run(capsys, *args, str(overlay))
    base, slow = json.loads(base), json.loads(slow)
    assert base["bound"] == slow["bound"] == "memory:hbm"
    busy = base["latency_s"] - base["fixed_s"]
    assert slow["latency_s"] - slow["fixed_s"] == pytest.approx(busy * 2)


def test_op_attention_flags_and_booleans(capsys):
    args = ["op", "attention", "--hw", "h100-sxm", "--batch", "1", "--heads", "32", "--kv-heads", "8",
            "--q-len", "2048", "--kv-len", "2048", "--head-dim", "128", "--format", "json"]
    _, fused, _ = run(capsys, *args)
    _, unfused, _ = run(capsys, *args, "--no-fused")
    fused, unfused = json.loads(fused), json.loads(unfused)
    assert fused["op"]["fused"] is True and unfused["op"]["fused"] is False
    # the unfused kernel writes and re-reads 32 x 2048 x 2048 bf16 scores and probabilities
    assert unfused["bytes"]["hbm"] - fused["bytes"]["hbm"] == 4 * 32 * 2048 * 2048 * 2


def test_op_table_and_collective_algorithm(capsys):
    code, out, _ = run(capsys, "op", "collective", "--hw", "dgx-a100", "--collective", "all_reduce",
                       "--payload-bytes", "1e9", "--group-size", "8", "--algorithm", "tree")
    assert code == 0 and "link:nvlink" in out


def test_op_collective_json_ring_all_reduce_by_hand(capsys):
    code, out, _ = run(capsys, "op", "collective", "--hw", "dgx-a100", "--collective", "all_reduce",
                       "--payload-bytes", "1e9", "--group-size", "8", "--algorithm", "ring", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    # ring: 2 (N-1)/N x P sent per rank over NVLink; HBM reads what is sent, writes what is
    # received, and reads the local chunk of each of the N-1 reduction steps
    assert doc["link_bytes"] == {"nvlink": pytest.approx(2 * 7 / 8 * 1e9)}
    assert doc["bytes"]["hbm"] == pytest.approx(2 * 1.75e9 + 7 / 8 * 1e9)
    assert doc["bound"] == "link:nvlink"
    assert doc["times_s"]["link:nvlink"] == pytest.approx(1.75e9 / doc["rates"]["link:nvlink"])
    assert doc["rates"]["link:nvlink"] <= 300e9                      # A100 NVLink: 300 GB/s per direction
    assert doc["fixed_s"] >= 2 * 7 * 1e-6                           # 2(N-1) steps of 1 us link latency
    assert doc["latency_s"] == pytest.approx(doc["times_s"]["link:nvlink"] + doc["fixed_s"])
    assert doc["flops"] == pytest.approx(7 / 8 * 1e9 / 2)            # one add per bf16 element reduced


@pytest.mark.parametrize("size", ["1 GB", "1e9", "1000000000", "0.931322574615478515625 GiB"])
def test_op_collective_payload_bytes_takes_a_size_with_a_unit_or_a_number(capsys, size):
    code, out, _ = run(capsys, "op", "collective", "--hw", "dgx-a100", "--collective", "all_gather",
                       "--payload-bytes", size, "--group-size", "8", "--algorithm", "ring", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["op"]["payload_bytes"] == pytest.approx(1e9)        # 1 GB = 1e9 B = 1e9 / 2^30 GiB
    assert doc["link_bytes"]["nvlink"] == pytest.approx(7 / 8 * 1e9)   # ring all-gather: (N-1)/N P


@pytest.mark.parametrize("argv,fragment", [
    (["op", "collective", "--hw", "dgx-a100", "--collective", "all_reduse", "--payload-bytes", "1e9"],
     "collective: 'all_reduse' is not one of: all_reduce, all_gather, reduce_scatter, all_to_all, send_recv "
     "(did you mean 'all_reduce'?)"),
    (["op", "collective", "--hw", "dgx-a100", "--collective", "all_reduce", "--payload-bytes", "1 GB/s"],
     "payload_bytes: '1 GB/s' is a bandwidth"),
    (["op", "collective", "--hw", "dgx-a100", "--collective", "all_reduce", "--payload-bytes", "lots"],
     "payload_bytes: 'lots' is not a number followed by a unit"),
    (["op", "matmal", "--hw", "a100-sxm-80gb"], "did you mean 'matmul'"),
    (["op", "matmul", "--hw", "a100-sxm-80gb", "--m", "8", "--n", "8", "--k", "8", "--heads", "2"], "heads"),
    (["op", "matmul", "--hw", "a100-sxm-80gb", "--n", "8", "--k", "8"], "m"),
    (["op", "matmul", "--hw", "a100-sxm-80gb", "--m", "8", "--n", "8", "--k", "8", "--dtype", "fp7"], "dtype"),
    (["op", "matmul", "--hw", "a100-sxm-80gb", "--m", "8", "--n", "8", "--k", "8", "--algorithm", "ring"],
     "collectives"),
    (["op", "matmul", "--hw", "a100-sxm-81gb", "--m", "8", "--n", "8", "--k", "8"], "a100-sxm-80gb"),
    (["op", "matmul", "--hw", "cz120-cxl", "--m", "8", "--n", "8", "--k", "8"], "no compute engines"),
    (["roofline", "--hw", "a100-sxm-80gb", "--model", "llama-2-7b", "--out", "r.txt"], ".png"),
    (["roofline", "--hw", "a100-sxm-80gb", "--model", "llama-2-7x"], "llama-2-7b"),
    (["roofline", "--hw", "a100-sxm-80gb", "--model", "llama-2-7b", "--batch", "0"], "batch"),
])
def test_bad_input_exits_2_with_a_message(capsys, argv, fragment):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert fragment in err and "Traceback" not in err


def test_roofline_json_and_plot(capsys, tmp_path):
    png = tmp_path / "r.png"
    code, out, _ = run(capsys, "roofline", "--hw", "a100-sxm-80gb", "--model", "llama-2-7b", "--phase",
                       "decode", "--batch", "1", "--prompt-len", "512", "--out", str(png), "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert next(iter(doc["bound_summary"])) == "dominant"
    assert doc["bound_summary"]["dominant"] == "memory:hbm"
    assert len(doc["ops"]) > 32 * 5 and {"op", "time_s", "bound"} <= set(doc["ops"][0])
    assert png.stat().st_size > 1000


def test_roofline_table_with_two_devices(capsys, tmp_path):
    svg = tmp_path / "r.svg"
    code, out, _ = run(capsys, "roofline", "--hw", "a100-sxm-80gb", "--hw", "h100-sxm", "--model",
                       "llama-2-7b", "--phase", "prefill", "--prompt-len", "256", "--out", str(svg), "--top", "3")
    assert code == 0
    assert "a100-sxm-80gb" in out and "h100-sxm" in out and "dominant bound" in out
    assert svg.read_text().startswith("<?xml")


@pytest.mark.parametrize("argv,hint", [
    (["op", "collective", "--hw", "dgx-a100", "--collective", "all_reduce", "--payload-bytes", "1e9",
      "--algorithm", "trea"], "(did you mean 'tree'?)"),
    (["simulate", "--hw", "dgx-a100", "--model", "llama-3.1-8b", "--algorithm", "in-switch"],
     "(did you mean 'in_switch'?)"),
])
def test_a_misspelled_algorithm_exits_2_with_a_suggestion(capsys, argv, hint):
    with pytest.raises(SystemExit) as exit_info:
        run(capsys, *argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert "invalid choice" in err and hint in err
