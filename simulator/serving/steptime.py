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
operators the step's graph holds. Models whose layers differ (MLA's two attention forms, leading
dense layers, pipeline stages) take the slow road: the whole graph, summed.

Energy follows the simulator's model: dynamic energy of every operator on every rank, plus the
devices' active power over the step (idle power between steps is the replica's business).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from workloads.batch import PrefillChunk, build_step, step_knobs, step_segments
from workloads.configs import ModelConfig, load_config
from workloads.graph import Graph
from workloads.llm import Segment, _Builder

HEAD_OPS = ("model.norm", "lm_head", "lm_head.all_gather")


@dataclasses.dataclass(frozen=True)
class StepCost:
    """``time_s`` of one step on its replica and the ``energy_j`` its devices spend meanwhile."""

    time_s: float
    energy_j: float


class StepTimeModel:
    """Step time and energy of ``model`` on ``hardware`` (one replica: ``tp`` x ``pp`` devices).

    >>> m = StepTimeModel("llama-3.1-8b", "h100-sxm")
    >>> m.step([PrefillChunk(512, 0)], 8, 8 * 1000).time_s   # a chunk and 8 decodes at 1000 tokens
    """

    def __init__(self, model: str | ModelConfig, hardware, **knobs):
        from ..simulate import _as_system

        self.cfg = model if isinstance(model, ModelConfig) else load_config(model)
        self.knobs = step_knobs(self.cfg, **knobs)
        self.ranks = self.knobs["tp"] * self.knobs["pp"]
        self.system = _as_system(hardware, self.ranks)
        nodes = self.system.accelerators[:self.ranks]
        self.device = self.system.devices[nodes[0]]
        self.active_w = sum(self.system.devices[n].power.active_w for n in nodes)
        self.static_w = sum(self.system.devices[n].power.static_w for n in nodes)
        self.fast = (self.knobs["pp"] == 1 and self.cfg.family != "mla" and not self.cfg.first_dense)
        self._one_layer = dataclasses.replace(self.cfg, layers=1)
        self._dense: dict[int, tuple[float, float]] = {}
        self._head: dict[int, tuple[float, float]] = {}
        self._attn: dict[tuple[int, int, int], tuple[float, float]] = {}
        self._slow: dict[tuple, tuple[float, float]] = {}
        self._attn_probe = None

    # -- parts ---------------------------------------------------------------------------------
    def _cost(self, ops) -> tuple[float, float]:
        from roofline.costs import shared_cost
        from roofline.hardware import device_info

        memo = device_info(self.device).memo
        t = e = 0.0
        for op in ops:
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
            g = self._probe(tokens, 1)
            layer = [op for op in g.ops if op.name.startswith("model.layers.0.") and op.kind != "attention"]
            base = [op for op in g.ops if not op.name.startswith("model.layers.") and op.name not in HEAD_OPS]
            if self._attn_probe is None:
                self._attn_probe = next(op for op in g.ops if op.kind == "attention")
            (lt, le), (bt, be) = self._cost(layer), self._cost(base)
            hit = self._dense[tokens] = (bt + self.cfg.layers * lt, be + self.cfg.layers * le)
        return hit

    def head(self, rows: int) -> tuple[float, float]:
        """(time, energy per rank) of the final norm and LM head over ``rows`` sampled rows."""
        hit = self._head.get(rows)
        if hit is None:
            g = self._probe(rows, rows)
            hit = self._head[rows] = self._cost([op for op in g.ops if op.name in HEAD_OPS])
        return hit

    def attention(self, batch: int, q_len: int, kv_len: int) -> tuple[float, float]:
        """(time, energy per rank) of one attention segment in every layer."""
        key = (batch, q_len, kv_len)
        hit = self._attn.get(key)
        if hit is None:
            if self._attn_probe is None:
                self.dense(1)
            op = dataclasses.replace(self._attn_probe, batch=batch, q_len=q_len, kv_len=kv_len,
                                     inputs=[], outputs=[])
            t, e = self._cost([op])
            hit = self._attn[key] = (t * self.cfg.layers, e * self.cfg.layers)
        return hit

    # -- a step --------------------------------------------------------------------------------
    def step(self, prefills: Sequence[PrefillChunk] = (), decodes: int = 0, decode_context: int = 0) -> StepCost:
        """Cost of a step running ``prefills`` and ``decodes`` decodes whose contexts sum to
        ``decode_context`` tokens (the decodes run as one segment at the mean, rounded up)."""
        if not self.fast:
            return self._slow_step(prefills, decodes, decode_context)
        tokens = decodes + sum(p.tokens for p in prefills)
        t, e = self.dense(tokens)
        ht, he = self.head(decodes + len(prefills))
        t, e = t + ht, e + he
        for p in prefills:
            at, ae = self.attention(1, p.tokens, p.cached + p.tokens)
            t, e = t + at, e + ae
        if decodes:
            at, ae = self.attention(decodes, 1, math.ceil(decode_context / decodes) + 1)
            t, e = t + at, e + ae
        return StepCost(t, e * self.ranks + self._power_j(t))

    def _slow_step(self, prefills, decodes: int, decode_context: int) -> StepCost:
        mean = math.ceil(decode_context / decodes) if decodes else 0
        key = (tuple(prefills), decodes, mean)
        hit = self._slow.get(key)
        if hit is None:
            step_segments(prefills, [mean] * decodes)     # checks the batch
            g = build_step(self.cfg, prefills, [mean] * decodes, knobs=self.knobs)
            hit = self._slow[key] = self._cost(g.ops)
        t, e = hit
        # one rank's operators per stage: a stage's ranks are alike, stages run one after the other
        return StepCost(t, e * self.knobs["tp"] + self._power_j(t))

    def _power_j(self, time_s: float) -> float:
        """Idle power of every device over the step, plus the active baseline of the stage that
        runs (each stage is busy for its share of a pipelined step's time)."""
        return (self.static_w + (self.active_w - self.static_w) / self.knobs["pp"]) * time_s
