"""A step graph as an inference engine runs it: :func:`with_runtime` applies a runtime profile.

The profile (:class:`hwmodels.runtime.RuntimeProfile`) is data; this module turns it into graph
facts the cost model prices, never into times of its own:

* every kernel gets ``launch_s``: the profile's CUDA-graph launch cost when the step replays a
  captured graph (a decode step whose batch is at most the largest captured size), else its
  eager launch cost (when the profile gives one; otherwise the device's ``launch_overhead``
  stays);
* ``unfused``: kernels the engine runs that the model graph does not have, each an
  :class:`~workloads.operators.Elementwise` (or a copy) with the bytes it moves:

  - ``fp8_quantize``: a quantize kernel (reads the activation in 16 bits, writes it in fp8, 2
    vector FLOPs an element: scale and convert) in front of every fp8 GEMM whose activation
    input is fp8;
  - ``f16_convert`` (ggml keeps activations in fp32 and runs a GEMM of more than one row through
    cuBLAS in fp16): ``.to_f16`` before such a GEMM (reads its input as fp32, writes fp16) and
    ``.to_f32`` after it (reads the fp16 output, writes fp32); a one-row GEMM (batch-1 decode)
    is ggml's own mat-vec kernel on the fp32 input and gets neither;
  - ``attention_scores`` (no flash attention): the attention runs unfused (its
    ``fused=False``: the full query x key score matrix is written and read back as scores and
    as probabilities) as ggml's batched cuBLAS GEMMs do it, with their conversions:
    ``.q_to_f16`` before (the fp32 queries), ``.scores_to_f32`` (the fp16 scores the KQ GEMM
    wrote, for the fp32 softmax), ``.probs_to_f16`` (for the KQV GEMM), ``.out_to_f32`` after
    and ``.out_cont`` (ggml_cont_2d of the permuted fp32 output: a copy); under GQA each GEMM
    is a cublasGemmBatchedEx behind a kernel writing its pointer arrays (``.kq_pointers``,
    ``.kqv_pointers``); the softmax itself is
    priced inside the attention operator (its ``softmax_dtype`` fp32: ggml_soft_max_ext reads
    the fp32 scores and writes fp32 probabilities, reading the fp32 KQ mask, its ``mask_dtype``);
  - ``norm_weight``: ``.weight_mul`` after every RMSNorm (ggml_rms_norm, then ggml_mul by the
    weight: reads and writes the fp32 activation again);
  - ``kv_store``: ``.k_store`` and ``.v_store`` before every attention (ggml_cpy of the new
    fp32 K and V into the fp16 cache); the attention operator already counts the appended
    cache bytes, so their 2-byte write is counted twice (one token's K/V per layer: small);
  - ``swiglu_split``: ``.silu`` before the gated activation (ggml_silu, then ggml_mul: the
    SiLU output is written in fp32 and read back);
  - ``all_logits`` (prefill): the LM head runs over every prompt token, not only the last, and
    the fp32 logits are copied to the host (``.logits_to_host``, a
    :class:`~workloads.operators.MemCopy`), as llama.cpp did before it learned to skip unused
    outputs (March 2024);
* ``activation_dtype``: norms and elementwise kernels read and write their tensors in it (ggml
  keeps activations in fp32; the graph's GEMMs and attention keep their dtypes, the conversions
  of ``f16_convert`` and ``attention_scores`` sit between);
* ``matvec_memory_fraction``: a one-row GEMM (batch-1 decode, the engine's mat-vec kernel) gets
  the attribute ``memory_fraction`` (memory kind -> fraction), and the cost model gives it that
  fraction of its main-memory rate on a device whose main memory is of that kind;
* ``ubatch_tokens``: an attention whose queries exceed it runs as passes of at most that many
  queries (``.ub0``, ``.ub1``, ...), pass ``i`` attending to every key up to its last query,
  as llama.cpp splits a prompt into micro-batches; a prefill's GEMMs of more rows run as passes
  of at most that many rows too (``.ub0``, ...), each reading the weights again, with their
  f16 conversions (:func:`_gemm_passes`);
* ``all_reduce_kernel``: every all-reduce carries the engine's kernel as its attribute
  ``all_reduce_kernel`` (:func:`with_all_reduce_kernel`); the cost model runs it one-shot or
  two-shot below its size limits over NVLink, else NCCL;
* ``sampling_kernels``: after the step's last kernels (the LM head and its all-gather) the
  engine's decoder picks the next tokens in ``runtime.sample.0``, ``runtime.sample.1``, ...: the
  first ``sampling_logit_passes`` of them read and rewrite the logits (the LM head's rows x the
  whole vocabulary, in the LM head's output dtype: penalties, masks, a top-k pass), the others
  read and write one 4-byte value a sequence (stop criteria, lengths, the new tokens copied into
  place); they launch eagerly at the profile's ``launch`` (outside any CUDA graph) and a graph
  without an ``lm_head`` gets none;
* host work as :class:`~workloads.operators.RuntimeWork` operators: ``runtime.step`` (the
  step's share of a scheduling pass, fixed plus per sequence; a prefill step carries a whole
  pass) before the first kernels, or beside them with ``async_scheduling``; ``runtime.sync``
  after the last ones; ``runtime.output`` (the step's output processing, per sequence) after the
  sync, or beside the kernels (after ``runtime.step``) with ``async_output`` or
  ``async_scheduling``; and, for an eager step,
  ``runtime.dispatch`` (the host issuing every kernel) beside them, so the step takes at least
  as long as the host needs to issue it.

The graph's ``meta["runtime"]`` names the profile. The input graph is unchanged.
"""

