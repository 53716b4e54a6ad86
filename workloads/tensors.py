"""Tensors: the operands of operators, with the facts the cost model needs to place their bytes.

A tensor says how many elements it has, how they are stored (dtype, optional group quantization),
what it is (a weight, an activation, a KV-cache entry, a recurrent state) and where it lives
(device memory, host memory, a CXL expander). It never says how long anything takes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hwmodels.dtypes import DTYPE_BYTES, normalize_dtype
from hwmodels.errors import InputError

ROLES = ("weight", "activation", "kv", "state")
PLACEMENTS = ("device", "host", "cxl")
# Group-quantized formats (GPTQ/AWQ style) store one fp16 scale per group ...
QUANT_SCALE_BYTES = 2.0
# ... and one zero-point per group, stored in the weight's own integer format.
QUANTIZED_DTYPES = ("int4", "int8")


@dataclass(frozen=True, slots=True)
class Tensor:
    """One operand: ``shape`` elements of ``dtype`` playing ``role``, stored at ``placement``.

    ``group_size`` (int4/int8 only) means the tensor is group-quantized: every ``group_size``
    consecutive elements share one fp16 scale and one zero-point in the tensor's own format, and
    those bytes are part of :attr:`bytes`.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    role: str = "activation"
    placement: str = "device"
    group_size: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        object.__setattr__(self, "dtype", normalize_dtype(self.dtype, path=f"{self.name}.dtype"))
        if any(d < 0 for d in self.shape):
            raise InputError(f"tensor shape {self.shape} has a negative dimension", path=self.name)
        if self.role not in ROLES:
            raise InputError(f"unknown tensor role '{self.role}'; expected one of: {', '.join(ROLES)}",
                             path=f"{self.name}.role")
        if self.placement not in PLACEMENTS:
            raise InputError(f"unknown placement '{self.placement}'; expected one of: "
                             f"{', '.join(PLACEMENTS)}", path=f"{self.name}.placement")
        if self.group_size is not None:
            if self.dtype not in QUANTIZED_DTYPES:
                raise InputError(f"group_size applies to {' and '.join(QUANTIZED_DTYPES)} weights, "
                                 f"not {self.dtype}", path=f"{self.name}.group_size")
            if self.group_size <= 0:
                raise InputError("group_size must be positive", path=f"{self.name}.group_size")

    @property
    def numel(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)

    @property
    def groups(self) -> int:
        """Number of quantization groups (0 when not group-quantized)."""
        return math.ceil(self.numel / self.group_size) if self.group_size else 0

    @property
    def scale_bytes(self) -> float:
        """Bytes of group scales and zero-points."""
        return self.groups * (QUANT_SCALE_BYTES + DTYPE_BYTES[self.dtype])

    @property
    def bytes(self) -> float:
        """Storage in bytes: elements x dtype size, plus quantization scales and zero-points."""
        return self.numel * DTYPE_BYTES[self.dtype] + self.scale_bytes

    def with_placement(self, placement: str) -> Tensor:
        """The same tensor stored elsewhere."""
        return Tensor(self.name, self.shape, self.dtype, self.role, placement, self.group_size)
