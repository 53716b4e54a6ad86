"""The torch end-to-end model (skipped without torch): same computation as the numpy model, a graph
with one operator per torch call whose FLOPs match a hand count, and rows in validation part 2."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from handcounts import block_matrix_flops  # noqa: E402

import hwmodels  # noqa: E402
from calibration.npmodel import NumpyModel, TinyModel  # noqa: E402
from calibration.torchmodel import TorchModel, torch_graph  # noqa: E402
from calibration.validate import validate_end_to_end  # noqa: E402

SMALL = TinyModel("block", tokens=8, hidden=16, heads=2, ffn=32)
SMALL_MLP = TinyModel("mlp", tokens=8, hidden=16, ffn=32)


@pytest.mark.parametrize("cfg", [SMALL, SMALL_MLP], ids=["block", "mlp"])
def test_torch_model_computes_what_the_numpy_model_does(cfg):
    np.testing.assert_allclose(TorchModel(cfg).forward().numpy(), NumpyModel(cfg).forward(),
                               rtol=1e-4, atol=1e-5)


def test_torch_graph_counts_the_block_flops_by_hand():
    t, d, h, f = 8, 16, 2, 32
    g = torch_graph(SMALL)
    matrix = block_matrix_flops(t, d, h, f)
    # fused kernels: LayerNorm 7 per element + one rsqrt per row; softmax 4 per score + one exp;
    # tanh-GELU 8 per element + one tanh; the residual adds 1 per element; head copies none
    vector = 7 * t * d * 2 + 4 * h * t * t + 8 * t * f + t * d * 2
    special = t * 2 + h * t * t + t * f
    assert g.flops() == pytest.approx(matrix + vector + special)


def test_torch_graph_has_one_operator_per_torch_call_with_its_real_traffic():
    t, d, f = 8, 16, 32
    g = torch_graph(SMALL)
    steps = g.meta["steps"]
    assert all(len(ops) == 1 for ops in steps.values())
    assert len(steps) == 14
    ln = g.op(steps["ln1"][0])
    assert ln.kind == "layernorm"
    # reads x and gamma, beta once, writes the output once (fp32)
    assert sum(x.bytes for x in ln.inputs) == 4 * (t * d + 2 * d)
    assert sum(x.bytes for x in ln.outputs) == 4 * t * d
    gelu = g.op(steps["gelu"][0])
    assert sum(x.bytes for x in gelu.inputs) == sum(x.bytes for x in gelu.outputs) == 4 * t * f
    assert g.op(steps["softmax"][0]).kind == "softmax"


def test_validate_part2_has_torch_rows():
    device = hwmodels.load_device("host")
    rows = validate_end_to_end(device, quick=True, progress=False, threads=1, models=(SMALL, SMALL_MLP))
    torch_rows = [r for r in rows if r["backend"] == "torch"]
    numpy_rows = [r for r in rows if r["backend"] == "numpy"]
    assert len(torch_rows) == len(numpy_rows) == 2
    for r in torch_rows:
        assert r["name"].endswith("(torch)")
        assert r["predicted"] > 0
        if r["measured"] is not None:   # a refused (noisy) timing is reported, not faked
            assert r["measured"] > 0
            assert r["error"] == pytest.approx(r["predicted"] / r["measured"] - 1)
            assert [b["op"] for b in r["breakdown"]] == list(torch_graph(SMALL if "block" in r["name"]
                                                                         else SMALL_MLP).meta["steps"])