from __future__ import annotations

import copy
import dataclasses

from hwmodels.dtypes import DTYPE_BYTES
from hwmodels.runtime import load_runtime

from .graph import Graph
from .operators import Attention, Elementwise, MatMul, MemCopy, RMSNorm, RuntimeWork
from .tensors import Tensor

QUANTIZE_FLOPS_PER_ELEMENT = 2.0   # multiply by the scale, convert
CONVERT_FLOPS_PER_ELEMENT = 1.0    # one conversion an element
SILU_FLOPS_PER_ELEMENT = 3.0       # x / (1 + exp(-x)): negate, add, divide (and one exp)
ACTIVATION_DTYPE = "fp32"          # ggml's activations between kernels


def with_all_reduce_kernel(op, kernel):
    """``op`` as the engine runs it when it is an all-reduce and the engine has its own all-reduce
    ``kernel`` (:class:`hwmodels.runtime.AllReduceKernel`): a copy carrying it as its
    ``all_reduce_kernel`` attribute, which :func:`roofline.collectives.plan_collective` prices
    (the kernel below its size limits, NCCL above); any other operator as it is."""
    if kernel is None or op.kind != "collective" or op.collective != "all_reduce":
        return op
    op = copy.copy(op)
    op.all_reduce_kernel = kernel
    return op


def _convert(name: str, numel: float, src: str, dst: str, stage: int, flops: float = CONVERT_FLOPS_PER_ELEMENT,
             special: bool = False) -> Elementwise:
    """A kernel reading ``numel`` elements in ``src`` and writing them in ``dst``."""
    n = max(1, round(numel))
    return Elementwise(name=name, numel=n, flops_per_element=flops, special=special, dtype=ACTIVATION_DTYPE,
                       stage=stage, inputs=[Tensor(f"{name}.in", (n,), src, "activation")],
                       outputs=[Tensor(f"{name}.out", (n,), dst, "activation")])


def _quantize(op, stage: int) -> tuple[Elementwise, object]:
    """(quantize kernel, the GEMM reading its output) for fp8 GEMM ``op``."""
    act = op.inputs[0]
    wide = "bf16"
    q = Elementwise(name=f"{op.name}.quantize", numel=act.numel, flops_per_element=QUANTIZE_FLOPS_PER_ELEMENT,
                    dtype=wide, stage=stage,
                    inputs=[Tensor(f"{op.name}.quantize.in", act.shape, wide, "activation", act.placement)],
                    outputs=[Tensor(act.name, act.shape, act.dtype, "activation", act.placement)])
    return q, op


def _needs_quantize(op) -> bool:
    return (op.kind == "matmul" and getattr(op, "dtype", None) == "fp8" and bool(op.inputs)
            and op.inputs[0].role == "activation" and op.inputs[0].dtype == "fp8")


def _attention_passes(op: Attention, ubatch: int, fused: bool) -> list[Attention]:
    """``op`` as the engine runs it: unfused when ``fused`` is False (ggml's fp32
    ggml_soft_max_ext with its fp32 mask), and split into passes of at most ``ubatch`` queries
    (0: one pass), pass i attending to every key up to its last query."""
    if fused and (not ubatch or op.q_len <= ubatch):
        return [op]
    softmax = {} if fused else {"softmax_dtype": ACTIVATION_DTYPE, "mask_dtype": ACTIVATION_DTYPE}
    past = op.kv_len - op.q_len
    step = ubatch if ubatch and op.q_len > ubatch else op.q_len
    starts = range(0, op.q_len, step)
    passes = []
    for i, start in enumerate(starts):
        q = min(step, op.q_len - start)
        name = op.name if len(starts) == 1 else f"{op.name}.ub{i}"
        passes.append(dataclasses.replace(op, name=name, q_len=q, kv_len=past + start + q, fused=fused,
                                          inputs=[], outputs=[], **softmax))
    return passes


