"""The end-to-end numpy model computes a transformer block, and its workloads graph counts the same work."""

import numpy as np
import pytest
from handcounts import block_matrix_flops

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
    g = workload_graph(SMALL)
    matrix = block_matrix_flops(t, d, h, f)
    # one FLOP per element of each numpy call: a LayerNorm makes 7 passes over t x d (sum,
    # subtract, square, sum, normalize, scale, shift) and 5 over the t-row vector (two mean
    # divides, + eps, sqrt, reciprocal); softmax 4 over the h x t x t scores (max, subtract, sum,
    # divide) besides exp; GELU 8 over t x f besides tanh
    vector = ((7 * t * d + 5 * t) * 2    # two LayerNorms
              + 4 * h * t * t            # softmax
              + t * d * 2                # two residual adds
              + 8 * t * f)               # GELU
    special = h * t * t + t * f          # exp per score, tanh per element
    assert g.flops() == pytest.approx(matrix + vector + special)
    assert list(g.meta["steps"]) == ["ln1", "qkv", "split_heads", "scores", "softmax", "pv", "merge_heads",
                                     "wo", "residual1", "ln2", "fc1", "gelu", "fc2", "residual2"]
    assert [len(v) for v in g.meta["steps"].values()] == [12, 1, 1, 1, 5, 1, 1, 1, 1, 12, 1, 9, 1, 1]


def test_mlp_graph_is_one_op_per_numpy_call():
    g = workload_graph(TinyModel("mlp", tokens=4, hidden=8, ffn=16))
    assert [op.kind for op in g.ops] == ["matmul", *["elementwise"] * 9, "matmul"]
    tanh = g.op("gelu.tanh")
    assert tanh.flops() == {("special", "fp32"): 4 * 16}


def test_numpy_passes_read_and_write_the_arrays_numpy_does():
    from calibration.passes import gelu_passes, layernorm_passes, softmax_passes

    r, c = 4, 8
    # softmax: max (read x, write r), subtract (x, r -> y), exp (y -> y), sum (y -> r), divide (y, r -> y)
    ops = softmax_passes("s", r, c)
    assert sum(op.bytes_total for op in ops) == (8 * r * c + 4 * r) * 4
    # layernorm: sum (x -> r), divide (r -> r), subtract (x, r -> y), square (y -> t), sum (t -> r),
    # divide (r -> r), + eps (r -> r), sqrt (r -> r), reciprocal (r -> r), normalize (y, r -> y),
    # scale (y, gamma -> y), shift (y, beta -> y)
    ops = layernorm_passes("l", r, c)
    assert sum(op.bytes_total for op in ops) == (1 + 2 + 2 + 1 + 2 * 3) * r * c * 4 + (
        1 + 2 + 1 + 1 + 2 + 2 + 2 + 2 + 1) * r * 4 + 2 * c * 4
    # gelu: every pass reads y (the first reads x instead) and writes y; cube, + x and * x read x too
    ops = gelu_passes("g", 10)
    assert [op.name for op in ops][5] == "g.tanh"
    assert sum(op.bytes_total for op in ops) == (9 * 2 + 3) * 10 * 4


def test_working_sets_live_in_the_level_that_holds_them_with_room():
    import hwmodels
    from calibration.fit import resident_level
    from calibration.opmap import kernel_ops, predict_case

    caps = [("l1", 32 * 1024), ("l2", 512 * 1024), ("l3", 32 * 2**20), ("dram", 2**34)]
    assert resident_level(16 * 1024, caps) == "l1"
    assert resident_level(16 * 1024 + 1, caps) == "l2"
    assert resident_level(256 * 1024, caps) == "l2"
    assert resident_level(16 * 2**20, caps) == "l3"
    assert resident_level(16 * 2**20 + 1, caps) == "dram"
    dev = hwmodels.load_device("xeon-8480")
    caches = {"l1": 48 * 1024, "l2": 2 * 2**20, "l3": 105_000_000}
    # STREAM add of 3 arrays x 40000 doubles = 960 KB: fits in half of one core's 2 MiB L2
    case = make_case("stream_add", "fp64", n=40_000)
    (op,) = kernel_ops(case, dev, caches)
    assert op.resident == "l2"
    l2 = dev.memory["l2"]
    expected = dev.launch_overhead_s + l2.latency_s + 3 * 40_000 * 8 / (l2.bandwidth_bytes_s * l2.efficiency)
    assert predict_case(case, dev, caches) == pytest.approx(expected)
    # 3 x 8 MB = 24 MB: not in L2, but in half of the 105 MB L3
    (op,) = kernel_ops(make_case("stream_add", "fp64", n=10**6), dev, caches)
    assert op.resident == "l3"
    # 3 x 80 MB: DRAM, the operator left as it was
    (op,) = kernel_ops(make_case("stream_add", "fp64", n=10**7), dev, caches)
    assert not hasattr(op, "resident")


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
    g = workload_graph(cfg)
    assert [name for name, _ in model.steps] == list(g.meta["steps"])
    assert [name for names in g.meta["steps"].values() for name in names] == [op.name for op in g.ops]
