"""Micro-benchmark kernels on the CPU through numpy, and the shape grids they run over.

A :class:`KernelCase` names one kernel at one shape and dtype, says whether it is used for
fitting or held out for validation, and carries its nominal work: FLOPs and the bytes the
implementation moves through memory. Families live in :data:`NUMPY_KERNELS` (name ->
:class:`KernelFamily`); the torch kernels in :mod:`calibration.torch_kernels` follow the same
shape.

Byte counts follow the implementation, not the textbook: numpy's STREAM triad is two
ufunc passes (``a = s*c`` then ``a += b``), so it moves five arrays' worth of bytes, not
three. STREAM kernels run in one ufunc call each and so use one core: their bandwidths are
what a numpy operator attains, which is what the overlay must predict.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

NUMPY_DTYPES = {"fp32": np.float32, "fp64": np.float64}


@dataclass(frozen=True)
class KernelCase:
    """One kernel to measure: family, backend, device, dtype, shape, and its split (fit | holdout)."""

    kernel: str
    dtype: str
    params: tuple[tuple[str, int], ...]
    split: str = "fit"
    backend: str = "numpy"
    device: str = "host"
    flops: float = 0.0
    bytes_moved: float = 0.0
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def shape(self) -> dict[str, int]:
        return dict(self.params)

    @property
    def case_id(self) -> str:
        dims = ",".join(f"{k}={v}" for k, v in self.params)
        return f"{self.backend}:{self.device}:{self.kernel}:{self.dtype}[{dims}]"


@dataclass(frozen=True)
class KernelFamily:
    """How to build, and count the work of, one kind of kernel.

    ``make(shape, dtype, rng)`` returns a zero-argument callable that runs the kernel once on
    buffers it allocated (outside the timed region); ``flops``/``bytes_moved`` give its work.
    """

    make: Callable[[dict, str, np.random.Generator], Callable[[], object]]
    flops: Callable[[dict], float]
    bytes_moved: Callable[[dict, int], float]   # (shape, bytes per element)


def _arr(rng, shape, dtype):
    return rng.standard_normal(shape).astype(NUMPY_DTYPES[dtype])


def _make_gemm(s, dtype, rng):
    a, b = _arr(rng, (s["m"], s["k"]), dtype), _arr(rng, (s["k"], s["n"]), dtype)
    c = np.empty((s["m"], s["n"]), dtype=NUMPY_DTYPES[dtype])
    return lambda: np.matmul(a, b, out=c)


def _stream_arrays(s, dtype, rng, count):
    # values do not matter to a stream; np.full touches every page, like random data, but fast
    return [np.full(s["n"], 1.0 + i, dtype=NUMPY_DTYPES[dtype]) for i in range(count)]


def _make_copy(s, dtype, rng):
    a, b = _stream_arrays(s, dtype, rng, 2)
    return lambda: np.copyto(b, a)


def _make_scale(s, dtype, rng):
    a, b = _stream_arrays(s, dtype, rng, 2)
    q = NUMPY_DTYPES[dtype](3.0)
    return lambda: np.multiply(a, q, out=b)


def _make_add(s, dtype, rng):
    a, b, c = _stream_arrays(s, dtype, rng, 3)
    return lambda: np.add(a, b, out=c)


def _make_triad(s, dtype, rng):
    a, b, c = _stream_arrays(s, dtype, rng, 3)
    q = NUMPY_DTYPES[dtype](3.0)

    def triad():
        np.multiply(c, q, out=a)
        np.add(a, b, out=a)
    return triad


def softmax_rows(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Numerically stable softmax over the last axis, written into ``out``."""
    np.subtract(x, x.max(axis=-1, keepdims=True), out=out)
    np.exp(out, out=out)
    np.divide(out, out.sum(axis=-1, keepdims=True), out=out)
    return out


def layernorm_rows(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, out: np.ndarray,
                   eps: float = 1e-5) -> np.ndarray:
    """LayerNorm over the last axis with scale ``gamma`` and shift ``beta``, into ``out``."""
    mean = x.mean(axis=-1, keepdims=True)
    np.subtract(x, mean, out=out)
    var = np.mean(out * out, axis=-1, keepdims=True)
    np.multiply(out, 1.0 / np.sqrt(var + eps), out=out)
    np.multiply(out, gamma, out=out)
    np.add(out, beta, out=out)
    return out


