"""The end-to-end model of :mod:`calibration.npmodel` through torch (fp32, CPU, no autograd), and
its workloads graph, for part 2 of ``ridgeline validate`` when torch is installed.

Same shapes, same weights, same steps as :class:`~calibration.npmodel.NumpyModel`; what differs
is how torch runs them: ``layer_norm``, ``softmax`` and ``gelu`` are one fused kernel each (one
read of the input, one write of the output), where numpy makes a pass per ufunc. The graph is
:func:`~calibration.npmodel.workload_graph` with ``fused=True``: one operator per torch call.

torch is imported only here, and only when this module is used (``torch_available()`` first).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

from .npmodel import TinyModel, init_weights, workload_graph

LAYERNORM_EPS = 1e-5  # as calibration.kernels.layernorm_rows


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[int]:
    """Pin torch's intra-op thread pool to ``threads`` (all cores when None) for the block; torch
    keeps its own pool, which threadpoolctl does not always reach."""
    import torch

    n = int(threads or os.cpu_count() or 1)
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)


class TorchModel:
    """The model in torch on the CPU, weights and buffers allocated once; ``forward()`` runs it.

    ``steps``: (step name, the torch call), the step names of
    :class:`~calibration.npmodel.NumpyModel` (``graph.meta["steps"][name]`` are its operators).
    Calls that take ``out=`` write into preallocated buffers, as the numpy model does; the fused
    kernels (``layer_norm``, ``softmax``, ``gelu``) allocate their output, as torch does in a model.
    """

    def __init__(self, cfg: TinyModel, seed: int = 0):
        import numpy as np
        import torch

        self.cfg = cfg
        self.w = {k: torch.from_numpy(v.copy()) for k, v in init_weights(cfg, seed).items()}
        t, d, f, h = cfg.tokens, cfg.hidden, cfg.ffn, cfg.heads
        rng = np.random.default_rng(seed + 1)   # the numpy model's input
        self.x = torch.from_numpy(rng.standard_normal((t, d)).astype(np.float32))
        e = torch.empty
        self.buf = {"ln": e(t, d), "h1": e(t, f), "g": e(t, f), "h2": e(t, d), "out": e(t, d)}
        if cfg.kind == "block":
            dh = cfg.head_dim
            self.buf.update(qkv=e(t, 3 * d), heads=e(3, h, t, dh), s=e(h, t, t), p=e(h, t, t),
                            o=e(h, t, dh), attn=e(t, d), res=e(t, d))
        self.steps = self._steps()

    def _steps(self) -> list[tuple[str, Callable[[], object]]]:
        import torch
        import torch.nn.functional as F  # noqa: N812 (torch's own spelling)

        cfg, b, w, x = self.cfg, self.buf, self.w, self.x
        t, d, h, dh = cfg.tokens, cfg.hidden, cfg.heads, cfg.head_dim
        mlp_in = "x" if cfg.kind == "mlp" else "ln"
        mlp_out = b["out"] if cfg.kind == "mlp" else b["h2"]

        def src(name):
            return x if name == "x" else b[name]

        def put(name, value):
            b[name] = value

        mlp = [("fc1", lambda: torch.matmul(src(mlp_in), w["fc1"], out=b["h1"])),
               ("gelu", lambda: put("g", F.gelu(b["h1"], approximate="tanh"))),
               ("fc2", lambda: torch.matmul(b["g"], w["fc2"], out=mlp_out))]
        if cfg.kind == "mlp":
            return mlp

        def layernorm(inp, g, beta):
            return lambda: put("ln", F.layer_norm(src(inp), (d,), w[g], w[beta], LAYERNORM_EPS))

        q, k, v = b["heads"]
        return [
            ("ln1", layernorm("x", "ln1_g", "ln1_b")),
            ("qkv", lambda: torch.matmul(b["ln"], w["wqkv"], out=b["qkv"])),   # scale folded into q
            ("split_heads", lambda: b["heads"].copy_(b["qkv"].view(t, 3, h, dh).permute(1, 2, 0, 3))),
            ("scores", lambda: torch.matmul(q, k.transpose(1, 2), out=b["s"])),
            ("softmax", lambda: put("p", torch.softmax(b["s"], dim=-1))),
            ("pv", lambda: torch.matmul(b["p"], v, out=b["o"])),
            ("merge_heads", lambda: b["attn"].view(t, h, dh).copy_(b["o"].permute(1, 0, 2))),
            ("wo", lambda: torch.matmul(b["attn"], w["wo"], out=b["h2"])),
            ("residual1", lambda: torch.add(x, b["h2"], out=b["res"])),
            ("ln2", layernorm("res", "ln2_g", "ln2_b")),
            *mlp,
            ("residual2", lambda: torch.add(b["res"], b["h2"], out=b["out"])),
        ]

    def forward(self):
        """Run the model once (no autograd); returns the output activations."""
        import torch

        with torch.no_grad():
            for _, step in self.steps:
                step()
        return self.buf["out"]


def torch_graph(cfg: TinyModel, device=None, caches: dict[str, int] | None = None):
    """The torch model as a workloads graph: one operator per torch call (fused norms, softmax
    and GELU); placement in the cache as :func:`~calibration.npmodel.workload_graph`."""
    g = workload_graph(cfg, device, caches, fused=True)
    g.meta["backend"] = "torch"
    return g