def _batched_pointers(name: str, op: Attention, stage: int) -> list[Elementwise]:
    """ggml's k_compute_batched_ptrs in front of a batched cuBLAS GEMM whose K/V heads are shared
    by several query heads (GQA: cublasGemmBatchedEx takes an array of pointers; without sharing
    cublasGemmStridedBatchedEx needs none): one small kernel writing a pointer (8 B) to A, B and C
    of each of the batch x heads GEMMs, from three base pointers."""
    if op.heads == op.kv_heads:
        return []
    gemms = op.batch * op.heads
    return [Elementwise(name=name, numel=3 * gemms, flops_per_element=0.0, dtype=ACTIVATION_DTYPE, stage=stage,
                        inputs=[Tensor(f"{name}.bases", (3,), "fp64", "activation")],
                        outputs=[Tensor(f"{name}.out", (3 * gemms,), "fp64", "activation")])]


def _attention_kernels(op: Attention, unfused: tuple, ubatch: int, stage: int) -> tuple[list, list]:
    """(kernels before, kernels from the attention on) of attention ``op`` under ``unfused``."""
    before = []
    if "kv_store" in unfused:
        new = op.batch * op.q_len * op.kv_heads
        before += [_convert(f"{op.name}.k_store", new * op.head_dim, ACTIVATION_DTYPE, op.kv_dtype, stage),
                   _convert(f"{op.name}.v_store", new * op.v_head_dim, ACTIVATION_DTYPE, op.kv_dtype, stage)]
    scores = "attention_scores" in unfused
    after = []
    for part in _attention_passes(op, ubatch, fused=not scores):
        if scores:
            rows = part.batch * part.q_len * part.heads
            after += [_convert(f"{part.name}.q_to_f16", rows * part.head_dim, ACTIVATION_DTYPE, part.dtype, stage),
                      *_batched_pointers(f"{part.name}.kq_pointers", part, stage),
                      part,
                      _convert(f"{part.name}.scores_to_f32", part.scores, part.dtype, ACTIVATION_DTYPE, stage),
                      _convert(f"{part.name}.probs_to_f16", part.scores, ACTIVATION_DTYPE, part.dtype, stage),
                      *_batched_pointers(f"{part.name}.kqv_pointers", part, stage),
                      _convert(f"{part.name}.out_to_f32", rows * part.v_head_dim, part.dtype, ACTIVATION_DTYPE,
                               stage),
                      _convert(f"{part.name}.out_cont", rows * part.v_head_dim, ACTIVATION_DTYPE, ACTIVATION_DTYPE,
                               stage, flops=0.0)]
        else:
            after.append(part)
    return before, after


def _widened(op, dtype: str):
    """Norm or elementwise ``op`` with its tensors and arithmetic in ``dtype`` (the engine's
    activation dtype; "": as the graph has it)."""
    if not dtype or not isinstance(op, (Elementwise, RMSNorm)) or op.dtype == dtype:
        return op
    return dataclasses.replace(op, dtype=dtype, inputs=[dataclasses.replace(t, dtype=dtype) for t in op.inputs],
                               outputs=[dataclasses.replace(t, dtype=dtype) for t in op.outputs])


def _expand(op, profile, meta: dict) -> tuple[list, list]:
    """(kernels before ``op``, ``op`` and the kernels after it) as ``profile`` runs ``op``."""
    unfused = profile.unfused
    stage = op.stage
    op = _widened(op, profile.activation_dtype)
    if isinstance(op, Attention):
        if profile.attention_kernel and op.fused and "attention_scores" not in unfused:
            op = dataclasses.replace(op, kernel=profile.attention_kernel)
        return _attention_kernels(op, unfused, profile.ubatch_tokens, stage)
    if isinstance(op, MatMul):
        return _gemm_kernels(op, profile, meta)
    if isinstance(op, RMSNorm) and "norm_weight" in unfused:
        return [], [op, _convert(f"{op.name}.weight_mul", op.rows * op.cols, ACTIVATION_DTYPE, ACTIVATION_DTYPE,
                                 stage)]
    if isinstance(op, Elementwise) and "swiglu_split" in unfused and op.operands == 2 and op.name.endswith(".act"):
        return [_convert(f"{op.name}.silu", op.numel, ACTIVATION_DTYPE, ACTIVATION_DTYPE, stage,
                         flops=SILU_FLOPS_PER_ELEMENT, special=True)], [op]
    return [], [op]


