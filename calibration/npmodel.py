"""A small real model in numpy (a pre-LN transformer block and an MLP), and the same model as a
workloads graph, for end-to-end validation: time the numpy model for real, simulate the graph,
compare.

The numpy code and the graph describe the same computation call for call: every numpy call has
an operator in the graph with the arrays it reads and writes (GEMMs as ``matmul``; each pass of
the row-wise softmax/LayerNorm and of GELU, and the residual adds, as ``elementwise``, see
:mod:`calibration.passes`; the head split and merge as zero-FLOP elementwise copies). Q, K and V come from one fused projection, as in
GPT-2 and most inference engines; the attention scale is folded into the query weights at
initialisation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from workloads.graph import Graph
from workloads.operators import Elementwise, LayerNorm, MatMul, Softmax
from workloads.tensors import Tensor

from .kernels import gelu_tanh, layernorm_rows, softmax_rows
from .passes import gelu_passes, layernorm_passes, place_in_cache, softmax_passes

# tanh-GELU as one fused kernel (a GPU's): x^3 (two multiplies), *0.044715, +x, *c, +1, *x, *0.5
GELU_VECTOR_FLOPS = 8.0


@dataclass(frozen=True)
class TinyModel:
    """Shape of the end-to-end model: ``tokens`` rows (batch 1), ``hidden`` width, ``heads``
    attention heads, ``ffn`` MLP width. ``kind`` is ``block`` (attention + MLP) or ``mlp``."""

    kind: str = "block"
    tokens: int = 128
    hidden: int = 1024
    heads: int = 8
    ffn: int = 4096

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def label(self) -> str:
        if self.kind == "mlp":
            return f"mlp T={self.tokens} D={self.hidden} F={self.ffn} fp32"
        return f"transformer block T={self.tokens} D={self.hidden} H={self.heads} F={self.ffn} fp32"


BLOCK = TinyModel("block")
MLP = TinyModel("mlp", tokens=256, hidden=1024, ffn=4096)
QUICK_MODELS = (TinyModel("block", tokens=128, hidden=512, heads=8, ffn=2048),
                TinyModel("mlp", tokens=128, hidden=512, ffn=2048))
MODELS = (BLOCK, MLP)


def init_weights(cfg: TinyModel, seed: int = 0) -> dict[str, np.ndarray]:
    """fp32 weights (scaled by 1/sqrt(fan-in) so activations stay O(1))."""
    rng = np.random.default_rng(seed)
    d, f, dh = cfg.hidden, cfg.ffn, cfg.head_dim

    def w(*shape, fan_in):
        return (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)

    out = {"fc1": w(d, f, fan_in=d), "fc2": w(f, d, fan_in=f),
           "ln2_g": np.ones(d, np.float32), "ln2_b": np.zeros(d, np.float32)}
    if cfg.kind == "block":
        wqkv = w(d, 3 * d, fan_in=d)
        wqkv[:, :d] /= np.float32(np.sqrt(dh))
        out.update(wqkv=wqkv, wo=w(d, d, fan_in=d),
                   ln1_g=np.ones(d, np.float32), ln1_b=np.zeros(d, np.float32))
    return out


class NumpyModel:
    """The model with its weights and scratch buffers allocated once; ``forward()`` runs it.

    ``steps`` lists the numpy steps by name (the names of :func:`step_ops`; a step's operators
    in :func:`workload_graph` are ``graph.meta["steps"][name]``), so each step can be timed
    against its predicted cost.
    """

    def __init__(self, cfg: TinyModel, seed: int = 0):
        self.cfg = cfg
        self.w = init_weights(cfg, seed)
        t, d, f, h = cfg.tokens, cfg.hidden, cfg.ffn, cfg.heads
        rng = np.random.default_rng(seed + 1)
        self.x = rng.standard_normal((t, d)).astype(np.float32)
        self.buf = {"ln": np.empty((t, d), np.float32), "h1": np.empty((t, f), np.float32),
                    "g": np.empty((t, f), np.float32), "h2": np.empty((t, d), np.float32),
                    "out": np.empty((t, d), np.float32)}
        if cfg.kind == "block":
            dh = cfg.head_dim
            self.buf.update(qkv=np.empty((t, 3 * d), np.float32), heads=np.empty((3, h, t, dh), np.float32),
                            s=np.empty((h, t, t), np.float32), p=np.empty((h, t, t), np.float32),
                            o=np.empty((h, t, dh), np.float32), attn=np.empty((t, d), np.float32),
                            res=np.empty((t, d), np.float32))

        self.steps = self._steps()

    def _steps(self) -> list[tuple[str, Callable[[], object]]]:
        """(operator name in :func:`workload_graph`, the numpy call that runs it), in order."""
        cfg, b, w, x = self.cfg, self.buf, self.w, self.x
        mlp_in = x if cfg.kind == "mlp" else b["ln"]
        mlp_out = b["out"] if cfg.kind == "mlp" else b["h2"]
        mlp = [("fc1", lambda: np.matmul(mlp_in, w["fc1"], out=b["h1"])),
               ("gelu", lambda: gelu_tanh(b["h1"], b["g"])),
               ("fc2", lambda: np.matmul(b["g"], w["fc2"], out=mlp_out))]
        if cfg.kind == "mlp":
            return mlp
        t, d, h, dh = cfg.tokens, cfg.hidden, cfg.heads, cfg.head_dim
        q, k, v = b["heads"]

        def split_heads():
            b["heads"][...] = b["qkv"].reshape(t, 3, h, dh).transpose(1, 2, 0, 3)

        def merge_heads():
            b["attn"][...] = b["o"].transpose(1, 0, 2).reshape(t, d)

        return [
            ("ln1", lambda: layernorm_rows(x, w["ln1_g"], w["ln1_b"], b["ln"])),
            ("qkv", lambda: np.matmul(b["ln"], w["wqkv"], out=b["qkv"])),   # scale folded into q columns
            ("split_heads", split_heads),
            ("scores", lambda: np.matmul(q, k.transpose(0, 2, 1), out=b["s"])),  # (H, T, T)
            ("softmax", lambda: softmax_rows(b["s"], b["p"])),
            ("pv", lambda: np.matmul(b["p"], v, out=b["o"])),               # (H, T, dh)
            ("merge_heads", merge_heads),
            ("wo", lambda: np.matmul(b["attn"], w["wo"], out=b["h2"])),
            ("residual1", lambda: np.add(x, b["h2"], out=b["res"])),
            ("ln2", lambda: layernorm_rows(b["res"], w["ln2_g"], w["ln2_b"], b["ln"])),
            *mlp,
            ("residual2", lambda: np.add(b["res"], b["h2"], out=b["out"])),
        ]

    def forward(self) -> np.ndarray:
        """Run the model once; returns the output activations."""
        for _, step in self.steps:
            step()
        return self.buf["out"]


def fused_ops(kind: str, name: str, rows: int, cols: int, dtype: str = "fp32") -> list:
    """One fused kernel (torch's ``layer_norm``, ``softmax``, ``gelu``): a single operator that
    reads its input (and the LayerNorm's gamma and beta) once and writes its output once."""
    if kind == "layernorm":
        return [LayerNorm(name=name, rows=rows, cols=cols, dtype=dtype)]
    if kind == "softmax":
        return [Softmax(name=name, rows=rows, cols=cols, dtype=dtype)]
    return [Elementwise(name=name, numel=rows * cols, flops_per_element=GELU_VECTOR_FLOPS, special=True,
                        dtype=dtype, inputs=[Tensor(f"{name}.in", (rows, cols), dtype)],
                        outputs=[Tensor(f"{name}.out", (rows, cols), dtype)])]


def step_ops(cfg: TinyModel, fused: bool = False) -> list[tuple[str, list]]:
    """(step name of :meth:`NumpyModel._steps`, the operators of its numpy calls), in order.

    One operator per numpy call (:mod:`calibration.passes`): a GEMM is one ``matmul``; a
    LayerNorm, softmax or GELU is the passes numpy makes over whole arrays; the residual adds
    are one ufunc each; the head split and merge are one strided copy each. With ``fused``
    (the torch model, :mod:`calibration.torchmodel`), a LayerNorm, softmax or GELU is one
    kernel, one operator (:func:`fused_ops`); the other steps are the same calls.
    """
    t, d, f, h, dh = cfg.tokens, cfg.hidden, cfg.ffn, cfg.heads, cfg.head_dim
    dt = "fp32"
    if fused:
        norm, smax, gelu = (partial(fused_ops, "layernorm"), partial(fused_ops, "softmax"),
                            fused_ops("gelu", "gelu", t, f, dt))
    else:
        norm, smax, gelu = layernorm_passes, softmax_passes, gelu_passes("gelu", t * f, dt)
    mlp = [("fc1", [MatMul(name="fc1", m=t, n=f, k=d, dtype=dt)]),
           ("gelu", gelu),
           ("fc2", [MatMul(name="fc2", m=t, n=d, k=f, dtype=dt)])]
    if cfg.kind == "mlp":
        return mlp
    return [
        ("ln1", norm("ln1", t, d, dt)),
        ("qkv", [MatMul(name="qkv", m=t, n=3 * d, k=d, dtype=dt)]),
        ("split_heads", [Elementwise(name="split_heads", numel=3 * t * d, flops_per_element=0.0, dtype=dt)]),
        ("scores", [MatMul(name="scores", m=t, n=t, k=dh, batch=h, dtype=dt, b_role="activation")]),
        ("softmax", smax("softmax", h * t, t, dt)),
        ("pv", [MatMul(name="pv", m=t, n=dh, k=t, batch=h, dtype=dt, b_role="activation")]),
        ("merge_heads", [Elementwise(name="merge_heads", numel=t * d, flops_per_element=0.0, dtype=dt)]),
        ("wo", [MatMul(name="wo", m=t, n=d, k=d, dtype=dt)]),
        ("residual1", [Elementwise(name="residual1", numel=t * d, operands=2, dtype=dt)]),
        ("ln2", norm("ln2", t, d, dt)),
        *mlp,
        ("residual2", [Elementwise(name="residual2", numel=t * d, operands=2, dtype=dt)]),
    ]


def workload_graph(cfg: TinyModel, device=None, caches: dict[str, int] | None = None, fused: bool = False):
    """The model as a :class:`workloads.Graph` of fp32 operators, call for call as
    :meth:`NumpyModel.forward` (:func:`step_ops`; ``fused``: as the torch model), in one chain. With ``device``, each step's
    streaming operators are placed in the memory level that holds the step's arrays
    (:func:`calibration.passes.place_in_cache`; ``caches``: per-instance cache sizes).
    ``meta["steps"]`` maps each numpy step to its operators' names."""
    g = Graph(name=cfg.label, meta={"model": cfg.label, "phase": "prefill", "batch": 1,
                                    "tokens": cfg.tokens, "steps": {}})
    prev = ()
    for step, ops in step_ops(cfg, fused):
        if device is not None:
            place_in_cache(ops, device, caches)
        for op in ops:
            prev = [g.add(op, deps=prev)]
        g.meta["steps"][step] = [op.name for op in ops]
    return g
