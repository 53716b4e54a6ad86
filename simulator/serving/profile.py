"""A serving engine's runtime overhead per step, as data (``profiles/<name>.yaml``).

The GPU time of a step is the cost model's; what a runtime adds around it (building the batch's
inputs, the scheduler, sampling, detokenizing, launching) is a property of the engine, measured
on a real run, not a constant in code. A profile says:

* ``step_cpu_s``: fixed CPU time per step; ``per_seq_cpu_s``: CPU time per scheduled request;
* ``async_scheduling``: the CPU work of the next step overlaps this step's GPU work (vLLM v1's
  async scheduling), so a step takes the larger of the two; otherwise their sum;
* ``runtime_reserve_bytes``: device memory the runtime keeps beyond weights, activations and the
  KV cache (CUDA context, allocator slack, CUDA-graph pools), used to derive the KV blocks;
* ``gpu_time_scale``: the ratio measured/predicted of the GPU time of steps, a calibration of
  the device model against the run (1 = none).
* ``fitted``: which of these numbers were fitted, on what.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from hwmodels import yamlio
from hwmodels.errors import InputError
from hwmodels.registry import Registry

PROFILES: Registry[str] = Registry("serving-engine profile")
for _name in ("vllm-v1", "ideal"):
    PROFILES.register(_name, f"{_name}.yaml")
FIELDS = ("step_cpu_s", "per_seq_cpu_s", "async_scheduling", "runtime_reserve_bytes", "gpu_time_scale")


@dataclass(frozen=True)
class EngineProfile:
    name: str
    step_cpu_s: float = 0.0
    per_seq_cpu_s: float = 0.0
    async_scheduling: bool = True
    runtime_reserve_bytes: float = 0.0
    gpu_time_scale: float = 1.0
    fitted: str = ""
    source: dict = field(default_factory=dict, compare=False)

    def gpu_time(self, gpu_s: float) -> float:
        return gpu_s * self.gpu_time_scale

    def step_time(self, gpu_s: float, seqs: int) -> float:
        """Wall time of a step whose GPU work takes ``gpu_s`` with ``seqs`` scheduled requests."""
        cpu = self.step_cpu_s + self.per_seq_cpu_s * seqs
        gpu = gpu_s * self.gpu_time_scale
        return max(gpu, cpu) if self.async_scheduling else gpu + cpu


def load_profile(ref: str | EngineProfile = "vllm-v1") -> EngineProfile:
    """A bundled profile by name, a YAML file, or an EngineProfile (returned as it is)."""
    if isinstance(ref, EngineProfile):
        return ref
    path = Path(ref)
    if path.suffix in (".yaml", ".yml") and path.exists():
        doc = yamlio.load(path)
    else:
        file = PROFILES.get(ref, path="profile")
        text = resources.files("simulator.serving.profiles").joinpath(file).read_text(encoding="utf-8")
        doc = yamlio.loads(text, file)
    data = yamlio.require_mapping(doc)
    out = {"name": str(data.get("name", ref)), "fitted": str(data.get("fitted", ""))}
    for key, value in data.items():
        if key in ("name", "fitted", "source", "notes"):
            continue
        if key not in FIELDS:
            raise doc.error(f"unknown field '{key}'; expected one of: {', '.join(FIELDS)}", (key,))
        if key == "async_scheduling":
            if not isinstance(value, bool):
                raise doc.error("expected true or false", (key,))
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise doc.error(f"expected a number >= 0, got {value!r}", (key,))
        out[key] = value
    if out.get("gpu_time_scale", 1.0) <= 0:
        raise InputError("gpu_time_scale must be > 0", path="gpu_time_scale")
    return EngineProfile(**out)