def _gemm_kernels(op: MatMul, profile, meta: dict) -> tuple[list, list]:
    """(kernels before, the GEMM and the kernels after it) of ``op`` under ``profile``."""
    unfused, stage = profile.unfused, op.stage
    if "fp8_quantize" in unfused and _needs_quantize(op):
        return [_quantize(op, stage)[0]], [op]
    after = _lm_head_kernels(op, unfused, meta, stage)
    gemm = after[0]
    if profile.matvec_memory_fraction and gemm.m * gemm.batch == 1:
        gemm = after[0] = _with_fraction(gemm, profile.matvec_memory_fraction)
    converts = "f16_convert" in unfused and gemm.m > 1 and gemm.inputs and gemm.inputs[0].role == "activation"
    kernels = []
    for part in _gemm_passes(gemm, profile.ubatch_tokens, meta):
        if converts:
            kernels += [_convert(f"{part.name}.to_f16", part.inputs[0].numel, ACTIVATION_DTYPE, part.dtype, stage),
                        part, _convert(f"{part.name}.to_f32", part.outputs[0].numel, part.dtype, ACTIVATION_DTYPE,
                                       stage)]
        else:
            kernels.append(part)
    return [], [*kernels, *after[1:]]


def _gemm_passes(gemm: MatMul, ubatch: int, meta: dict) -> list[MatMul]:
    """``gemm`` as a prompt of more than ``ubatch`` tokens runs it: llama_decode_internal builds and
    computes the whole graph for each micro-batch of at most ``ubatch`` tokens, so each pass is a
    GEMM of that many rows that reads the weights again (0, or a step that is not a prefill: one)."""
    if not ubatch or meta.get("phase") != "prefill" or gemm.batch != 1 or gemm.m <= ubatch:
        return [gemm]
    starts = range(0, gemm.m, ubatch)
    return [dataclasses.replace(gemm, name=f"{gemm.name}.ub{i}", m=min(ubatch, gemm.m - start), inputs=[], outputs=[])
            for i, start in enumerate(starts)]


def _lm_head_kernels(op: MatMul, unfused: tuple, meta: dict, stage: int) -> list:
    """The LM head over every prompt token with its logits copied to the host (``all_logits``,
    prefill), or ``op`` as it is."""
    prompt = int(meta.get("prompt_len") or 1)
    if "all_logits" not in unfused or meta.get("phase") != "prefill" or op.name != "lm_head" or prompt <= 1:
        return [op]
    head = dataclasses.replace(op, m=op.m * prompt, inputs=[], outputs=[])
    logits = head.outputs[0].numel * DTYPE_BYTES[ACTIVATION_DTYPE]
    return [head, MemCopy(name=f"{op.name}.logits_to_host", bytes_moved=logits, src="device", dst="host",
                          stage=stage)]


def engine_kernels(op, profile, meta: dict) -> list:
    """The kernels ``profile`` runs for operator ``op`` of a step whose graph has ``meta``, in
    order: its unfused kernels around it (:func:`_expand`) and ``op`` as the engine runs it (its
    all-reduce kernel), without launch costs (the caller says how kernels launch). The one
    expansion :func:`with_runtime` and the serving step model both use."""
    before, after = _expand(op, profile, meta)
    return [with_all_reduce_kernel(_with_memory_fraction(kernel, profile), profile.all_reduce_kernel)
            for kernel in (*before, *after)]


STREAMING_KINDS = ("elementwise", "rmsnorm", "layernorm", "softmax", "embedding")


def _with_memory_fraction(kernel, profile):
    """``kernel`` carrying the profile's ``kernel_memory_fraction`` (attribute ``memory_fraction``)
    when it is one of the engine's own streaming kernels: a norm, softmax, elementwise kernel, conversion or
    copy, an embedding gather, or an unfused attention (whose softmax is the engine's; its GEMMs are cuBLAS's)."""
    if not profile.kernel_memory_fraction:
        return kernel
    own = kernel.kind in STREAMING_KINDS or (isinstance(kernel, Attention) and not kernel.fused)
    return _with_fraction(kernel, profile.kernel_memory_fraction) if own else kernel


