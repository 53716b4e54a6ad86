"""A serving engine's profile is the runtime profile (:mod:`hwmodels.runtime`): one object.

What a runtime adds around the GPU work of a step (scheduling, sampling, detokenizing, launching,
CUDA graphs, the memory it keeps) is a property of the engine, written once as data in
``hwmodels/runtimes/<name>.yaml`` (or a user's file) and used both by ``ridgeline simulate
--runtime`` (as operators the cost model prices) and here, by the serving simulator, which asks
it :meth:`~hwmodels.runtime.RuntimeProfile.gpu_time` (CUDA-graph launches saved, then
``gpu_time_scale``), :meth:`~hwmodels.runtime.RuntimeProfile.step_time` (CPU work overlapped with
the GPU or added to it) and ``runtime_reserve_bytes`` (to derive the KV blocks).
"""

from __future__ import annotations

from pathlib import Path

from hwmodels.runtime import RUNTIMES, RuntimeProfile, load_runtime

EngineProfile = RuntimeProfile   # the name the serving code and its users know
PROFILES = RUNTIMES
DEFAULT = "vllm-v1"


def load_profile(ref: str | Path | RuntimeProfile = DEFAULT) -> RuntimeProfile:
    """A bundled profile by name, a YAML file, or a profile (returned as it is)."""
    return load_runtime(ref)
