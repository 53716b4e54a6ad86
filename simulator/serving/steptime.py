"""How long one serving step takes and what it spends: the cost model's answer, remembered.

A step's graph (:func:`workloads.batch.build_step`) is a chain: every operator waits for the one
before it, so playing it alone on a replica takes the sum of its operators' analytic times
(``simulate`` of a single-device step equals that sum; a test holds the two within 1%). Building
and costing ~450 operators per step is too slow for 10^5 requests, so the sum is taken apart
along what each operator depends on, and each part is remembered:

* the linear layers, norms, residuals, embedding and their collectives depend only on ``T``, the
  tokens in the step: ``dense(T) = base(T) + layers x layer(T)``, taken from a one-layer graph
  (every layer of a dense model, or of an MoE model without leading dense layers, is the same);
* the LM head depends only on the rows sampled (``rows``, one per scheduled request);
* attention depends on its segment ``(sequences, queries, keys)``: the same operator in every layer.

Nothing here computes a cost: every number comes from ``roofline.costs.shared_cost`` on the very
operators the step's graph holds. Where the layers are not all alike (leading dense layers of an
MoE model, pipeline stages with their sends) the dense part comes from a whole-model graph per
``T`` instead of a one-layer one; MLA's two attention forms (a prefill from scratch decompresses
K and V, a step with cached tokens runs the absorbed form) are two sets of parts.

Energy follows the simulator's model: dynamic energy of every operator on every rank, plus the
devices' active power over the step (idle power between steps is the replica's business). A step
that would draw more than its devices' power limit takes the time at which it draws the limit,
as ``simulate``'s power cap finds it (:meth:`StepTimeModel.at_power_cap`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from workloads.batch import PrefillChunk, build_step, decode_context, step_knobs, step_segments
from workloads.configs import ModelConfig, load_config
from workloads.graph import Graph
from workloads.llm import Segment, _Builder
from workloads.runtime import engine_kernels, sampling_kernels, with_all_reduce_kernel

HEAD_OPS = ("model.norm", "lm_head", "lm_head.all_gather")


@dataclasses.dataclass(frozen=True)
class StepCost:
    """``time_s`` of one step on its replica, the ``energy_j`` its devices spend meanwhile, and
    the dynamic part of it (``dynamic_j``: the operators' own energy on every rank). What a
    runtime's CUDA graphs change: the step's ``tokens``, whether it is ``decode_only``, its
    ``kernels`` (operators, each paying the device's ``launch_s`` in ``time_s``), how many of
    them are attention (``attention_kernels``) and the ``pieces`` a graph split at attention has."""

    time_s: float
    energy_j: float
    dynamic_j: float = 0.0
    tokens: int = 0
    decode_only: bool = False
    kernels: int = 0
    attention_kernels: int = 0
    pieces: int = 1
    launch_s: float = 0.0


class StepTimeModel:
    """Step time and energy of ``model`` on ``hardware`` (one replica: ``tp`` x ``pp`` devices).

    >>> m = StepTimeModel("llama-3.1-8b", "h100-sxm")
    >>> m.step([PrefillChunk(512, 0)], 8, 8 * 1000).time_s   # a chunk and 8 decodes at 1000 tokens
    """

    def __init__(self, model: str | ModelConfig, hardware, runtime=None, **knobs):
        from hwmodels.runtime import load_runtime

        from ..simulate import _as_system

        # the engine (a runtime profile, name or file): the kernels it runs for each operator
        # (unfused ones, its own all-reduce) and the sampling kernels after the LM head, as
        # workloads.runtime.with_runtime runs them for `simulate --runtime`; its launch costs
        # and CUDA graphs are the engine profile's gpu_time, its CPU work step_time
        self.runtime = load_runtime(runtime)
        self.all_reduce_kernel = self.runtime.all_reduce_kernel
        self.cfg = model if isinstance(model, ModelConfig) else load_config(model)
        self.knobs = step_knobs(self.cfg, **knobs)
        self.ranks = self.knobs["tp"] * self.knobs["pp"]
        self.system = _as_system(hardware, self.ranks)
        nodes = self.system.accelerators[:self.ranks]
        self.device = self.system.devices[nodes[0]]
        self.active_w = sum(self.system.devices[n].power.active_w for n in nodes)
        self.static_w = sum(self.system.devices[n].power.static_w for n in nodes)
        self.fast = (self.knobs["pp"] == 1 and self.cfg.family != "mla" and not self.cfg.first_dense)
        self._meta = {"tp": self.knobs["tp"], "pp": self.knobs["pp"]}
        self._one_layer = dataclasses.replace(self.cfg, layers=1)
        self._dense: dict[int, tuple[float, float]] = {}
        self._head: dict[int, tuple[float, float]] = {}
        self._attn: dict[tuple[int, int, int], tuple[float, float]] = {}
        self._whole: dict[tuple[int, bool], tuple[float, float, int]] = {}
        self._attn_probe = None
        self._attn_probes: dict[bool, object] = {}
        self._kernels = None
        self._plan = None          # the templates of :meth:`_dense_plan`, or False (probe per T)
        self._gemm_t = np.zeros(0)  # summed GEMM time / energy per rank for T = 1..len
        self._gemm_e = np.zeros(0)

    # -- parts ---------------------------------------------------------------------------------
    def _engine(self, ops) -> list:
        """The kernels the engine runs for ``ops`` (:func:`workloads.runtime.engine_kernels`)."""
        return [kernel for op in ops for kernel in engine_kernels(op, self.runtime, self._meta)]

    def _cost(self, ops) -> tuple[float, float]:
        from roofline.costs import shared_cost
        from roofline.hardware import device_info

        memo = device_info(self.device).memo
        t = e = 0.0
        for op in ops:
            op = with_all_reduce_kernel(op, self.all_reduce_kernel)
            d, time_s, _ = shared_cost(op, self.device, memo)
            t += time_s
            e += d.energy_j
        return t, e

    def _probe(self, tokens: int, rows: int) -> Graph:
        g = Graph("probe", meta={"tp": self.knobs["tp"], "pp": 1})
        _Builder(self._one_layer, g, self.knobs).build([Segment(1, tokens, tokens)], rows)
        return g

    def dense(self, tokens: int) -> tuple[float, float]:
        """(time, energy per rank) of everything but attention and the LM head for ``tokens``."""
        hit = self._dense.get(tokens)
        if hit is None:
            if self._plan is None:
                self._plan = self._dense_plan()
            if self._plan:
                hit = self._dense[tokens] = self._dense_from_plan(tokens)
                return hit
            g = self._probe(tokens, 1)
            layer = [op for op in g.ops if op.name.startswith("model.layers.0.") and op.kind != "attention"]
            base = [op for op in g.ops if not op.name.startswith("model.layers.") and op.name not in HEAD_OPS]
            if self._attn_probe is None:
                self._attn_probe = next(op for op in g.ops if op.kind == "attention")
            (lt, le), (bt, be) = self._cost(self._engine(layer)), self._cost(self._engine(base))
            hit = self._dense[tokens] = (bt + self.cfg.layers * lt, be + self.cfg.layers * le)
        return hit

    # -- the dense part without a graph per T -------------------------------------------------------
    def _split(self, g: Graph):
        """(operator, multiplicity) of a one-layer probe's dense operators (not attention or head)."""
        out = []
        for op in g.ops:
            if op.kind == "attention" or op.name in HEAD_OPS:
                continue
            mult = self.cfg.layers if op.name.startswith("model.layers.") else 1
            out += [(kernel, mult) for kernel in self._engine([op])]
        return out

    def _dense_plan(self):
        """Templates of the dense operators as functions of T: plain GEMMs (m = T) costed for many T
        at once by :func:`roofline.batch.cost_matmul_batch`, the others rebuilt with their
        T-proportional fields scaled. Checked against probes at T = 2 and 3 (operator signatures
        equal); False when a model's operators do not follow that pattern (then a probe per T)."""
        from roofline.costs import op_signature

        if self.runtime.matvec_memory_fraction or self.runtime.kernel_memory_fraction:
            return False    # kernels carry the engine's memory fraction: cost them one by one
        ones, twos = self._split(self._probe(1, 1)), dict((op.name, op) for op, _ in self._split(self._probe(2, 1)))
        gemms, others = {}, []
        for op, mult in ones:
            other = twos.get(op.name)
            if other is None:
                return False
            if op.kind == "matmul" and op.batch == 1 and op.experts == 1 and not op.bias and op.imbalance == 1:
                key = (op.n, op.k, op.dtype, op.weight_dtype, op.group_size, op.weight_placement)
                gemms[key] = gemms.get(key, 0) + mult
                continue
            names = [f.name for f in dataclasses.fields(op) if f.name not in ("name", "inputs", "outputs")]
            scaled = [f for f in names if getattr(op, f) != getattr(other, f)]
            others.append((op, scaled, mult))
        plan = (gemms, others)
        for tokens in (2, 3):
            want = sorted(repr(op_signature(op)) for op, _ in self._split(self._probe(tokens, 1))
                          if op.kind != "matmul" or op.bias)
            have = sorted(repr(op_signature(op)) for op, _ in self._template_ops(plan, tokens))
            want_gemms = sum(1 for op, _ in self._split(self._probe(tokens, 1)) if op.kind == "matmul" and not op.bias)
            if want != have or want_gemms != len([1 for op, _ in ones if op.kind == "matmul" and not op.bias]):
                return False
        return plan

    @staticmethod
    def _template_ops(plan, tokens: int):
        for op, scaled, mult in plan[1]:
            fields = {f: type(getattr(op, f))(getattr(op, f) * tokens) for f in scaled}
            yield dataclasses.replace(op, inputs=[], outputs=[], **fields), mult

    def _gemm_table(self, tokens: int) -> None:
        """Extend the GEMM sums to cover ``tokens`` (in blocks of 1024 values of T)."""
        from roofline.batch import cost_matmul_batch

        n0 = self._gemm_t.size
        n1 = max(tokens, n0 + 1024)
        m = np.arange(n0 + 1, n1 + 1, dtype=float)
        t, e = np.zeros(m.size), np.zeros(m.size)
        for (n, k, dtype, wdt, gs, place), mult in self._plan[0].items():
            d = cost_matmul_batch(m, n, k, self.device, dtype=dtype, weight_dtype=wdt, group_size=gs,
                                  weight_placement=place)
            t += mult * d.time_s
            e += mult * d.energy_j
        self._gemm_t = np.concatenate([self._gemm_t, t])
        self._gemm_e = np.concatenate([self._gemm_e, e])

    def _dense_from_plan(self, tokens: int) -> tuple[float, float]:
        if tokens > self._gemm_t.size:
            self._gemm_table(tokens)
        t, e = float(self._gemm_t[tokens - 1]), float(self._gemm_e[tokens - 1])
        for op, mult in self._template_ops(self._plan, tokens):
            ot, oe = self._cost([op])
            t += mult * ot
            e += mult * oe
        return t, e

    def head(self, rows: int) -> tuple[float, float]:
        """(time, energy per rank) of the final norm and LM head over ``rows`` sampled rows."""
        hit = self._head.get(rows)
        if hit is None:
            g = self._probe(rows, rows)
            # the decoder's sampling kernels launch eagerly after the graph (not in `kernels`)
            hit = self._head[rows] = self._cost([*self._engine([op for op in g.ops if op.name in HEAD_OPS]),
                                                 *sampling_kernels(g, self.runtime)])
        return hit

    def attention(self, batch: int, q_len: int, kv_len: int, fresh: bool = False) -> tuple[float, float]:
        """(time, energy per rank) of one attention segment in every layer (``fresh``: MLA's
        decompressed form of a step of prefills from scratch)."""
        key = (batch, q_len, kv_len, fresh)
        hit = self._attn.get(key)
        if hit is None:
            probe = self._attn_probes.get(fresh) if not self.fast else self._attn_probe
            if probe is None:
                if self.fast:
                    probe = self._attn_probe = next(op for op in self._probe(1, 1).ops if op.kind == "attention")
                else:
                    self.dense_whole(1, fresh)
                    probe = self._attn_probes[fresh]
            op = dataclasses.replace(probe, batch=batch, q_len=q_len, kv_len=kv_len, inputs=[], outputs=[])
            t, e = self._cost(self._engine([op]))
            hit = self._attn[key] = (t * self.cfg.layers, e * self.cfg.layers)
        return hit

    def dense_whole(self, tokens: int, fresh: bool) -> tuple[float, float, int]:
        """(time, energy per rank, operators) of the dense part from the whole model's step graph
        of one ``tokens``-token prefill chunk (from scratch if ``fresh``, else on one cached token)."""
        key = (tokens, fresh)
        hit = self._whole.get(key)
        if hit is None:
            g = build_step(self.cfg, [PrefillChunk(tokens, 0 if fresh else 1)], knobs=self.knobs)
            ops = self._engine([op for op in g.ops if op.kind != "attention" and op.name not in HEAD_OPS])
            if fresh not in self._attn_probes:
                self._attn_probes[fresh] = next(op for op in g.ops if op.kind == "attention")
            hit = self._whole[key] = (*self._cost(ops), len(ops))
        return hit

    # -- a step --------------------------------------------------------------------------------
    def step(self, prefills: Sequence[PrefillChunk] = (), decodes: int = 0, context: int = 0) -> StepCost:
        """Cost of a step running ``prefills`` and ``decodes`` decodes whose contexts sum to
        ``context`` tokens (the decodes run as one segment, see :func:`workloads.batch.decode_context`)."""
        if not self.fast:
            return self._slow_step(prefills, decodes, context)
        if self._kernels is None:
            self._kernels = self._count_kernels()
        tokens = decodes + sum(p.tokens for p in prefills)
        t, e = self.dense(tokens)
        ht, he = self.head(decodes + len(prefills))
        t, e = t + ht, e + he
        for p in prefills:
            at, ae = self.attention(1, p.tokens, p.cached + p.tokens)
            t, e = t + at, e + ae
        if decodes:
            at, ae = self.attention(decodes, 1, decode_context(decodes, context) + 1)
            t, e = t + at, e + ae
        attn = self.cfg.layers * (len(prefills) + (1 if decodes else 0))
        dynamic_j = e * self.ranks
        t = self.at_power_cap(t, dynamic_j)
        return StepCost(t, dynamic_j + self._power_j(t), dynamic_j, tokens, not prefills,
                        self._kernels + attn, attn, self.cfg.layers + 1, self.device.launch_overhead_s)

    def _count_kernels(self) -> int:
        """Operators of a step besides attention: the dense ones (every layer) and the head."""
        g = self._probe(1, 1)
        return sum(m for _, m in self._split(g)) + len(self._head_kernels(g))

    def _head_kernels(self, g: Graph) -> list:
        return self._engine([op for op in g.ops if op.name in HEAD_OPS])

    def _slow_step(self, prefills, decodes: int, context: int) -> StepCost:
        step_segments(prefills, [1] * decodes)     # checks the batch
        fresh = self.cfg.family == "mla" and not decodes and all(p.cached == 0 for p in prefills)
        tokens = decodes + sum(p.tokens for p in prefills)
        t, e, kernels = self.dense_whole(tokens, fresh)
        head = self.head(decodes + len(prefills))
        t, e = t + head[0], e + head[1]
        for p in prefills:
            at, ae = self.attention(1, p.tokens, p.cached + p.tokens, fresh)
            t, e = t + at, e + ae
        if decodes:
            at, ae = self.attention(decodes, 1, decode_context(decodes, context) + 1)
            t, e = t + at, e + ae
        if self._kernels is None:
            self._kernels = len(self._head_kernels(self._probe(1, 1)))
        attn = self.cfg.layers * (len(prefills) + (1 if decodes else 0))
        # one rank's operators per stage: a stage's ranks are alike, stages run one after the other
        dynamic_j = e * self.knobs["tp"]
        t = self.at_power_cap(t, dynamic_j)
        return StepCost(t, dynamic_j + self._power_j(t), dynamic_j, tokens, not prefills,
                        kernels + self._kernels + attn, attn, self.cfg.layers + 1, self.device.launch_overhead_s)

    def regime(self, prefill_tokens: int, decodes: int, context: int, runtime=None) -> str:
        """The regime (compute-, memory- or overhead-bound) of a step of one ``prefill_tokens``-token
        chunk and ``decodes`` decodes at ``context`` cached tokens each under ``runtime``: what owns
        most of the simulated step's critical path (``SimResult.regime``), as for ``simulate``."""
        from ..simulate import simulate

        chunks = [PrefillChunk(prefill_tokens, 0)] if prefill_tokens > 0 else []
        graph = build_step(self.cfg, chunks, [max(1, context)] * decodes, knobs=self.knobs)
        return simulate(graph, self.system, runtime=runtime).regime

    def energy_j(self, cost: StepCost, gpu_s: float, wall_s: float) -> float:
        """Energy of a step whose GPU work took ``gpu_s`` (the cost model's time, maybe scaled by
        the engine profile) within ``wall_s`` on the clock: dynamic energy, and the active
        baseline over the whole step. The host work around a step's kernels (scheduling,
        sampling: a few ms) is too short for the device to clock down, and ``simulate --runtime``
        counts a step's device busy throughout it too; idle power is for the time between steps
        (the replica's business)."""
        return cost.dynamic_j + self._power_j(max(gpu_s, wall_s))

    def at_power_cap(self, time_s: float, dynamic_j: float) -> float:
        """The time of a step of ``time_s`` that spends ``dynamic_j`` on its operators, once its
        devices are held to their power limit. Over the limit, the clock falls until the step draws
        the limit (``simulate``'s power cap, :func:`simulator.simulate._capped`); the work's energy
        does not change, so that time is the dynamic energy over the power left above the static
        and active baseline. A device whose baseline alone reaches the limit cannot be helped."""
        cap_w = (self.device.power.cap_w or 0.0) * self.ranks
        base_w = self._power_j(1.0)
        if time_s <= 0 or cap_w <= base_w or base_w + dynamic_j / time_s <= cap_w:
            return time_s
        return dynamic_j / (cap_w - base_w)

    def _power_j(self, time_s: float) -> float:
        """Idle power of every device over the step, plus the active baseline of the stage that
        runs (each stage is busy for its share of a pipelined step's time)."""
        return (self.static_w + (self.active_w - self.static_w) / self.knobs["pp"]) * time_s