def _with_fraction(kernel, fractions):
    """A copy of ``kernel`` with the attribute ``memory_fraction`` (memory kind -> fraction of the
    streaming rate its traffic reaches, read by the cost model)."""
    kernel = copy.copy(kernel)
    kernel.memory_fraction = fractions
    return kernel


def sampling_kernels(graph: Graph, profile, stage: int = 0) -> list[Elementwise]:
    """The decoder's kernels after the logits (``sampling_kernels``; none without an ``lm_head``),
    each launched eagerly at the profile's ``launch`` when it gives one."""
    if not profile.sampling_kernels or "lm_head" not in {op.name for op in graph.ops}:
        return []
    head = graph.op("lm_head")
    rows = max(1, round(head.m * head.batch))
    logits = rows * head.n * int(graph.meta.get("tp") or 1)   # the LM head's vocabulary shard x TP ranks
    passes = min(profile.sampling_logit_passes, profile.sampling_kernels)
    # a pass over the logits reads and rewrites them (penalties, masks); the others touch a
    # 4-byte value a sequence (token ids, lengths, flags: fp32 stands for their size)
    kernels = [Elementwise(name=f"runtime.sample.{i}", numel=logits if i < passes else rows,
                           dtype=head.outputs[0].dtype if i < passes else "fp32", stage=stage)
               for i in range(profile.sampling_kernels)]
    if profile.launch_s is not None:
        for kernel in kernels:
            kernel.launch_s = profile.launch_s
    return kernels


def with_runtime(graph: Graph, profile) -> Graph:
    """``graph`` as ``profile`` (a :class:`~hwmodels.runtime.RuntimeProfile`, a name or a file)
    runs it (see the module docstring); the graph itself when the profile adds nothing."""
    profile = load_runtime(profile)
    if profile.is_none:
        return graph
    meta = graph.meta
    phase = str(meta.get("phase") or "")
    batch = int(meta.get("batch") or 1)
    graphed = profile.graphed(phase, batch)
    launch = profile.graph_kernel_s if graphed else profile.launch_s
    new = Graph(graph.name, meta={**meta, "runtime": profile.name, "cuda_graph": graphed})
    ops = graph.ops
    roots = [op.name for op in ops if not graph.deps(op.name)]
    sinks = {op.name for op in ops} - {d for op in ops for d in graph.deps(op.name)}
    first, last = min(op.stage for op in ops), max(op.stage for op in ops)
    step = None
    host_step = profile.step_cpu_total_s(batch, prefill=phase == "prefill")
    if host_step > 0:
        step = RuntimeWork(name="runtime.step", host_s=host_step, activity="step", stage=first)
        new.add(step)
    expanded = [(op, engine_kernels(op, profile, meta)) for op in ops]
    sampling = sampling_kernels(graph, profile, last)
    if not graphed and profile.dispatch_cpu_s > 0:
        # issued on the host stream after the step's CPU work, beside the kernels
        kernels = sum(len(run) for _, run in expanded) + len(sampling)
        new.add(RuntimeWork(name="runtime.dispatch", host_s=profile.dispatch_cpu_s * kernels, activity="dispatch",
                            stage=first))
    alias: dict[str, str] = {}   # an operator's name -> the last kernel standing for it
    for op, run in expanded:
        deps = [alias.get(d, d) for d in graph.deps(op.name)]
        if step is not None and not profile.async_scheduling and op.name in roots:
            deps.append(step.name)
        for kernel in run:
            if launch is not None and kernel.kind != "memcopy":
                kernel = copy.copy(kernel)
                kernel.launch_s = launch
            new.add(kernel, deps)
            deps = [kernel.name]
        alias[op.name] = deps[0]
    output_s = profile.output_cpu_s(batch)
    output = (RuntimeWork(name="runtime.output", host_s=output_s, activity="output", stage=last)
              if output_s > 0 else None)
    overlapped = profile.async_output or profile.async_scheduling
    if output is not None and overlapped:
        # the previous step's outputs, processed on the host while this step's kernels run (host
        # work runs in the order it is added: before the sync that waits for the kernels)
        new.add(output, [step.name] if step is not None else [])
    tails = sorted(alias.get(s, s) for s in sinks)
    for kernel in sampling:
        new.add(kernel, tails)
        tails = [kernel.name]
    if profile.sync_s > 0:
        new.add(RuntimeWork(name="runtime.sync", host_s=profile.sync_s, activity="sync", stage=last), tails)
        tails = ["runtime.sync"]
    if output is not None and not overlapped:
        new.add(output, tails)
    return new
