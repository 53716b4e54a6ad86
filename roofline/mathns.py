"""One formula, two number types: the cost formulas run on Python floats or numpy arrays.

The scalar cost functions and the vectorized ``*_batch`` functions call the same formula code
with a namespace of elementary operations: :data:`SCALAR` (the ``math`` module, fast on one
value) or :data:`VECTOR` (numpy, fast on a million). So there is one cost model, not a second
one for sweeps.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

from hwmodels.device import interp_clamped


def _where_scalar(cond, a, b):
    return a if cond else b


SCALAR = SimpleNamespace(
    ceil=math.ceil, floor=math.floor, sqrt=math.sqrt, minimum=min, maximum=max, log10=math.log10,
    where=_where_scalar, interp=interp_clamped,
)

VECTOR = SimpleNamespace(
    ceil=np.ceil, floor=np.floor, sqrt=np.sqrt, minimum=np.minimum, maximum=np.maximum, log10=np.log10,
    where=np.where, interp=np.interp,
)
