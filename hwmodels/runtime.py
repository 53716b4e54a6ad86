"""What a runtime (an inference engine around the kernels) adds to every step, as data.

The cost model prices kernels; a real engine also spends time around them, and that time is a
property of the engine, not of the hardware or the model. A runtime profile
(``hwmodels/runtimes/<name>.yaml``, or a user's file) says, per engine:

* ``step_cpu`` / ``per_sequence_cpu``: the CPU work of a scheduling pass (scheduling, preparing
  inputs, and what the engine does once per pass for each request, such as building and
  streaming its outputs), fixed and per scheduled sequence; ``async_scheduling``: all of a
  step's CPU work overlaps the GPU work of the step (the step takes the longer of the two)
  instead of preceding it; ``scheduler_steps``: multi-step scheduling (vLLM 0.6's
  ``--num-scheduler-steps``): the engine schedules and prepares inputs once for that many
  consecutive decode steps, so each carries ``1 / scheduler_steps`` of the pass (and the serving
  simulator's ``orca`` scheduler admits waiting prompts only between such runs); a step that
  prefills is a run of its own (vLLM 0.6 starts every prompt with a one-step run) and carries
  the whole pass;
* ``output_cpu_per_sequence``: CPU work per sampled sequence that the engine pays every step,
  however many steps a pass schedules: taking the sampled token to the host, appending it to the
  request, incremental detokenization and the stop checks (vLLM 0.6's output processor runs
  once per step and sequence, inside a multi-step run too); ``async_output``: that work for
  step i runs while the GPU runs step i+1 (vLLM 0.6's asynchronous output processor), so a
  step takes the longer of the GPU work and it, else it follows the GPU work;
* ``sync``: the host-device synchronisation at the end of a step (sampled tokens copied back);
* ``launch`` / ``graph_launch``: the GPU-side cost of launching one kernel eagerly and inside a
  CUDA graph (replacing the device's ``launch_overhead``; ``graph_launch`` is the gap between two
  kernels of a replayed graph, to which every kernel there adds its own minimum time on the
  device, :data:`hwmodels.defaults.GRAPH_KERNEL_FIXED_S`: :attr:`RuntimeProfile.graph_kernel_s`), and ``cuda_graph_max_tokens``: the
  largest step the engine replays as a CUDA graph (vLLM's largest capture size; a decode step of
  up to that many sequences is padded to a captured size and replayed; 0: no graphs);
  ``dispatch_cpu``: the host's time to issue one kernel eagerly (a Python framework's operator
  dispatch), which runs ahead of the GPU and bounds the step only when the kernels are shorter;
* ``unfused``: kernels the engine runs separately that the model graph would otherwise not
  have (:data:`UNFUSED_KINDS`; :mod:`workloads.runtime` says what each adds): ``fp8_quantize``
  (a quantize kernel in front of every fp8 GEMM's activation input); ggml's (llama.cpp's)
  ``f16_convert`` (activations kept in fp32: cuBLAS GEMMs of more than one row convert their
  input to fp16 and their fp16 output back), ``attention_scores`` (no flash attention: the score
  matrix goes through device memory, with the conversions around the batched cuBLAS GEMMs),
  ``norm_weight`` (the norm's weight multiply as its own kernel), ``kv_store`` (new K and V
  copied into the cache by their own kernels), ``swiglu_split`` (SiLU and the multiply as two
  kernels) and ``all_logits`` (the LM head over every prompt token, logits copied to the host);
* ``gemm_accumulate``: ``fp32`` (what the catalog's peaks mean) or ``fp16``: the engine's cuBLAS
  GEMMs accumulate in fp16 (ggml's CUBLAS_COMPUTE_16F), and run at a device's
  ``fp16_accumulate_peak`` where it states one (a GeForce card: twice its fp32-accumulate rate);
* ``activation_dtype``: the dtype the engine keeps activations in between kernels when it is not
  the model's (ggml: ``fp32``): norms and elementwise kernels read and write it;
* ``matvec_memory_fraction``: per main-memory kind (``hbm``, ``gddr``, ...), the fraction of
  the memory rate the cost model gives a GEMM that the engine's one-row kernel (batch-1 decode)
  reaches: a mat-vec kernel with too few bytes in flight falls short on HBM, whose bandwidth x
  latency product is larger, and not on GDDR (kinds not named: 1);
* ``kernel_memory_fraction``: the same, for the engine's own streaming kernels (norms,
  elementwise, conversions, copies, the unfused softmax): the fraction of the memory rate they
  reach on a device whose main memory is of that kind (kinds not named: 1);
* ``attention_kernel``: the fused-attention kernel family the engine runs (a name of
  :data:`roofline.efficiency.ATTENTION_KERNELS`; vLLM 0.5/0.6 ran FlashAttention-2 on every GPU,
  Hopper included); empty: each device's own (``attention_kernel`` in its YAML);
* ``sampling_kernels``: the kernels the engine's decoder runs on the GPU after the model's last
  kernel of every step to turn the logits into tokens (penalties, sampling, stop criteria,
  copying the new tokens into place), eagerly (outside any CUDA graph) at ``launch``;
  ``sampling_logit_passes`` of them read and rewrite the whole logits, the others one value a
  sequence;
* ``ubatch_tokens``: the most tokens of a prompt one forward pass takes (llama.cpp's n_ubatch):
  a longer prefill runs as passes of that many tokens: its attention as passes of that many
  queries, each attending to the keys so far, its GEMMs as passes of that many rows, each reading
  the weights again (0: the whole prompt in one pass);
* ``all_reduce_kernel``: the engine's own tensor-parallel all-reduce kernel (vLLM's
  ``custom_all_reduce``, TensorRT-LLM's custom all-reduce plugin; SGLang runs vLLM's): an all-reduce
  of fewer bytes per rank than ``one_shot_below[N]`` over N ranks on NVLink runs one-shot (every
  rank reads all peers' buffers and reduces, 1 step), else below ``two_shot_below[N]`` two-shot
  (reduce-scatter and all-gather by peer reads, 2 steps), else (or for a group size neither
  lists, or ranks without NVLink) NCCL as without a runtime; ``latency``: the kernel's own time per
  call apart from its launch and the link's hop latency (its barriers: flags written to and
  polled on every peer); ``link_efficiency``: the fraction of the link's line rate its peer reads
  reach (default: NCCL's); ``dtypes``: the element types the kernel takes (default: any; an
  all-reduce of another type goes to NCCL). :class:`AllReduceKernel`;
  :func:`roofline.collectives.plan_collective` prices it;
* for the serving simulator (:mod:`simulator.serving`, which takes the same profile as its
  engine profile): ``runtime_reserve`` (device memory kept beyond weights, activations and KV
  cache) and ``gpu_time_scale`` (measured / predicted GPU time of a run it was fitted on);
  :meth:`RuntimeProfile.gpu_time` and :meth:`RuntimeProfile.step_time` are its questions.

Every figure carries its source or says it is an estimate, and ``fitted`` says what was fitted on
which rows. :data:`RUNTIMES` is the registry of bundled profiles; ``none`` adds nothing (the bare
kernels, the simulator's behaviour without a runtime). The profile is applied to a step graph
by :func:`workloads.runtime.with_runtime` as operators the cost model prices.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

from . import defaults, yamlio
from .dtypes import DTYPES
from .errors import InputError, did_you_mean
from .kinds import MEMORY_KINDS
from .registry import Registry
from .units import parse_quantity

RUNTIMES: Registry[str] = Registry("runtime profile")
for _name, _help in (("none", "no runtime: the kernels alone at the device's launch overhead (simulate's default)"),
                     ("vllm-v0.6", "vLLM 0.5/0.6 (V0 engine): Python scheduler, CUDA graphs for decode <= 256"),
                     ("vllm-v1", "vLLM V1 engine (0.8+; serve's default): async scheduling, CUDA graphs up to 512 "
                                 "tokens; serving figures fitted on the bundled vLLM 0.19 RTX 4090 run"),
                     ("trtllm", "TensorRT-LLM C++ runtime (gptSessionBenchmark / trtllm-bench)"),
                     ("sglang", "SGLang 0.3/0.4: CUDA graphs for decode <= 160"),
                     ("gpt-fast", "gpt-fast generate.py --compile: each decode step one CUDA graph, eager prefill, "
                                  "no engine around the model, NCCL all-reduce"),
                     ("llama.cpp", "llama.cpp (ggml CUDA, May 2024 on): CUDA graphs for one-token decode only, "
                                   "512-token passes, no flash attention, unfused fp32/fp16 conversions"),
                     ("llama.cpp-b1680", "llama.cpp of December 2023 (ggml CUDA b1680): every kernel eager, "
                                         "logits of every prompt token copied to the host")):
    RUNTIMES.register(_name, f"{_name}.yaml", help=_help)

UNFUSED_KINDS = ("fp8_quantize", "f16_convert", "attention_scores", "norm_weight", "kv_store", "swiglu_split",
                 "all_logits")
TIME_FIELDS = ("step_cpu", "per_sequence_cpu", "output_cpu_per_sequence", "sync", "launch", "graph_launch",
               "dispatch_cpu")
FLAG_FIELDS = ("async_scheduling", "async_output")
# whole-number fields: what they count and their least value
WHOLE_FIELDS = {"cuda_graph_max_tokens": ("tokens", 0), "ubatch_tokens": ("tokens", 0), "scheduler_steps": ("steps", 1),
                "sampling_kernels": ("kernels", 0), "sampling_logit_passes": ("kernels", 0)}
ACCUMULATORS = ("fp32", "fp16")
FIELDS = (*TIME_FIELDS, *FLAG_FIELDS, "all_reduce_kernel", "attention_kernel", "scheduler_steps", "cuda_graph_max_tokens", "ubatch_tokens",
          "sampling_kernels", "sampling_logit_passes",
          "gemm_accumulate", "activation_dtype", "matvec_memory_fraction", "kernel_memory_fraction", "unfused",
          "runtime_reserve", "gpu_time_scale")
TEXT_FIELDS = ("name", "source", "fitted", "notes")
KERNEL_FIELDS = ("name", "latency", "link_efficiency", "one_shot_below", "two_shot_below", "dtypes")


@dataclass(frozen=True)
class AllReduceKernel:
    """A runtime's own all-reduce kernel (see the module docstring): per group size, the message
    sizes (bytes per rank, exclusive) below which it runs one-shot and two-shot, as sorted
    (group size, bytes) pairs, its own latency per call and the fraction of the link's line rate
    its peer reads reach (None: a library's, :func:`roofline.efficiency.collective_link_efficiency`)
    and the element types it takes (empty: any; another type goes to NCCL)."""

    name: str
    latency_s: float
    link_efficiency: float | None = None
    one_shot_below: tuple[tuple[int, float], ...] = ()
    two_shot_below: tuple[tuple[int, float], ...] = ()
    dtypes: tuple[str, ...] = ()

    def algorithm(self, payload_bytes: float, group_size: int, dtype: str | None = None) -> str | None:
        """``one_shot`` or ``two_shot`` for an all-reduce of ``payload_bytes`` per rank over
        ``group_size`` ranks in ``dtype``, or None where the engine leaves it to NCCL."""
        if self.dtypes and dtype not in self.dtypes:
            return None
        for algorithm, limits in (("one_shot", self.one_shot_below), ("two_shot", self.two_shot_below)):
            if payload_bytes < dict(limits).get(group_size, 0.0):
                return algorithm
        return None

    def to_dict(self) -> dict:
        return {"name": self.name, "latency_s": self.latency_s, "link_efficiency": self.link_efficiency,
                "one_shot_below_bytes": {str(n): b for n, b in self.one_shot_below},
                "two_shot_below_bytes": {str(n): b for n, b in self.two_shot_below},
                "dtypes": list(self.dtypes)}


@dataclass(frozen=True)
class RuntimeProfile:
    """A runtime profile (see the module docstring); times in seconds, ``None`` launch costs
    leave the device's ``launch_overhead`` in place."""

    name: str
    step_cpu_s: float = 0.0
    per_sequence_cpu_s: float = 0.0
    output_cpu_per_sequence_s: float = 0.0
    async_scheduling: bool = False
    async_output: bool = False
    scheduler_steps: int = 1
    sync_s: float = 0.0
    launch_s: float | None = None
    graph_launch_s: float | None = None
    cuda_graph_max_tokens: int = 0
    dispatch_cpu_s: float = 0.0
    unfused: tuple[str, ...] = ()
    ubatch_tokens: int = 0
    sampling_kernels: int = 0
    sampling_logit_passes: int = 0
    gemm_accumulate: str = "fp32"
    activation_dtype: str = ""
    matvec_memory_fraction: tuple[tuple[str, float], ...] = ()
    kernel_memory_fraction: tuple[tuple[str, float], ...] = ()
    runtime_reserve_bytes: float = 0.0
    gpu_time_scale: float = 1.0
    all_reduce_kernel: AllReduceKernel | None = None
    attention_kernel: str = ""
    source: str = ""
    fitted: str = ""
    notes: str = field(default="", compare=False)

    @property
    def is_none(self) -> bool:
        """True when the profile adds nothing to a step."""
        return self == RuntimeProfile(self.name, source=self.source, fitted=self.fitted, notes=self.notes)

    @property
    def graph_kernel_s(self) -> float | None:
        """What one kernel pays inside a replayed CUDA graph besides the cost model's price of
        its work: the gap before it (``graph_launch``) and its own minimum time on the device
        (:data:`hwmodels.defaults.GRAPH_KERNEL_FIXED_S`); None where the profile states no
        ``graph_launch`` (the device's ``launch_overhead`` stays)."""
        if self.graph_launch_s is None:
            return None
        return self.graph_launch_s + defaults.GRAPH_KERNEL_FIXED_S

    def graphed(self, phase: str, batch: int) -> bool:
        """Whether a step of ``phase`` with ``batch`` sequences replays a captured CUDA graph
        (the engine pads the batch to the next captured size, so any batch up to the largest)."""
        return phase == "decode" and batch <= self.cuda_graph_max_tokens

    def step_cpu_total_s(self, sequences: int, prefill: bool = False) -> float:
        """CPU time of the scheduling pass one step carries, for ``sequences`` sequences: the pass
        (fixed and per sequence) shared by the ``scheduler_steps`` decode steps it schedules at
        once, or whole for a step that ``prefill``s (a run of its own)."""
        steps = 1 if prefill else self.scheduler_steps
        return (self.step_cpu_s + self.per_sequence_cpu_s * sequences) / steps

    def with_scheduler_steps(self, steps: int, path: str = "scheduler_steps") -> RuntimeProfile:
        """This profile scheduling ``steps`` decode steps a pass (vLLM's --num-scheduler-steps);
        InputError (at ``path``) unless ``steps`` is a whole number >= 1."""
        what, least = WHOLE_FIELDS["scheduler_steps"]
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < least:
            raise InputError(f"expected a whole number of {what} >= {least}, got {steps!r}", path=path)
        return replace(self, scheduler_steps=steps)

    def output_cpu_s(self, sequences: int) -> float:
        """CPU time of one step's output processing for ``sequences`` sampled sequences (paid
        every step, multi-step or not)."""
        return self.output_cpu_per_sequence_s * sequences

    # -- what the serving simulator asks of its engine profile (this same object) -------------
    def gpu_time(self, cost) -> float:
        """The GPU time of a serving step (a :class:`~simulator.serving.steptime.StepCost`: its
        ``time_s``, ``kernels``, ``tokens``, ``decode_only``, ``attention_kernels``, ``pieces``,
        ``launch_s``) under this engine: a step of at most ``cuda_graph_max_tokens`` tokens replays
        CUDA graphs (a decode-only step one graph, a mixed step one per piece between attention
        kernels, vLLM v1's piecewise graphs), each saved launch costing :attr:`graph_kernel_s`
        instead of the device's; then ``gpu_time_scale``."""
        t = cost.time_s
        if cost.kernels and cost.tokens <= self.cuda_graph_max_tokens:
            launches = 1 if cost.decode_only else cost.attention_kernels + cost.pieces
            t -= max(0, cost.kernels - launches) * max(cost.launch_s - (self.graph_kernel_s or 0.0), 0.0)
        return t * self.gpu_time_scale

    def step_time(self, gpu_s: float, seqs: int, prefill: bool = False) -> float:
        """Wall time of a step whose GPU work takes ``gpu_s`` (from :meth:`gpu_time`) with ``seqs``
        scheduled requests (``prefill``: the step prefills, a run of its own): with
        ``async_scheduling`` all CPU work overlaps the GPU's; else the scheduling pass's share
        (:meth:`step_cpu_total_s`) precedes it, and the output processing (:meth:`output_cpu_s`)
        overlaps it with ``async_output`` or follows it."""
        sched, out = self.step_cpu_total_s(seqs, prefill), self.output_cpu_s(seqs)
        if self.async_scheduling:
            return max(gpu_s, sched + out)
        if self.async_output:
            return sched + max(gpu_s, out)
        return sched + gpu_s + out

    def to_dict(self) -> dict:
        return {"name": self.name, "step_cpu_s": self.step_cpu_s, "per_sequence_cpu_s": self.per_sequence_cpu_s,
                "output_cpu_per_sequence_s": self.output_cpu_per_sequence_s,
                "async_scheduling": self.async_scheduling, "async_output": self.async_output,
                "scheduler_steps": self.scheduler_steps,
                "sync_s": self.sync_s, "launch_s": self.launch_s,
                "graph_launch_s": self.graph_launch_s, "cuda_graph_max_tokens": self.cuda_graph_max_tokens,
                "dispatch_cpu_s": self.dispatch_cpu_s, "unfused": list(self.unfused),
                "ubatch_tokens": self.ubatch_tokens, "sampling_kernels": self.sampling_kernels,
                "sampling_logit_passes": self.sampling_logit_passes,
                "gemm_accumulate": self.gemm_accumulate,
                "activation_dtype": self.activation_dtype,
                "matvec_memory_fraction": dict(self.matvec_memory_fraction),
                "kernel_memory_fraction": dict(self.kernel_memory_fraction),
                "runtime_reserve_bytes": self.runtime_reserve_bytes, "gpu_time_scale": self.gpu_time_scale,
                "all_reduce_kernel": self.all_reduce_kernel.to_dict() if self.all_reduce_kernel else None,
                "attention_kernel": self.attention_kernel, "source": self.source, "fitted": self.fitted}


def _document(ref: str):
    path = Path(ref)
    # a bundled name wins over a file of that name ("llama.cpp" is also the usual checkout folder)
    if path.suffix in (".yaml", ".yml") or (ref not in RUNTIMES.names() and path.exists()):
        return yamlio.load(path)
    file = RUNTIMES.get(ref, path="runtime")
    text = resources.files("hwmodels.runtimes").joinpath(file).read_text(encoding="utf-8")
    return yamlio.loads(text, file)


def _parse(doc, key: str, value):
    """One field of a profile document in SI units, or an InputError at its line."""
    if key in TIME_FIELDS:
        if not isinstance(value, str):
            raise doc.error(f"expected a time with its unit (e.g. '20 us'), got {value!r}", (key,))
        try:
            return parse_quantity(value, "time", path=key, allow_zero=True)
        except InputError as err:   # the units parser knows no file: say where
            raise doc.error(err.problems[0].message, (key,)) from None
    if key in FLAG_FIELDS:
        if not isinstance(value, bool):
            raise doc.error("expected true or false", (key,))
        return value
    if key in WHOLE_FIELDS:
        what, least = WHOLE_FIELDS[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise doc.error(f"expected a whole number of {what} >= {least}, got {value!r}", (key,))
        return value
    if key == "gemm_accumulate":
        if value not in ACCUMULATORS:
            raise doc.error(f"expected one of: {', '.join(ACCUMULATORS)}, got {value!r}", (key,))
        return value
    if key == "activation_dtype":
        if value not in DTYPES:
            raise doc.error(f"unknown dtype {value!r}", (key,), suggestion=did_you_mean(str(value), DTYPES))
        return value
    if key in ("matvec_memory_fraction", "kernel_memory_fraction"):
        return _fractions(doc, key, value)
    if key == "all_reduce_kernel":
        return _all_reduce_kernel(doc, key, value)
    if key == "attention_kernel":
        # the name is checked against the kernel families where they live (roofline.efficiency)
        if not isinstance(value, str) or not value:
            raise doc.error(f"expected the name of an attention kernel family (e.g. fa2), got {value!r}", (key,))
        return value
    if key == "unfused":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise doc.error(f"expected a list of: {', '.join(UNFUSED_KINDS)}", (key,))
        for i, v in enumerate(value):
            if v not in UNFUSED_KINDS:
                raise doc.error(f"unknown unfused kernel '{v}'; expected one of: {', '.join(UNFUSED_KINDS)}",
                                (key, i))
        return tuple(value)
    if key == "runtime_reserve":
        if not isinstance(value, str):
            raise doc.error(f"expected a capacity with its unit (e.g. '1 GB'), got {value!r}", (key,))
        try:
            return parse_quantity(value, "capacity", path=key, allow_zero=True)
        except InputError as err:
            raise doc.error(err.problems[0].message, (key,)) from None
    # gpu_time_scale: a plain ratio
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise doc.error(f"expected a number > 0, got {value!r}", (key,))
    return float(value)


def _quantity(doc, value, kind: str, example: str, path: tuple) -> float:
    """A quantity with its unit at ``path`` of the document, or an InputError there."""
    if not isinstance(value, str):
        raise doc.error(f"expected a {kind} with its unit (e.g. '{example}'), got {value!r}", path)
    try:
        return parse_quantity(value, kind, path=".".join(map(str, path)), allow_zero=True)
    except InputError as err:
        raise doc.error(err.problems[0].message, path) from None


def _all_reduce_kernel(doc, key: str, value) -> AllReduceKernel:
    """The ``all_reduce_kernel`` mapping: name, latency, and per group size its size limits."""
    if not isinstance(value, dict):
        raise doc.error("expected a mapping with name, latency, one_shot_below and two_shot_below", (key,))
    for sub in value:
        if sub not in KERNEL_FIELDS:
            raise doc.error(f"unknown field '{sub}'", (key, sub), suggestion=did_you_mean(str(sub), KERNEL_FIELDS))
    for sub in ("name", "latency"):
        if sub not in value:
            raise doc.error(f"missing field '{sub}'", (key,))
    limits = {}
    for sub in ("one_shot_below", "two_shot_below"):
        table = value.get(sub, {})
        if not isinstance(table, dict):
            raise doc.error(f"expected a mapping of group size to a message size, e.g. {{8: '256 KiB'}}, "
                            f"got {table!r}", (key, sub))
        pairs = []
        for n, size in table.items():
            if isinstance(n, bool) or not isinstance(n, int) or n < 2:
                raise doc.error(f"expected a group size (a whole number >= 2), got {n!r}", (key, sub, n))
            pairs.append((n, _quantity(doc, size, "capacity", "8 MiB", (key, sub, n))))
        limits[sub] = tuple(sorted(pairs))
    efficiency = value.get("link_efficiency")
    if efficiency is not None and (isinstance(efficiency, bool) or not isinstance(efficiency, (int, float))
                                   or not 0 < efficiency <= 1):
        raise doc.error(f"expected a fraction in (0, 1], got {efficiency!r}", (key, "link_efficiency"))
    dtypes = value.get("dtypes", [])
    if not isinstance(dtypes, list) or not all(isinstance(d, str) for d in dtypes):
        raise doc.error(f"expected a list of dtypes, e.g. [bf16], got {dtypes!r}", (key, "dtypes"))
    for i, d in enumerate(dtypes):
        if d not in DTYPES:
            raise doc.error(f"unknown dtype {d!r}", (key, "dtypes", i), suggestion=did_you_mean(d, DTYPES))
    return AllReduceKernel(str(value["name"]), _quantity(doc, value["latency"], "time", "1 us", (key, "latency")),
                           None if efficiency is None else float(efficiency), **limits, dtypes=tuple(dtypes))


def _fractions(doc, key: str, value) -> tuple[tuple[str, float], ...]:
    """A mapping of memory kind -> fraction in (0, 1], as sorted pairs (hashable)."""
    if not isinstance(value, dict):
        raise doc.error(f"expected a mapping of memory kind to a fraction, e.g. {{hbm: 0.75}}, got {value!r}",
                        (key,))
    out = []
    for kind, frac in value.items():
        if kind not in MEMORY_KINDS:
            raise doc.error(f"unknown memory kind '{kind}'", (key, kind), suggestion=did_you_mean(str(kind),
                                                                                                  MEMORY_KINDS))
        if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 < frac <= 1:
            raise doc.error(f"expected a fraction in (0, 1], got {frac!r}", (key, kind))
        out.append((str(kind), float(frac)))
    return tuple(sorted(out))


SI_NAMES = {**{k: f"{k}_s" for k in TIME_FIELDS}, "runtime_reserve": "runtime_reserve_bytes"}


def load_runtime(ref: str | Path | RuntimeProfile | None = "none") -> RuntimeProfile:
    """A bundled profile by name (:data:`RUNTIMES`), a YAML file, or a profile (returned as it is).
    Unknown names and fields, values without units and wrong types are InputErrors with the
    file, line and field."""
    if isinstance(ref, RuntimeProfile):
        return ref
    ref = "none" if ref is None else str(ref)
    doc = _document(ref)
    data = yamlio.require_mapping(doc)
    out: dict = {"name": str(data.get("name", Path(ref).stem))}
    for key, value in data.items():
        if key in TEXT_FIELDS:
            out[key] = str(value)
            continue
        if key not in FIELDS:
            raise doc.error(f"unknown field '{key}'", (key,), suggestion=did_you_mean(key, [*FIELDS, *TEXT_FIELDS]))
        out[SI_NAMES.get(key, key)] = _parse(doc, key, value)
    if out.get("sampling_logit_passes", 0) > out.get("sampling_kernels", 0):
        raise doc.error(f"{out['sampling_logit_passes']} passes over the logits but only "
                        f"{out.get('sampling_kernels', 0)} sampling_kernels", ("sampling_logit_passes",))
    return RuntimeProfile(**out)
