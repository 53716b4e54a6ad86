"""Micro-benchmarks through torch, on the CPU and on CUDA GPUs, when torch is installed.

torch is imported lazily (only when these kernels are planned), so the rest of the
calibration works without it. On a GPU, time is taken with CUDA events (the host clock
would measure launch, not execution) and every sample ends with a synchronize.

Kernels: GEMM (fp32, bf16, fp16 and fp8 where the GPU has fp8 tensor cores, via
``torch._scaled_mm``), scaled-dot-product attention, and host<->device copies from pinned
memory.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

from hwmodels.errors import InputError

from .kernels import KernelCase
from .timing import Timer

TORCH_DTYPE_NAMES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "fp8": "float8_e4m3fn"}
ELEMENT_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2, "fp8": 1}

GEMM_FIT_GPU = [(512, 512, 512), (1024, 1024, 1024), (2048, 2048, 2048), (4096, 4096, 4096),
                (8192, 8192, 8192), (1024, 8192, 4096), (16384, 4096, 1024)]
GEMM_HOLDOUT_GPU = [(768, 768, 768), (1536, 1536, 1536), (3072, 3072, 3072), (6144, 6144, 6144),
                    (4096, 1024, 8192)]
GEMM_FIT_TORCH_CPU = [(128, 128, 128), (256, 256, 256), (512, 512, 512), (1024, 1024, 1024)]
GEMM_HOLDOUT_TORCH_CPU = [(192, 192, 192), (384, 384, 384), (768, 768, 768)]
SDPA_SHAPES = [(1, 32, 1024, 128), (4, 32, 2048, 128), (8, 32, 4096, 128)]  # batch, heads, seq, head_dim
COPY_BYTES = [2**20, 2**24, 2**28]


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def parse_device(device: str) -> tuple[str, int | None]:
    """``"host"`` -> ("host", None); ``"cuda"``/``"cuda:N"`` -> ("cuda", N); else InputError."""
    if device == "host":
        return "host", None
    if device == "cuda" or device.startswith("cuda:"):
        idx = device.partition(":")[2] or "0"
        if not idx.isdigit():
            raise InputError(f"bad GPU index in '{device}'; expected cuda or cuda:N", path="--device")
        return "cuda", int(idx)
    raise InputError(f"unknown device '{device}'; expected host, cuda or cuda:N", path="--device")


def require_cuda(index: int) -> None:
    """Raise InputError unless torch is installed and sees GPU ``index``."""
    if not torch_available():
        raise InputError(f"--device cuda:{index} needs torch with CUDA, and torch is not installed "
                         "(pip install torch); calibrate the CPU with --device host", path="--device")
    import torch

    if not torch.cuda.is_available():
        raise InputError(f"--device cuda:{index}: no CUDA GPU is visible to torch on this machine; "
                         "calibrate the CPU with --device host", path="--device")
    count = torch.cuda.device_count()
    if index >= count:
        raise InputError(f"--device cuda:{index}: this machine has {count} GPU(s) (cuda:0..cuda:{count - 1})",
                         path="--device")


def fp8_supported(index: int) -> bool:
    import torch

    major, minor = torch.cuda.get_device_capability(index)
    return (major, minor) >= (8, 9) and hasattr(torch, "_scaled_mm")


class CudaEventTimer(Timer):
    """Times a sample with CUDA events on the current stream (device time, not host time)."""

    def __init__(self, index: int):
        import torch

        super().__init__()
        self._torch = torch
        self._device = torch.device("cuda", index)
        self._start = torch.cuda.Event(enable_timing=True)
        self._end = torch.cuda.Event(enable_timing=True)

    def start(self) -> None:
        self._start.record()

    def stop(self) -> float:
        self._end.record()
        self._end.synchronize()
        return self._start.elapsed_time(self._end) / 1e3


def _gemm_case(dtype, split, m, n, k, device) -> KernelCase:
    b = ELEMENT_BYTES[dtype]
    return KernelCase("gemm", dtype, (("m", m), ("n", n), ("k", k)), split, backend="torch", device=device,
                      flops=2.0 * m * n * k, bytes_moved=float(m * k + k * n) * b + m * n * (2 if dtype == "fp8" else b))


def torch_plan(device: str, quick: bool = False) -> list[KernelCase]:
    """The torch cases for ``device`` ("host" or "cuda:N")."""
    kind, index = parse_device(device)
    cases: list[KernelCase] = []
    if kind == "host":
        fit, hold = GEMM_FIT_TORCH_CPU, GEMM_HOLDOUT_TORCH_CPU
        for split, shapes in (("fit", fit), ("holdout", hold)):
            cases += [_gemm_case("fp32", split, m, n, k, "host") for m, n, k in (shapes[:3] if quick else shapes)]
        return cases
    dtypes = ["fp32", "bf16", "fp16"] + (["fp8"] if fp8_supported(index) else [])
    fit, hold = (GEMM_FIT_GPU[:5], GEMM_HOLDOUT_GPU[:3]) if quick else (GEMM_FIT_GPU, GEMM_HOLDOUT_GPU)
    for dtype in dtypes:
        for split, shapes in (("fit", fit), ("holdout", hold)):
            cases += [_gemm_case(dtype, split, m, n, k, device) for m, n, k in shapes]
    for b, h, s, d in SDPA_SHAPES[: 2 if quick else 3]:
        # causal attention: half of the 4*b*h*s*s*d FLOPs of QK^T and PV
        cases.append(KernelCase("sdpa", "bf16", (("batch", b), ("heads", h), ("seq", s), ("head_dim", d)),
                                "holdout", backend="torch", device=device,
                                flops=2.0 * b * h * s * s * d, bytes_moved=4.0 * b * h * s * d * 2))
    for nbytes in COPY_BYTES[: 2 if quick else 3]:
        for kernel in ("copy_h2d", "copy_d2h"):
            cases.append(KernelCase(kernel, "int8", (("bytes", nbytes),), "fit", backend="torch",
                                    device=device, bytes_moved=float(nbytes)))
    return cases


def build_torch(case: KernelCase, seed: int = 0) -> tuple[Callable[[], object], Timer]:
    """The callable that runs ``case`` once, and the timer to measure it with."""
    import torch

    kind, index = parse_device(case.device)
    dev = torch.device("cpu") if kind == "host" else torch.device("cuda", index)
    gen = torch.Generator(device=dev).manual_seed(seed)
    timer: Timer = Timer() if kind == "host" else CudaEventTimer(index)
    s = case.shape

    if case.kernel == "gemm":
        m, n, k = s["m"], s["n"], s["k"]
        if case.dtype == "fp8":
            a = torch.randn(m, k, device=dev, generator=gen).to(torch.float8_e4m3fn)
            b = torch.randn(n, k, device=dev, generator=gen).to(torch.float8_e4m3fn).t()  # column-major
            one = torch.ones((), device=dev)
            return (lambda: torch._scaled_mm(a, b, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)), timer
        dt = getattr(torch, TORCH_DTYPE_NAMES[case.dtype])
        a = torch.randn(m, k, device=dev, generator=gen, dtype=dt)
        b = torch.randn(k, n, device=dev, generator=gen, dtype=dt)
        c = torch.empty(m, n, device=dev, dtype=dt)
        return (lambda: torch.matmul(a, b, out=c)), timer
    if case.kernel == "sdpa":
        shape = (s["batch"], s["heads"], s["seq"], s["head_dim"])
        q, k_, v = (torch.randn(shape, device=dev, generator=gen, dtype=torch.bfloat16) for _ in range(3))
        f = torch.nn.functional.scaled_dot_product_attention
        return (lambda: f(q, k_, v, is_causal=True)), timer
    if case.kernel in ("copy_h2d", "copy_d2h"):
        host = torch.empty(s["bytes"], dtype=torch.uint8, pin_memory=True)
        gpu = torch.empty(s["bytes"], dtype=torch.uint8, device=dev)
        if case.kernel == "copy_h2d":
            return (lambda: gpu.copy_(host, non_blocking=True)), timer
        return (lambda: host.copy_(gpu, non_blocking=True)), timer
    raise ValueError(f"no torch kernel '{case.kernel}'")