def gelu_tanh(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """GELU, tanh approximation (as GPT-2 and LLMCompass use), into ``out``."""
    c = x.dtype.type(np.sqrt(2.0 / np.pi))
    np.multiply(x, x, out=out)
    np.multiply(out, x, out=out)
    np.multiply(out, x.dtype.type(0.044715), out=out)
    np.add(out, x, out=out)
    np.multiply(out, c, out=out)
    np.tanh(out, out=out)
    np.add(out, x.dtype.type(1.0), out=out)
    np.multiply(out, x, out=out)
    np.multiply(out, x.dtype.type(0.5), out=out)
    return out


def _make_launch(s, dtype, rng):
    a, b, c = _stream_arrays(s, dtype, rng, 3)
    return lambda: np.add(a, b, out=c)


def _make_softmax(s, dtype, rng):
    x = _arr(rng, (s["rows"], s["cols"]), dtype)
    y = np.empty_like(x)
    return lambda: softmax_rows(x, y)


def _make_layernorm(s, dtype, rng):
    x = _arr(rng, (s["rows"], s["cols"]), dtype)
    g, b = _arr(rng, (s["cols"],), dtype), _arr(rng, (s["cols"],), dtype)
    y = np.empty_like(x)
    return lambda: layernorm_rows(x, g, b, y)


def _make_gelu(s, dtype, rng):
    x = _arr(rng, (s["n"],), dtype)
    y = np.empty_like(x)
    return lambda: gelu_tanh(x, y)


NUMPY_KERNELS: dict[str, KernelFamily] = {
    # the fixed cost of one numpy call: an add of one element
    "launch": KernelFamily(_make_launch, lambda s: float(s["n"]), lambda s, b: 3.0 * s["n"] * b),
    "gemm": KernelFamily(_make_gemm, lambda s: 2.0 * s["m"] * s["n"] * s["k"],
                         lambda s, b: float(s["m"] * s["k"] + s["k"] * s["n"] + s["m"] * s["n"]) * b),
    "stream_copy": KernelFamily(_make_copy, lambda s: 0.0, lambda s, b: 2.0 * s["n"] * b),
    "stream_scale": KernelFamily(_make_scale, lambda s: float(s["n"]), lambda s, b: 2.0 * s["n"] * b),
    "stream_add": KernelFamily(_make_add, lambda s: float(s["n"]), lambda s, b: 3.0 * s["n"] * b),
    # two passes: a = q*c (read c, write a), a = a + b (read a, b, write a)
    "stream_triad": KernelFamily(_make_triad, lambda s: 2.0 * s["n"], lambda s, b: 5.0 * s["n"] * b),
    # nominal work of a fused operator (read x once, write y once); the numpy implementation makes
    # several passes, which the cost model counts call by call (calibration.passes)
    "softmax": KernelFamily(_make_softmax, lambda s: 5.0 * s["rows"] * s["cols"],
                            lambda s, b: 2.0 * s["rows"] * s["cols"] * b),
    "layernorm": KernelFamily(_make_layernorm, lambda s: 8.0 * s["rows"] * s["cols"],
                              lambda s, b: (2.0 * s["rows"] * s["cols"] + 2.0 * s["cols"]) * b),
    "gelu": KernelFamily(_make_gelu, lambda s: 8.0 * s["n"], lambda s, b: 2.0 * s["n"] * b),
}

STREAM_KERNELS = ("stream_copy", "stream_scale", "stream_add", "stream_triad")


def make_case(kernel: str, dtype: str, split: str = "fit", **shape: int) -> KernelCase:
    """A numpy :class:`KernelCase` with its work filled in from the family's counts."""
    fam = NUMPY_KERNELS[kernel]
    nbytes = np.dtype(NUMPY_DTYPES[dtype]).itemsize
    return KernelCase(kernel, dtype, tuple(shape.items()), split,
                      flops=fam.flops(shape), bytes_moved=fam.bytes_moved(shape, nbytes))


def build_numpy(case: KernelCase, seed: int = 0) -> Callable[[], object]:
    """The zero-argument callable that runs ``case`` once (buffers allocated now)."""
    return NUMPY_KERNELS[case.kernel].make(case.shape, case.dtype, np.random.default_rng(seed))


# GEMM shapes (m, n, k). Fit and hold-out shapes interleave in size so that every held-out
# shape lies inside the fitted range (interpolation, not extrapolation).
GEMM_FIT = [(64, 64, 64), (128, 128, 128), (256, 256, 256), (512, 512, 512), (1024, 1024, 1024),
            (256, 1024, 512), (1024, 256, 256), (64, 1024, 1024), (2048, 2048, 2048)]
GEMM_HOLDOUT = [(96, 96, 96), (192, 192, 192), (384, 384, 384), (768, 768, 768),
                (512, 128, 768), (128, 768, 512), (1536, 1536, 1536), (384, 1536, 768)]
GEMM_FIT_QUICK = [(64, 64, 64), (128, 128, 128), (256, 256, 256), (512, 512, 512),
                  (1024, 1024, 1024), (256, 1024, 512), (64, 512, 512)]
GEMM_HOLDOUT_QUICK = [(96, 96, 96), (192, 192, 192), (384, 384, 384), (768, 768, 768),
                      (512, 128, 768), (128, 768, 512)]

# STREAM working sets in bytes (the sum of the arrays): powers of two from 16 KiB up to twice the
# last cache (the cache levels and the spill past the last one), then main memory at 3, 4 and 6
# times the last cache: its band starts at twice the last cache (calibration.fit.BAND_MARGIN), so
# three sizes lie inside it, the middle one held out (small multiples: each is allocated anew in
# every pass).
STREAM_MIN_WS = 2**14
MAIN_MEMORY_WS = (3, 4, 6)             # multiples of the last cache
DEFAULT_LAST_CACHE = 32 * 2**20        # where the OS does not tell
MAX_WS_FRACTION = 1 / 8                # of the machine's memory, at most, for one working set


def stream_working_sets(quick: bool = False, last_cache_bytes: int | None = None,
                        memory_bytes: int | None = None) -> list[tuple[int, str]]:
    """(working-set bytes, split) of the STREAM sweep, reaching every memory level (see above).

    Cache sizes step by 4x (quick) or 2x; every third is held out, never the two ends. Main
    memory sizes above ``memory_bytes`` / 8 are left out.
    """
    last = last_cache_bytes or DEFAULT_LAST_CACHE
    step = 2 if quick else 1
    caches = [2**k for k in range(14, 64, step) if 2**k <= 2 * last]
    out = [(ws, "holdout" if 0 < i < len(caches) - 1 and i % 3 == 1 else "fit") for i, ws in enumerate(caches)]
    main = [m * last for m in MAIN_MEMORY_WS if not memory_bytes or m * last <= memory_bytes * MAX_WS_FRACTION]
    out += [(ws, "holdout" if len(main) == 3 and i == 1 else "fit") for i, ws in enumerate(main)]
    return out


def _machine_memory() -> tuple[int | None, int | None]:
    """(largest per-instance cache, physical memory) of this machine, None where unknown."""
    import os

    from .fingerprint import cpu_caches

    caches = cpu_caches()
    try:
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        memory = None
    return (max(caches.values()) if caches else None), memory

ROWWISE_FIT = [(64, 256), (256, 256), (256, 1024), (1024, 1024), (1024, 4096)]
ROWWISE_HOLDOUT = [(128, 512), (512, 2048)]
GELU_FIT = [2**12, 2**14, 2**16, 2**18, 2**20]
GELU_HOLDOUT = [2**15, 2**19]


def numpy_plan(quick: bool = False) -> list[KernelCase]:
    """Every numpy case of a calibration run, fit shapes first."""
    cases: list[KernelCase] = [make_case("launch", "fp64", "fit", n=1)]
    gemm_dtypes = {"fp32": (GEMM_FIT_QUICK, GEMM_HOLDOUT_QUICK) if quick else (GEMM_FIT, GEMM_HOLDOUT),
                   "fp64": (GEMM_FIT_QUICK[:5], GEMM_HOLDOUT_QUICK[:3]) if quick
                   else (GEMM_FIT[:6], GEMM_HOLDOUT[:4])}
    for dtype, (fit, hold) in gemm_dtypes.items():
        for split, shapes in (("fit", fit), ("holdout", hold)):
            cases += [make_case("gemm", dtype, split, m=m, n=n, k=k) for m, n, k in shapes]
    working_sets = stream_working_sets(quick, *_machine_memory())
    stream = ("stream_copy", "stream_add") if quick else STREAM_KERNELS
    for kernel in stream:
        arrays = 2 if kernel in ("stream_copy", "stream_scale") else 3
        cases += [make_case(kernel, "fp64", split, n=ws // (8 * arrays)) for ws, split in working_sets]
    for kernel in ("softmax", "layernorm"):
        shapes = [(ROWWISE_FIT, "fit"), (ROWWISE_HOLDOUT, "holdout")]
        for group, split in shapes:
            for rows, cols in (group[::2] if quick else group):
                cases.append(make_case(kernel, "fp32", split, rows=rows, cols=cols))
    for group, split in ((GELU_FIT, "fit"), (GELU_HOLDOUT, "holdout")):
        cases += [make_case("gelu", "fp32", split, n=n) for n in (group[::2] if quick else group)]
    return cases
