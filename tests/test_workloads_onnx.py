"""ONNX import of small models built here with onnx.helper (no downloads)."""

import json

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from clitools import run  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from hwmodels.errors import InputError  # noqa: E402
from workloads import load_workload  # noqa: E402


def save(tmp_path, nodes, inputs, outputs, inits=(), name="m.onnx", opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    path = tmp_path / name
    onnx.save(model, str(path))
    return str(path)


def init(name, *shape):
    return numpy_helper.from_array(np.zeros(shape, dtype=np.float32), name)


def test_mlp_with_gemm_matmul_and_activations(tmp_path):
    B, D, H, OUT = 4, 64, 256, 10
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
             helper.make_node("Add", ["h", "b1"], ["hb"], name="bias1"),
             helper.make_node("Relu", ["hb"], ["a"], name="relu"),
             helper.make_node("Gemm", ["a", "w2", "b2"], ["y"], name="fc2", transB=1),
             helper.make_node("Softmax", ["y"], ["p"], name="softmax")]
    path = save(tmp_path, nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [B, D])],
                [helper.make_tensor_value_info("p", TensorProto.FLOAT, [B, OUT])],
                [init("w1", D, H), init("b1", H), init("w2", OUT, H), init("b2", OUT)])
    g = load_workload(path)
    assert [op.kind for op in g.ops] == ["matmul", "elementwise", "elementwise", "matmul", "softmax"]
    fc1, fc2 = g.op("fc1"), g.op("fc2")
    assert fc1.flops() == {("matrix", "fp32"): 2 * B * D * H}
    assert fc2.flops()[("matrix", "fp32")] == 2 * B * H * OUT and fc2.bias
    assert g.params() == D * H + H + OUT * H + OUT
    assert g.deps("fc2") == ["relu"]
    assert g.op("softmax").flops()[("special", "fp32")] == B * OUT


def test_attention_pattern_and_layernorm(tmp_path):
    B, Hd, S, D = 2, 4, 16, 8
    shape = [B, Hd, S, D]
    nodes = [helper.make_node("LayerNormalization", ["x", "g", "b"], ["xn"], name="ln", axis=-1),
             helper.make_node("Transpose", ["k"], ["kt"], name="kT", perm=[0, 1, 3, 2]),
             helper.make_node("MatMul", ["xn", "kt"], ["s"], name="qk"),
             helper.make_node("Div", ["s", "scale"], ["ss"], name="scale_div"),
             helper.make_node("Softmax", ["ss"], ["pr"], name="attn", axis=-1),
             helper.make_node("MatMul", ["pr", "v"], ["o"], name="pv")]
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in ("x", "k", "v")]
    scale = numpy_helper.from_array(np.array(np.sqrt(D), dtype=np.float32), "scale")
    path = save(tmp_path, nodes, inputs, [helper.make_tensor_value_info("o", TensorProto.FLOAT, shape)],
                [init("g", D), init("b", D), scale])
    g = load_workload(path)
    assert [op.kind for op in g.ops] == ["layernorm", "elementwise", "attention"]
    attn = g.op("attn")
    assert (attn.batch, attn.heads, attn.q_len, attn.kv_len, attn.head_dim) == (B, Hd, S, S, D)
    assert not attn.fused and not attn.causal
    assert attn.flops()[("matrix", "fp32")] == 2 * B * Hd * S * S * D * 2
    assert sorted(g.deps("attn")) == ["kT", "ln"]
    assert g.op("ln").flops()[("vector", "fp32")] == 7 * B * Hd * S * D


def test_conv_pool_and_dynamic_batch(tmp_path):
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", strides=[1, 1], pads=[1, 1, 1, 1]),
             helper.make_node("MaxPool", ["c"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("GlobalAveragePool", ["p"], ["gap"], name="gap"),
             helper.make_node("Flatten", ["gap"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "wf"], ["y"], name="fc", transB=1)]
    path = save(tmp_path, nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 32, 32])],
                [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
                [init("w", 16, 3, 3, 3), init("wf", 10, 16)])
    with pytest.raises(InputError, match="dynamic dimension 'N'"):
        load_workload(path)
    g = load_workload(path, batch=8)
    conv = g.op("conv")
    assert conv.flops() == {("matrix", "fp32"): 2 * 8 * 16 * 32 * 32 * 3 * 9}
    assert g.op("pool").flops() == {("vector", "fp32"): 8 * 16 * 16 * 16 * 4}
    assert g.deps("fc") == ["gap"]                          # Flatten is free and passes through
    assert "flat" not in g


