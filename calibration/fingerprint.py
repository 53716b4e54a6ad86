"""The fingerprint stored with every measurement set: what machine and software produced it.

Measurements are only comparable on the same CPU, BLAS library, thread count and library
versions; the fingerprint records them so a reader (or ``ridgeline validate``) can tell when
an overlay was measured elsewhere. torch is imported only if it is installed.
"""

from __future__ import annotations

import datetime as _dt
import importlib.util
import os
import platform
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np


def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo`` on Linux, ``platform.processor()`` otherwise)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def cpu_caches() -> dict[str, int]:
    """Data/unified cache sizes in bytes per level (L1d, L2, L3) as Linux reports them for CPU 0.

    Values are per instance (one core's L1/L2, the shared L3); empty when not on Linux.
    """
    out: dict[str, int] = {}
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    if not base.is_dir():
        return out
    for index in sorted(base.glob("index*")):
        try:
            kind = (index / "type").read_text().strip()
            level = (index / "level").read_text().strip()
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        if kind == "Instruction":
            continue
        mult = {"K": 2**10, "M": 2**20, "G": 2**30}.get(size[-1:], 1)
        digits = size.rstrip("KMG")
        if digits.isdigit():
            out[f"l{level}"] = int(digits) * mult
    return out


def physical_cores() -> int:
    """Physical cores usable by this process (affinity-aware where the OS tells)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def blas_info() -> list[dict[str, Any]]:
    """BLAS/OpenMP thread pools as threadpoolctl sees them: library, version, threads."""
    from threadpoolctl import threadpool_info

    keep = ("user_api", "internal_api", "version", "num_threads", "threading_layer", "architecture")
    return [{k: pool.get(k) for k in keep if k in pool} for pool in threadpool_info()]


def torch_info() -> dict[str, Any] | None:
    """torch version and the GPUs it sees, or None when torch is not installed."""
    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    info: dict[str, Any] = {"version": torch.__version__, "cuda": torch.version.cuda,
                            "cuda_available": bool(torch.cuda.is_available()), "gpus": []}
    if info["cuda_available"]:
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            info["gpus"].append({"index": i, "name": props.name,
                                 "memory_bytes": int(props.total_memory),
                                 "sm_count": int(props.multi_processor_count),
                                 "capability": f"{props.major}.{props.minor}"})
    return info


def gpu_driver() -> str | None:
    """The NVIDIA driver version from ``nvidia-smi``, if there is one."""
    try:
        res = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = res.stdout.strip().splitlines()
    return lines[0].strip() if res.returncode == 0 and lines else None


def load_average() -> list[float] | None:
    """The 1/5/15-minute load averages (None where the OS does not report them)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def busy_warning(fp: dict[str, Any], again: str = "calibrate") -> str | None:
    """A warning when other programs kept the cores busy while measuring (load > half the cores);
    ``again``: the command to run again on a quiet machine."""
    cores = fp.get("cores_usable") or 1
    loads = [fp.get("load_before"), fp.get("load_after")]
    worst = max((lv[0] for lv in loads if lv), default=0.0)
    if worst > 0.5 * cores:
        return (f"the 1-minute load average reached {worst:g} on {cores} cores while measuring: other "
                f"programs competed for the CPU, so rates may be low; {again} again on a quiet machine")
    return None


def fingerprint(device: str = "host", threads: int | None = None) -> dict[str, Any]:
    """Everything that identifies the machine and software a measurement set came from.

    ``threads_pinned`` is the BLAS thread count the measurements ran with (all CPUs when not set);
    ``run_id`` names the run, and the other files of its output set repeat it.
    """
    tinfo = torch_info()
    gpus = (tinfo or {}).get("gpus", [])
    return {
        "device": device,
        "run_id": uuid.uuid4().hex[:12],
        "taken_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cores_usable": physical_cores(),
        "cpu_caches_bytes": cpu_caches(),
        "threads_pinned": int(threads or os.cpu_count() or 1),
        "load_before": load_average(),
        "blas": blas_info(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "torch": tinfo,
        "gpu_name": gpus[0]["name"] if gpus else None,
        "gpu_driver": gpu_driver() if gpus else None,
    }
