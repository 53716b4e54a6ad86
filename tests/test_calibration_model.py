"""The end-to-end numpy model computes a transformer block, and its workloads graph counts the same work."""

import numpy as np
import pytest

from calibration.kernels import NUMPY_KERNELS, build_numpy, gelu_tanh, make_case, numpy_plan
from calibration.npmodel import NumpyModel, TinyModel, workload_graph

SMALL = TinyModel("block", tokens=8, hidden=16, heads=2, ffn=32)


def reference_block(cfg, w, x):
    """The same block written plainly (per-head loops, no preallocated buffers)."""
    def ln(v, g, b):
        mu = v.mean(-1, keepdims=True)
        var = ((v - mu) ** 2).mean(-1, keepdims=True)
        return (v - mu) / np.sqrt(var + 1e-5) * g + b

    def gelu(v):
        return 0.5 * v * (1 + np.tanh(np.sqrt(2 / np.pi) * (v + 0.044715 * v**3)))

    d, h, dh = cfg.hidden, cfg.heads, cfg.head_dim
    a = ln(x, w["ln1_g"], w["ln1_b"])
    qkv = a @ w["wqkv"]
    heads = []
    for i in range(h):
        q = qkv[:, i * dh:(i + 1) * dh]               # 1/sqrt(dh) already in the weights
        k = qkv[:, d + i * dh:d + (i + 1) * dh]
        v = qkv[:, 2 * d + i * dh:2 * d + (i + 1) * dh]
        s = q @ k.T
        p = np.exp(s - s.max(-1, keepdims=True))
        heads.append((p / p.sum(-1, keepdims=True)) @ v)
    r = x + np.concatenate(heads, axis=1) @ w["wo"]
    return r + gelu(ln(r, w["ln2_g"], w["ln2_b"]) @ w["fc1"]) @ w["fc2"]


def test_numpy_block_matches_the_plain_reference():
    model = NumpyModel(SMALL)
    expected = reference_block(SMALL, {k: v.astype(np.float64) for k, v in model.w.items()},
                               model.x.astype(np.float64))
    np.testing.assert_allclose(model.forward(), expected, rtol=2e-4, atol=2e-5)


def test_graph_counts_the_block_flops_by_hand():
    t, d, h, f = 8, 16, 2, 32
    dh = d // h
    g = workload_graph(SMALL)
    matrix = (2 * t * 3 * d * d          # fused QKV
              + 2 * h * t * t * dh * 2   # scores and P V
              + 2 * t * d * d            # output projection
              + 2 * t * f * d * 2)       # fc1 and fc2
    vector = (7 * t * d * 2              # two LayerNorms
              + 4 * h * t * t            # softmax
              + t * d * 2                # two residual adds
              + 8 * t * f)               # GELU
    special = 2 * t + h * t * t + t * f  # rsqrt per row, exp per score, tanh per element
    assert g.flops() == pytest.approx(matrix + vector + special)
    assert [op.name for op in g.ops] == ["ln1", "qkv", "split_heads", "scores", "softmax", "pv",
                                         "merge_heads", "wo", "residual1", "ln2", "fc1", "gelu", "fc2",
                                         "residual2"]


def test_mlp_graph_is_three_ops():
    g = workload_graph(TinyModel("mlp", tokens=4, hidden=8, ffn=16))
    assert [op.kind for op in g.ops] == ["matmul", "elementwise", "matmul"]


def test_stream_byte_counts_follow_the_numpy_passes():
    n, b = 1000, 8
    assert make_case("stream_copy", "fp64", n=n).bytes_moved == 2 * n * b
    assert make_case("stream_add", "fp64", n=n).bytes_moved == 3 * n * b
    assert make_case("stream_triad", "fp64", n=n).bytes_moved == 5 * n * b   # two passes
    assert make_case("gemm", "fp32", m=2, n=3, k=4).flops == 2 * 2 * 3 * 4
    assert make_case("gemm", "fp32", m=2, n=3, k=4).bytes_moved == (2 * 4 + 4 * 3 + 2 * 3) * 4


def test_kernels_compute_what_they_say():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(100).astype(np.float32)
    y = np.empty_like(x)
    from math import erf
    exact = np.array([0.5 * v * (1 + erf(v / np.sqrt(2))) for v in x.astype(np.float64)])
    np.testing.assert_allclose(gelu_tanh(x, y), exact, atol=1e-3)
    for case in numpy_plan(quick=True)[:3]:
        build_numpy(case)()  # runs


def test_plan_holds_out_shapes_inside_the_fitted_range():
    plan = numpy_plan(quick=True)
    for dtype in ("fp32", "fp64"):
        fit = [c.flops for c in plan if c.kernel == "gemm" and c.split == "fit" and c.dtype == dtype]
        hold = [c.flops for c in plan if c.kernel == "gemm" and c.split == "holdout" and c.dtype == dtype]
        assert hold and min(fit) < min(hold) and max(hold) < max(fit)
    fit_ids = {c.case_id for c in plan if c.split == "fit"}
    assert not fit_ids & {c.case_id for c in plan if c.split == "holdout"}
    assert set(NUMPY_KERNELS) >= {c.kernel for c in plan}


@pytest.mark.parametrize("cfg", [SMALL, TinyModel("mlp", tokens=4, hidden=8, ffn=16)])
def test_numpy_steps_are_the_graph_operators(cfg):
    model = NumpyModel(cfg)
    assert [name for name, _ in model.steps] == [op.name for op in workload_graph(cfg).ops]
