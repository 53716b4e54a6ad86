"""Pictures and summaries a person reads: titles that say what was run, labels that do not
overlap, legends off the data, short reprs in Jupyter, a progress bar only for long runs."""

import io

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
from matplotlib.text import Text  # noqa: E402

import hwmodels  # noqa: E402
import workloads  # noqa: E402
from roofline import analyze, plot_rooflines  # noqa: E402
from roofline.plot import run_label  # noqa: E402
from simulator import simulate  # noqa: E402
from workloads import StepOptions  # noqa: E402


@pytest.fixture(scope="module")
def decode():
    return workloads.load_workload("llama-2-7b", StepOptions(phase="decode", batch=8, context=1024))


@pytest.fixture(scope="module")
def sim(decode):
    return simulate(decode, "h100-sxm")


def boxes_overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_run_label_names_model_phase_batch_context_dtype_parallelism():
    meta = {"model": "llama-3.1-70b", "phase": "decode", "batch": 64, "context": 4096, "dtype": "bf16", "tp": 8,
            "pp": 1}
    assert run_label(meta) == "llama-3.1-70b decode, batch 64, context 4096, bf16, tp 8"
    assert run_label({"model": "m", "phase": "prefill", "batch": 2, "prompt_len": 512, "context": 0}) == \
        "m prefill, batch 2, prompt 512"


def test_roofline_title_once_labels_apart_and_legend_below(decode):
    h100 = hwmodels.load_device("h100-sxm")
    fig = plot_rooflines([analyze(decode, h100), analyze(decode, hwmodels.load_device("a100-sxm-80gb"))])
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    assert fig._suptitle.get_text() == "Roofline: llama-2-7b decode, batch 8, context 1024, bf16"
    for ax in fig.axes:
        assert "llama" not in ax.get_title()          # the workload is said once, in the suptitle
        labels = [t for t in ax.texts if "of time" in t.get_text()]
        assert len(labels) == 5
        # the text and its box, leader line left out (Annotation's own extent includes the arrow)
        extents = [Text.get_window_extent(t, renderer) for t in labels]
        assert not any(boxes_overlap(a, b) for i, a in enumerate(extents) for b in extents[i + 1:])
        assert "FLOP/byte" in ax.get_xlabel()
    legend = fig.legends[0].get_window_extent(renderer)
    assert all(legend.y1 <= ax.get_window_extent(renderer).y0 for ax in fig.axes)   # below every panel


def test_coinciding_roofs_each_keep_their_label():
    # two engines at the same peak, two levels at the same bandwidth: four labels, none lost
    data = {"device": "x", "device_name": "X", "workload": "w", "meta": {}, "total_time_s": 1.0,
            "main_memory": "memory:hbm",
            "ceilings": [{"label": "tensor:bf16", "flops_s": 1e15}, {"label": "matrix:bf16", "flops_s": 1e15}],
            "slopes": [{"key": "memory:hbm", "bytes_s": 1e12}, {"key": "memory:cxl", "bytes_s": 1e12}],
            "points": [{"op": "a", "kind": "matmul", "count": 1, "share": 1.0, "flops": 1e12, "time_s": 1.0,
                        "bound": "memory:hbm", "bytes": {"memory:hbm": 1e11}}]}
    texts = {t.get_text().strip() for t in plot_rooflines([data]).axes[0].texts}
    assert {"tensor:bf16", "matrix:bf16", "hbm", "cxl"} <= texts


def test_gantt_names_operators_and_keeps_its_legend_off_the_bars(sim):
    fig = sim.plot()
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    main, zoom = fig.axes
    assert main.get_title().startswith("llama-2-7b decode, batch 8, context 1024, bf16 on ")
    assert main.get_xlabel() == "time (ms)"
    names = {t.get_text() for t in zoom.texts}
    assert {"q_proj", "attn", "up_proj", "down_proj"} <= names   # layer 1's operators named in their bars
    legend = main.get_legend().get_window_extent(renderer)
    assert legend.x0 >= main.get_window_extent(renderer).x1   # to the right of the axes, not on them


def test_short_repr_and_html_summary(decode, sim):
    a = analyze(decode, hwmodels.load_device("h100-sxm"))
    for obj in (a, sim):
        assert len(repr(obj)) < 300 and len(obj._repr_html_()) < 5000
    assert repr(sim).startswith("<SimResult llama-2-7b decode, batch 8") and "ms" in repr(sim)
    assert f"{len(decode.ops)} operators" in repr(a)
    assert "gate_proj" in a._repr_html_()


def test_engine_progress_reaches_every_task_and_the_bar_waits(decode):
    from reports.progress import DelayedProgress
    from simulator.engine import progress

    seen = []
    with progress(lambda done, total: seen.append((done, total))):
        res = simulate(decode, "h100-sxm")
    total = seen[-1][1]
    assert seen[-1] == (total, total) and total >= len(decode.ops)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    quiet, loud = io.StringIO(), io.StringIO()
    for stream, delay in ((quiet, 60.0), (loud, 0.0)):
        bar = DelayedProgress(delay_s=delay, stream=stream)
        bar.phase("simulating")
        for done, tot in seen:
            bar.update(done, tot)
        bar.phase("done")
    assert quiet.getvalue() == ""                        # short runs print nothing
    assert "simulating: tasks" in loud.getvalue() and f"{total}/{total}" in loud.getvalue()
    assert res.latency_s > 0