def test_unsupported_op_is_named_and_can_be_opaque(tmp_path):
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="fc"),
             helper.make_node("Hardmax", ["h"], ["y"], name="weird")]
    path = save(tmp_path, nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
                [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 5])], [init("w", 4, 5)])
    with pytest.raises(InputError) as info:
        load_workload(path)
    text = str(info.value)
    assert "'Hardmax'" in text and "'weird'" in text and "unknown_ops" in text
    g = load_workload(path, unknown_ops="elementwise")
    weird = g.op("weird")
    assert weird.kind == "elementwise" and weird.flops() == {("vector", "fp32"): 10}


def test_bad_files(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        load_workload(str(tmp_path / "missing.onnx"))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00not an onnx model\xff" * 10)
    with pytest.raises(InputError, match="cannot read the ONNX model"):
        load_workload(str(junk))


def test_missing_onnx_dependency_is_an_input_error(tmp_path, monkeypatch):
    path = save(tmp_path, [helper.make_node("Relu", ["x"], ["y"], name="r")],
                [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    monkeypatch.setitem(__import__("sys").modules, "onnx", None)
    with pytest.raises(InputError, match="optional dependency 'onnx'"):
        load_workload(path)


def test_onnx_attention_op(tmp_path):
    B, H, S, D = 2, 4, 16, 8
    nodes = [helper.make_node("Attention", ["q", "k", "v"], ["o"], name="attn", is_causal=1)]
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT16, [B, H, S, D]) for n in "qkv"]
    path = save(tmp_path, nodes, inputs, [helper.make_tensor_value_info("o", TensorProto.FLOAT16, None)],
                opset=23)
    op = load_workload(path).op("attn")
    assert op.causal and op.fused and op.dtype == "fp16"
    scores = B * H * S * (S + 1) / 2
    assert op.flops() == {("matrix", "fp16"): 2 * scores * 2 * D, ("vector", "fp16"): 5 * scores,
                          ("special", "fp16"): scores}


def test_cli_show_onnx_json_and_unsupported_op(capsys, tmp_path):
    B, D, H = 4, 64, 256
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
             helper.make_node("Add", ["h", "b1"], ["hb"], name="bias1"),
             helper.make_node("Relu", ["hb"], ["a"], name="relu"),
             helper.make_node("MatMul", ["a", "w2"], ["y"], name="fc2")]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", D])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", D])]
    inits = [init("w1", D, H), init("b1", H), init("w2", H, D)]
    path = save(tmp_path, nodes, inputs, outputs, inits)
    code, out, err = run(capsys, "workload", "show", path, "--batch", str(B), "--format", "json")
    assert code == 0 and err == ""
    doc = json.loads(out)
    assert doc["params"] == D * H + H + H * D
    assert doc["flops"] == 2 * B * D * H * 2 + B * H + B * H          # two GEMMs, bias add, ReLU
    assert doc["bytes"]["weight"] == 4 * (D * H + H + H * D)          # fp32 weights read once
    assert doc["kv_cache_bytes"] == 0 and doc["ops"] == 4
    assert {k: v["ops"] for k, v in doc["by_kind"].items()} == {"matmul": 2, "elementwise": 2}
    # a dynamic dimension needs --batch
    code, out, err = run(capsys, "workload", "show", path)
    assert code == 2 and out == "" and "--batch" in err and "Traceback" not in err
    # an unsupported op names the node and the op type; --unknown-ops elementwise makes it opaque
    weird = save(tmp_path, [*nodes, helper.make_node("Hardmax", ["y"], ["z"], name="weird")], inputs,
                 [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", D])], inits, name="w.onnx")
    code, out, err = run(capsys, "workload", "show", weird, "--batch", str(B), "--format", "json")
    assert code == 2 and out == "" and "Traceback" not in err
    assert "'Hardmax'" in err and "'weird'" in err and "--unknown-ops elementwise" in err
    code, out, _ = run(capsys, "workload", "show", weird, "--batch", str(B), "--unknown-ops", "elementwise",
                       "--format", "json")
    assert code == 0 and json.loads(out)["ops"] == 5


def test_batch_normalization_is_a_multiply_add_with_four_weight_vectors(tmp_path):
    N, C, H, W = 2, 16, 8, 8
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "s", "b", "mean", "var"], ["y"], name="bn"),
             helper.make_node("Relu", ["y"], ["r"], name="relu")]
    path = save(tmp_path, nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [N, 3, H, W])],
                [helper.make_tensor_value_info("r", TensorProto.FLOAT, [N, C, H, W])],
                [init("w", C, 3, 3, 3), *(init(n, C) for n in ("s", "b", "mean", "var"))])
    g = load_workload(path)
    bn = g.op("bn")
    assert bn.flops() == {("vector", "fp32"): 2 * N * C * H * W}
    assert g.params() == C * 3 * 9 + 4 * C
    assert bn.bytes_by_role() == {"activation": 2 * N * C * H * W * 4, "weight": 4 * C * 4}
    assert g.deps("relu") == ["bn"] and g.deps("bn") == ["conv"]
