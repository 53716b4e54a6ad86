"""Numpy calls as operators: what the numpy kernels of :mod:`calibration.kernels` really execute.

Every numpy call (a ufunc such as ``np.subtract`` or ``np.tanh``, a reduction such as
``x.max(axis=-1)``) is one pass: it reads whole arrays and writes a whole array, and pays the
call's fixed cost. :class:`NumpyPasses` turns each call into one ``elementwise`` operator with
the arrays it really reads and writes (a broadcast row vector is read as the small array it is;
a reduction writes its small result), so the cost model counts the passes numpy makes rather
than one fused operator. ``softmax_passes``, ``layernorm_passes`` and ``gelu_passes`` follow
:func:`~calibration.kernels.softmax_rows`, :func:`~calibration.kernels.layernorm_rows` and
:func:`~calibration.kernels.gelu_tanh` call for call.

:func:`place_in_cache` says where such a chain's data lives: numpy re-reads the same few arrays
pass after pass, so when they fit in a cache level they stay there (see
:func:`calibration.fit.resident_level`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from roofline.costs import COSTS
from workloads.operators import Elementwise
from workloads.tensors import Tensor

from .fit import level_capacities, resident_level


@dataclass
class NumpyPasses:
    """Collects the operators of a sequence of numpy calls; names are ``<prefix>.<call>``."""

    prefix: str
    dtype: str = "fp32"
    ops: list = field(default_factory=list)

    def array(self, name: str, shape: tuple[int, ...], role: str = "activation"):
        """A numpy array of this kernel (a tensor of its operators)."""
        return Tensor(f"{self.prefix}.{name}", tuple(shape), self.dtype, role)

    def call(self, what: str, out, *reads, flops: float = 1.0, special: bool = False):
        """One numpy call writing ``out`` and reading the distinct arrays ``reads`` (an array
        passed twice, as in ``x * x``, is read once). ``flops``: vector FLOPs per element of the
        largest operand; ``special``: it also evaluates one transcendental per element."""
        numel = max(t.numel for t in (out, *reads))
        self.ops.append(Elementwise(name=f"{self.prefix}.{what}", numel=numel, flops_per_element=flops,
                                    special=special, dtype=self.dtype, inputs=list(reads), outputs=[out]))
        return out


def softmax_passes(prefix: str, rows: int, cols: int, dtype: str = "fp32", x=None, out=None) -> list:
    """:func:`~calibration.kernels.softmax_rows`: max, subtract, exp, sum, divide."""
    p = NumpyPasses(prefix, dtype)
    x = x or p.array("x", (rows, cols))
    y = out or p.array("out", (rows, cols))
    m = p.call("max", p.array("rowmax", (rows, 1)), x)
    p.call("subtract", y, x, m)
    p.call("exp", y, y, flops=0.0, special=True)
    s = p.call("sum", p.array("rowsum", (rows, 1)), y)
    p.call("divide", y, y, s)
    return p.ops


def layernorm_passes(prefix: str, rows: int, cols: int, dtype: str = "fp32", x=None, out=None) -> list:
    """:func:`~calibration.kernels.layernorm_rows`: mean (a sum, then a divide of the row
    vector), subtract, square (a temporary), mean, add eps, sqrt, reciprocal, normalize, scale,
    shift."""
    p = NumpyPasses(prefix, dtype)
    x = x or p.array("x", (rows, cols))
    y = out or p.array("out", (rows, cols))
    gamma, beta = p.array("gamma", (cols,), "weight"), p.array("beta", (cols,), "weight")
    mean = p.call("mean_sum", p.array("mean", (rows, 1)), x)
    p.call("mean_divide", mean, mean)
    p.call("subtract", y, x, mean)
    sq = p.call("square", p.array("square", (rows, cols)), y)
    var = p.call("var_sum", p.array("var", (rows, 1)), sq)
    p.call("var_divide", var, var)
    var_eps = p.call("add_eps", p.array("var_eps", (rows, 1)), var)
    std = p.call("sqrt", p.array("std", (rows, 1)), var_eps)
    inv = p.call("reciprocal", p.array("inv_std", (rows, 1)), std)
    p.call("normalize", y, y, inv)
    p.call("scale", y, y, gamma)
    p.call("shift", y, y, beta)
    return p.ops


def gelu_passes(prefix: str, numel: int, dtype: str = "fp32", x=None, out=None) -> list:
    """:func:`~calibration.kernels.gelu_tanh`: nine ufunc calls, the sixth a tanh."""
    p = NumpyPasses(prefix, dtype)
    x = x or p.array("x", (numel,))
    y = out or p.array("out", (numel,))
    p.call("square", y, x)
    p.call("cube", y, y, x)
    p.call("times_0.044715", y, y)
    p.call("plus_x", y, y, x)
    p.call("times_sqrt_2_over_pi", y, y)
    p.call("tanh", y, y, flops=0.0, special=True)
    p.call("plus_1", y, y)
    p.call("times_x", y, y, x)
    p.call("times_0.5", y, y)
    return p.ops


def working_set_bytes(ops) -> float:
    """Bytes of the distinct device-placed tensors that ``ops`` touch."""
    seen = {t.name: t.bytes for op in ops for t in (*op.inputs, *op.outputs) if t.placement == "device"}
    return float(sum(seen.values()))


def place_in_cache(ops, device, caches: dict[str, int] | None = None) -> str:
    """Mark the streaming operators of ``ops`` (those without a cost function of their own, e.g.
    not GEMMs, whose tiling model places their traffic) as ``resident`` in the level that holds
    the working set of all of ``ops`` (:func:`calibration.fit.resident_level`); returns it.
    ``caches``: per-instance cache sizes (one core's L1/L2), else the device's capacities."""
    level = resident_level(working_set_bytes(ops), level_capacities(device, caches))
    if level != device.main_memory:
        for op in ops:
            if op.kind not in COSTS:
                op.resident = level
    return level
