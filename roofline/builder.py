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

from .demands import Demands
from .efficiency import engine_base_efficiency, memory_efficiency
from .hardware import device_info
from .mathns import SCALAR


class DemandsBuilder:
    """Collects the demands of one operator on one device (see module docstring)."""

    def __init__(self, op_name: str, kind: str, device, xp=SCALAR):
        self.op_name = op_name
        self.kind = kind
        self.device = device
        self.info = device_info(device)
        self.xp = xp
        self.work: dict[str, object] = {}
        self._seconds: dict[str, object] = {}   # compute key -> sum of FLOPs / effective rate
        self._peak_seconds: dict[str, object] = {}   # compute key -> sum of FLOPs / peak rate
        self.energy_j = 0.0
        self.flops_by_dtype: dict[str, object] = {}
        self._latencies: list[float] = []
        self._extra_fixed_s = 0.0

    def _add(self, key: str, amount) -> None:
        self.work[key] = self.work.get(key, 0.0) + amount

    def compute(self, flop_class: str, dtype: str, flops, shape_util=1.0, ramp=1.0) -> None:
        """``flops`` FLOPs of ``flop_class`` (matrix/vector/special) at ``dtype``.

        ``shape_util`` (tile padding x wave quantization) scales the engine's efficiency always;
        ``ramp`` only where no calibration curve replaces the default efficiency.
        """
        if self.xp is SCALAR and flops <= 0:
            return
        choice = self.info.engine_for(flop_class, dtype)
        eff = engine_base_efficiency(choice.engine, choice.dtype, flops, self.xp, ramp) * shape_util
        key = f"compute:{choice.name}"
        self._add(key, flops)
        self._seconds[key] = self._seconds.get(key, 0.0) + flops / (choice.peak_flops * eff)
        self._peak_seconds[key] = self._peak_seconds.get(key, 0.0) + flops / choice.peak_flops
        self.flops_by_dtype[dtype] = self.flops_by_dtype.get(dtype, 0.0) + flops
        self.energy_j += flops * self.device.power.energy_j_per_flop.get(choice.dtype, 0.0)

    def memory(self, level: str, nbytes) -> None:
        """``nbytes`` read or written at memory level ``level``."""
        if self.xp is SCALAR and nbytes <= 0:
            return
        self._add(f"memory:{level}", nbytes)
        lv = self.device.memory[level]
        self.energy_j += nbytes * lv.energy_j_per_byte
        self._latencies.append(lv.latency_s)

    def link(self, name: str, nbytes) -> None:
        """``nbytes`` over link ``name`` (per direction)."""
        if self.xp is SCALAR and nbytes <= 0:
            return
        self._add(f"link:{name}", nbytes)
        lk = self.device.links[name]
        self.energy_j += nbytes * lk.energy_j_per_byte
        self._latencies.append(lk.latency_s)

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
        for key, amount in self.work.items():
            kind, name = key.split(":", 1)
            if kind == "compute":
                rates[key] = amount / self._seconds[key]
                peaks[key] = amount / self._peak_seconds[key]
            elif kind == "memory":
                level = self.device.memory[name]
                peaks[key] = level.bandwidth_bytes_s
                rates[key] = level.bandwidth_bytes_s * memory_efficiency(level, amount, xp)
            else:
                peaks[key] = self.device.links[name].bandwidth_bytes_s
                rates[key] = self.info.link_rate(name)
        return rates, peaks

    @property
    def fixed_s(self) -> float:
        """Launch overhead + the largest access latency touched + explicit latencies."""
        latency = max(self._latencies) if self._latencies else 0.0
        return self.device.launch_overhead_s + latency + self._extra_fixed_s

    def build(self) -> Demands:
        """The accumulated :class:`Demands` (scalar mode)."""
        rates, peaks = self._rates()
        return Demands(self.op_name, dict(self.work), rates, self.fixed_s, float(self.energy_j),
                       self.kind, dict(self.flops_by_dtype), peaks)

    def build_arrays(self) -> tuple[dict, dict, float, object]:
        """(work, rates, fixed_s, energy_j) with numpy arrays per key (vector mode)."""
        rates, _ = self._rates()
        return dict(self.work), rates, self.fixed_s, self.energy_j
