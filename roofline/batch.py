"""Vectorized cost of many GEMM shapes at once, through the same cost function as one GEMM.

:func:`cost_matmul_batch` runs :func:`roofline.costs.gemm_into` (the scalar GEMM cost) on numpy
arrays: one element per shape. Bytes per element and FLOPs per weight element come from a probe
:class:`workloads.operators.MatMul` of the same dtypes, so quantization scales and dequantization
FLOPs are counted exactly as for a single operator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwmodels.errors import InputError
from workloads.operators import MatMul

from .builder import DemandsBuilder
from .costs import gemm_into
from .demands import LATENCY_BOUND
from .efficiency import gemm_memory_fraction
from .mathns import VECTOR


@dataclass
class BatchDemands:
    """Demands of N operators: every ``work``/``rates`` entry is an array of N values."""

    work: dict[str, np.ndarray]
    rates: dict[str, np.ndarray]
    fixed_s: float
    energy_j: np.ndarray

    def times(self) -> dict[str, np.ndarray]:
        """Seconds per resource per operator."""
        return {key: self.work[key] / self.rates[key] for key in self.work}

    def _stacked(self) -> tuple[list[str], np.ndarray]:
        times = self.times()
        keys = list(times)
        return keys, np.vstack([np.broadcast_to(times[k], self.energy_j.shape) for k in keys])

    @property
    def time_s(self) -> np.ndarray:
        """Analytic time per operator: max over resources + fixed latency."""
        _, stacked = self._stacked()
        return stacked.max(axis=0) + self.fixed_s

    @property
    def bound(self) -> np.ndarray:
        """The bounding resource key per operator."""
        keys, stacked = self._stacked()
        names = np.array(keys + [LATENCY_BOUND], dtype=object)
        idx = stacked.argmax(axis=0)
        idx = np.where(stacked.max(axis=0) >= self.fixed_s, idx, len(keys))
        return names[idx]


def _as_array(name: str, values) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(values, dtype=float))
    if arr.ndim != 1 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise InputError(f"{name} must be positive finite numbers", path=name)
    return arr


def cost_matmul_batch(m, n, k, device, *, batch: int = 1, dtype: str = "bf16",
                      weight_dtype: str | None = None, group_size: int | None = None,
                      weight_placement: str = "device") -> BatchDemands:
    """Demands of ``batch`` x (m x k) @ (k x n) GEMMs for arrays ``m``, ``n``, ``k`` (broadcast
    together), with the scalar cost model's formulas evaluated on arrays."""
    m, n, k = np.broadcast_arrays(_as_array("m", m), _as_array("n", n), _as_array("k", k))
    probe = MatMul(name="probe", m=1, n=group_size or 1, k=1, batch=batch, dtype=dtype,
                   weight_dtype=weight_dtype, group_size=group_size, weight_placement=weight_placement)
    a_t, b_t, c_t = probe.inputs[0], probe.inputs[1], probe.outputs[0]
    ea, eb, ec = (t.bytes / t.numel for t in (a_t, b_t, c_t))
    flops = {}
    for (flop_class, fdtype), amount in probe.flops().items():
        # matrix FLOPs scale with m n k; the others (dequantization) with the weight elements n k
        scale = (m * n * k / (probe.m * probe.n * probe.k) if flop_class == "matrix"
                 else n * k / (probe.n * probe.k))
        flops[(flop_class, fdtype)] = amount * scale
    builder = DemandsBuilder("batch", "matmul", device, xp=VECTOR)
    builder.main_memory_fraction = gemm_memory_fraction(probe, device)
    gemm_into(builder, m=m, n=n, k=k, instances=float(batch), flops=flops,
              a=(batch * m * k * ea, ea, a_t.placement), bm=(batch * k * n * eb, eb, b_t.placement),
              c=(batch * m * n * ec, ec, c_t.placement), xp=VECTOR)
    work, rates, fixed_s, energy = builder.build_arrays()
    return BatchDemands(work, rates, fixed_s, np.broadcast_to(np.asarray(energy, dtype=float), m.shape))
