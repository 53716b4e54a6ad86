"""Accumulating an operator's demands: FLOPs on engines, bytes on memory levels and links.

A cost function (see :mod:`roofline.costs`) describes an operator's work to a
:class:`DemandsBuilder`: ``compute(...)`` for FLOPs of a class and dtype, ``memory(...)`` for
bytes at a level, ``tensor(...)`` for an operand read or written where it is placed (its memory
level, and the link that reaches it), ``link(...)`` for bytes over a link, ``fixed(...)`` for
latency. :meth:`DemandsBuilder.build` turns that into a :class:`~roofline.demands.Demands` with
the effective rate of every resource.

The builder works on Python floats or, with ``xp=VECTOR``, on numpy arrays of shapes (one
operator shape per element): the vectorized sweeps use the very same cost functions.
"""

from __future__ import annotations

import numpy as np

from .demands import Demands
from .efficiency import engine_base_efficiency, link_efficiency, memory_efficiency
from .hardware import device_info
from .mathns import SCALAR

_ACCUMULATED = ("work", "_seconds", "_peak_seconds", "flops_by_dtype")


class DemandsBuilder:
    """Collects the demands of one operator on one device (see module docstring)."""

    def __init__(self, op_name: str, kind: str, device, xp=SCALAR, info=None):
        self.op_name = op_name
        self.kind = kind
        self.device = device
        self.info = info or device_info(device)
        self.xp = xp
        self.work: dict[str, object] = {}
        self._seconds: dict[str, object] = {}   # compute key -> sum of FLOPs / effective rate
        self._peak_seconds: dict[str, object] = {}   # compute key -> sum of FLOPs / peak rate
        self.energy_j = 0.0
        self.flops_by_dtype: dict[str, object] = {}
        self._latency_s = 0.0   # the largest access latency touched
        self._extra_fixed_s = 0.0
        self._link_efficiency: dict[str, float] = {}   # link key -> efficiency given with its bytes
        # fraction of the main memory's streaming rate this operator's traffic reaches (a GEMM's
        # tile pipeline: roofline.efficiency.gemm_memory_fraction); 1 for a streaming kernel
        self.main_memory_fraction = 1.0

    def _link_rate(self, key: str, res):
        return res.bandwidth_bytes_s * self._link_efficiency.get(key, link_efficiency(res))

    def _add(self, key: str, amount) -> None:
        work = self.work
        work[key] = work.get(key, 0.0) + amount

    def compute(self, flop_class: str, dtype: str, flops, shape_util=1.0, ramp=1.0) -> None:
        """``flops`` FLOPs of ``flop_class`` (matrix/vector/special) at ``dtype``.

        ``shape_util`` (tile padding x wave quantization) scales the engine's efficiency always;
        ``ramp`` only where no calibration curve replaces the default efficiency.
        """
        if self.xp is SCALAR and flops <= 0:
            return
        choice = self.info.engine_for(flop_class, dtype)
        eff = engine_base_efficiency(choice.engine, choice.dtype, flops, self.xp, ramp) * shape_util
        key = choice.key
        self._add(key, flops)
        self._seconds[key] = self._seconds.get(key, 0.0) + flops / (choice.peak_flops * eff)
        self._peak_seconds[key] = self._peak_seconds.get(key, 0.0) + flops / choice.peak_flops
        self.flops_by_dtype[dtype] = self.flops_by_dtype.get(dtype, 0.0) + flops
        self.energy_j += flops * self.device.power.energy_j_per_flop.get(choice.dtype, 0.0)

    def add_flops(self, flops: dict, matrix_util=1.0, matrix_ramp=1.0) -> None:
        """An operator's ``flops()`` (``(class, dtype) -> FLOPs``); ``matrix_util`` and
        ``matrix_ramp`` apply to its matrix FLOPs (see :meth:`compute`)."""
        for (flop_class, dtype), amount in flops.items():
            if flop_class == "matrix":
                self.compute(flop_class, dtype, amount, matrix_util, matrix_ramp)
            else:
                self.compute(flop_class, dtype, amount)

    def memory(self, level: str, nbytes) -> None:
        """``nbytes`` read or written at memory level ``level``."""
        if self.xp is SCALAR and nbytes <= 0:
            return
        key = self.info.memory_key[level]
        self._add(key, nbytes)
        lv = self.info.resource[key]
        self.energy_j += nbytes * lv.energy_j_per_byte
        if lv.latency_s > self._latency_s:
            self._latency_s = lv.latency_s

    def link(self, name: str, nbytes, efficiency: float | None = None) -> None:
        """``nbytes`` over link ``name`` (per direction); ``efficiency``: the fraction of the
        link's bandwidth this traffic reaches, when not the link's own (a collective library's,
        :func:`~roofline.efficiency.collective_link_efficiency`)."""
        if self.xp is SCALAR and nbytes <= 0:
            return
        key = self.info.link_key[name]
        self._add(key, nbytes)
        if efficiency is not None:
            self._link_efficiency[key] = efficiency
        lk = self.info.resource[key]
        self.energy_j += nbytes * lk.energy_j_per_byte
        if lk.latency_s > self._latency_s:
            self._latency_s = lk.latency_s

    def placed(self, placement: str, nbytes) -> str:
        """``nbytes`` of data stored at ``placement`` (device/host/cxl): its memory level and, off the
        device, the link that reaches it. Returns the memory level's name."""
        level, link = self.info.placement(placement)
        self.memory(level, nbytes)
        if link is not None:
            self.link(link, nbytes)
        return level

    def tensor(self, tensor, times=1.0) -> str:
        """A tensor read or written ``times`` times where it is placed; returns its level."""
        return self.placed(tensor.placement, tensor.bytes * times)

    def fixed(self, seconds: float) -> None:
        """Latency no bandwidth can shorten (e.g. the steps of a collective)."""
        self._extra_fixed_s += seconds

    def _rates(self) -> tuple[dict, dict]:
        xp = self.xp
        rates, peaks = {}, {}
        resource = self.info.resource
        for key, amount in self.work.items():
            res = resource.get(key)
            if res is None:   # a compute key
                rates[key] = amount / self._seconds[key]
                peaks[key] = amount / self._peak_seconds[key]
            elif key[0] == "m":
                peaks[key] = res.bandwidth_bytes_s
                rates[key] = res.bandwidth_bytes_s * memory_efficiency(res, amount, xp) * self._fraction(key)
            else:
                peaks[key] = res.bandwidth_bytes_s
                rates[key] = self._link_rate(key, res)
        return rates, peaks

    def _fraction(self, key: str) -> float:
        """:attr:`main_memory_fraction` for the main memory's key, else 1."""
        if self.main_memory_fraction == 1.0 or key != self.info.memory_key[self.device.main_memory]:
            return 1.0
        return self.main_memory_fraction

    def spawn(self) -> DemandsBuilder:
        """An empty builder for the same operator and device (to cost an alternative)."""
        other = DemandsBuilder(self.op_name, self.kind, self.device, self.xp, self.info)
        other.main_memory_fraction = self.main_memory_fraction
        return other

    def busy_s(self):
        """max over resources of work / effective rate, without fixed latency."""
        if self.xp is SCALAR:
            return self._busy_scalar()
        rates, _ = self._rates()
        times = [self.work[k] / rates[k] for k in self.work]
        return np.max(np.vstack(np.broadcast_arrays(*times)), axis=0) if times else 0.0

    def _busy_scalar(self) -> float:
        busy = 0.0
        resource = self.info.resource
        for key, amount in self.work.items():
            res = resource.get(key)
            if res is None:
                t = self._seconds[key]
            elif key[0] == "m":
                t = amount / (res.bandwidth_bytes_s * memory_efficiency(res, amount) * self._fraction(key))
            else:
                t = amount / self._link_rate(key, res)
            if t > busy:
                busy = t
        return busy

    def adopt_fastest(self, candidates: list[DemandsBuilder]) -> None:
        """Add the work of the candidate with the smallest time, its own fixed latency included
        (per shape in vector mode): the alternative a kernel library or autotuner would run."""
        busy = [c.busy_s() + c.extra_fixed_s for c in candidates]
        if self.xp is SCALAR:
            self._absorb(candidates[busy.index(min(busy))], None)
            return
        stacked = np.vstack(np.broadcast_arrays(*busy))
        self._absorb(candidates, np.argmin(stacked, axis=0))

    def include(self, other: DemandsBuilder) -> None:
        """Add all of ``other``'s work, energy and latencies (one part of this operator's work,
        costed in a builder of its own)."""
        self._absorb(other, None)

    def _absorb(self, chosen, index) -> None:
        """Add ``chosen``'s accumulated work (a builder; or, with ``index``, per element from the
        candidate builders ``chosen[index]``)."""
        cands = [chosen] if index is None else chosen
        for attr in _ACCUMULATED:
            mine = getattr(self, attr)
            for key in dict.fromkeys(k for c in cands for k in getattr(c, attr)):
                if index is None:
                    value = getattr(chosen, attr)[key]
                else:
                    values = np.broadcast_arrays(*(getattr(c, attr).get(key, 0.0) for c in cands), index)
                    value = np.choose(values[-1], values[:-1])
                mine[key] = mine.get(key, 0.0) + value
        if index is None:
            self.energy_j += chosen.energy_j
        else:
            energies = np.broadcast_arrays(*(c.energy_j for c in cands), index)
            self.energy_j += np.choose(energies[-1], energies[:-1])
        for c in cands:
            self._latency_s = max(self._latency_s, c._latency_s)
            self._link_efficiency.update(c._link_efficiency)
        if index is None:
            self._extra_fixed_s = self._extra_fixed_s + chosen._extra_fixed_s
        else:
            extras = np.broadcast_arrays(*(c._extra_fixed_s for c in cands), index)
            self._extra_fixed_s = self._extra_fixed_s + np.choose(extras[-1], extras[:-1])

    @property
    def extra_fixed_s(self):
        """Fixed latency this builder's work adds beyond launch and access latency (e.g. the
        second kernel of a split-K GEMM)."""
        return self._extra_fixed_s

    @property
    def fixed_s(self) -> float:
        """Launch overhead + the largest access latency touched + explicit latencies."""
        return self.device.launch_overhead_s + self._latency_s + self._extra_fixed_s

    def build(self) -> Demands:
        """The accumulated :class:`Demands` (scalar mode)."""
        rates, peaks = self._rates()
        return Demands(self.op_name, dict(self.work), rates, self.fixed_s, float(self.energy_j),
                       self.kind, dict(self.flops_by_dtype), peaks)

    def build_arrays(self) -> tuple[dict, dict, float, object]:
        """(work, rates, fixed_s, energy_j) with numpy arrays per key (vector mode)."""
        rates, _ = self._rates()
        return dict(self.work), rates, self.fixed_s, self.energy_j
