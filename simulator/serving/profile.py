"""A serving engine's runtime overhead per step, as data (``profiles/<name>.yaml``).

The GPU time of a step is the cost model's; what a runtime adds around it (building the batch's
inputs, the scheduler, sampling, detokenizing, launching) is a property of the engine, measured
on a real run, not a constant in code. A profile says:

* ``step_cpu_s``: fixed CPU time per step; ``per_seq_cpu_s``: CPU time per scheduled request;
* ``async_scheduling``: the CPU work of the next step overlaps this step's GPU work (vLLM v1's
  async scheduling), so a step takes the larger of the two; otherwise their sum;
* ``runtime_reserve_bytes``: device memory the runtime keeps beyond weights, activations and the
  KV cache (CUDA context, allocator slack, CUDA-graph pools), used to derive the KV blocks;
* ``cuda_graph_max_tokens``: steps of at most this many tokens replay CUDA graphs (vLLM's
  ``max_cudagraph_capture_size``): a decode-only step is one graph (one launch instead of one per
  kernel), a mixed step a graph per piece between attention kernels (vLLM v1's piecewise graphs);
  the launches saved are the device's ``launch_overhead`` per kernel that the cost model charges;
* ``gpu_time_scale``: the ratio of the engine's GPU time to the cost model's for the same step
  (fused kernels, clocks), fitted on a real run (1 = none).
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
PROFILES.register("vllm-v1", "vllm-v1.yaml", help="vLLM v1 (0.19): async scheduling, CUDA graphs up to 512 "
                                                   "tokens; fitted on the bundled RTX 4090 run")
PROFILES.register("ideal", "ideal.yaml", help="no runtime overhead: a step takes the cost model's time")
FIELDS = ("step_cpu_s", "per_seq_cpu_s", "async_scheduling", "runtime_reserve_bytes", "cuda_graph_max_tokens",
          "gpu_time_scale")


@dataclass(frozen=True)
class EngineProfile:
    name: str
    step_cpu_s: float = 0.0
    per_seq_cpu_s: float = 0.0
    async_scheduling: bool = True
    runtime_reserve_bytes: float = 0.0
    cuda_graph_max_tokens: int = 0
    gpu_time_scale: float = 1.0
    fitted: str = ""
    source: dict = field(default_factory=dict, compare=False)

    def gpu_time(self, cost) -> float:
        """The GPU time of a step (a :class:`~simulator.serving.steptime.StepCost`) under this engine:
        launches saved by CUDA graphs, then ``gpu_time_scale``."""
        t = cost.time_s
        if cost.kernels and cost.tokens <= self.cuda_graph_max_tokens:
            launches = 1 if cost.decode_only else cost.attention_kernels + cost.pieces
            t -= max(0, cost.kernels - launches) * cost.launch_s
        return t * self.gpu_time_scale

    def step_time(self, gpu_s: float, seqs: int) -> float:
        """Wall time of a step whose GPU work takes ``gpu_s`` (from :meth:`gpu_time`) with ``seqs``
        scheduled requests."""
        cpu = self.step_cpu_s + self.per_seq_cpu_s * seqs
        return max(gpu_s, cpu) if self.async_scheduling else gpu_s + cpu


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
