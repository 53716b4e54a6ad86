"""The options of one LLM step, as data: what each knob means, its type, its valid range and the
phases it applies to, in one place.

Everything that offers these knobs is generated from :class:`StepOptions`: the CLI flags of
``workload show``, ``roofline`` and ``simulate`` (``reports.dataclass_args``), the keyword
arguments of :func:`workloads.llm.build_llm`, and the axes a sweep may vary
(:meth:`StepOptions.axes`). A new knob is one new field here (plus its use in the builder).

A field left ``None`` takes its default only where it applies (:meth:`StepOptions.effective`):
``context`` defaults to ``prompt_len``, ``weight_dtype``/``kv_dtype`` to ``dtype``, ``group_size``
to 128 for int4/int8 weights, ``acceptance`` to 0.8 with ``spec_tokens``. A knob given where it
does not apply (a context for a prefill, a chunk size outside ``chunked``, a group size for
unquantized weights) is an :class:`~hwmodels.errors.InputError` naming the field, never ignored.
Checks that need the model (tp dividing the heads, experts for ``ep``) live with the builder.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hwmodels import limits
from hwmodels.dtypes import normalize_dtype
from hwmodels.errors import InputError, unknown_name

from .configs import ModelConfig
from .tensors import PLACEMENTS, QUANTIZED_DTYPES

PHASES = ("prefill", "decode", "chunked")
DEFAULT_ACCEPTANCE = 0.8
DEFAULT_GROUP_SIZE = 128   # GPTQ/AWQ's usual group


@dataclass(frozen=True)
class Axis:
    """What a knob accepts: ``type`` (int, float, str, bool, or ``"dtype"``/``"model"``), a range
    [``min``, ``max``] (``min_open``: ``min`` itself excluded), or ``choices``; ``phases`` it
    applies to (empty: every phase)."""

    name: str
    type: Any
    help: str
    default: Any = None
    min: float | None = None
    max: float | None = None
    min_open: bool = False
    choices: tuple[str, ...] = ()
    phases: tuple[str, ...] = ()

    def check(self, value: Any) -> Any:
        """``value`` if it is a valid value of this knob (dtypes normalized), else an InputError."""
        if value is None:
            if self.default is None:
                return None
            raise InputError(f"{self.name} must be given, got None", path=self.name)
        if self.type == "dtype":
            return normalize_dtype(value, path=self.name)
        if self.type == "model":
            if isinstance(value, (str, ModelConfig)):
                return value
            raise InputError(f"{self.name} must be a model id, a config.json path or a ModelConfig, "
                             f"got {value!r}", path=self.name)
        if self.type is bool:
            if not isinstance(value, bool):
                raise InputError(f"{self.name} must be true or false, got {value!r}", path=self.name)
            return value
        if self.type is str:
            if self.choices and value not in self.choices:
                raise unknown_name(self.name.replace("_", " "), str(value), self.choices, path=self.name)
            if not isinstance(value, str):
                raise InputError(f"{self.name} must be a string, got {value!r}", path=self.name)
            return value
        numbers = (int,) if self.type is int else (int, float)
        if (isinstance(value, bool) or not isinstance(value, numbers) or not self._in_range(value)
                or (isinstance(value, float) and math.isnan(value))):
            raise InputError(f"{self.name} must be {self.describe_range()}, got {value!r}", path=self.name)
        if isinstance(value, int):   # a float may be inf where that means something (a request rate)
            limits.check(self.name if self.name in limits.LIMITS else "dimension", value, path=self.name)
        return value

    def _in_range(self, value: float) -> bool:
        if self.min is not None and (value <= self.min if self.min_open else value < self.min):
            return False
        return self.max is None or value <= self.max

    def describe_range(self) -> str:
        """The accepted values in words: 'a positive integer', 'in (0, 1]', 'a number >= 1'."""
        if self.type is int:
            if self.max is None:
                return "a positive integer" if self.min == 1 else f"an integer >= {self.min:g}"
            return f"an integer in [{self.min:g}, {self.max:g}]"
        if self.min is not None and self.max is not None:
            return f"in {'(' if self.min_open else '['}{self.min:g}, {self.max:g}]"
        return f"a number {'>' if self.min_open else '>='} {self.min:g}"

    def applies(self, phase: str) -> bool:
        return not self.phases or phase in self.phases


def knob(default: Any, type: Any, help: str, *, min: float | None = None, max: float | None = None,
         min_open: bool = False, choices: tuple[str, ...] = (), phases: tuple[str, ...] = (),
         fallback: Callable[[StepOptions], Any] | None = None, flag: str | None = None, cli: bool = True):
    """A :class:`StepOptions` field. ``fallback(options)``: the value a ``None`` stands for where the
    knob applies; ``flag``: the CLI spelling when not ``--name-with-dashes`` (a bool's flag flips
    the default); ``cli``: whether the CLI offers it."""
    return field(default=default, metadata={
        "type": type, "help": help, "min": min, "max": max, "min_open": min_open, "choices": choices,
        "phases": phases, "fallback": fallback, "flag": flag, "cli": cli})


@dataclass(frozen=True)
class StepOptions:
    """The knobs of one LLM step (see :func:`workloads.llm.build_llm` for how each is modelled).

    Built from keyword arguments, from CLI flags (``reports.dataclass_args``) or by a sweep; it
    validates itself on construction (each field's type and range, then the knobs that do not
    apply to the phase or contradict each other), raising InputError with ``path`` = field name.
    """

    phase: str = knob("decode", str, "step: prefill (prompts from an empty cache), decode (one token per "
                      "sequence, or a speculative verification) or chunked (SARATHI: a prefill chunk with "
                      "decodes)", choices=PHASES)
    batch: int = knob(1, int, "sequences (decode) or prompts (prefill); ONNX: dynamic dims; with ep > tp: "
                      "over all the data-parallel attention groups", min=1)
    prompt_len: int = knob(512, int, "prompt tokens per sequence (decode: the shared prefix of best_of, and "
                           "the default context)", min=1, phases=("prefill", "chunked"))
    context: int | None = knob(None, int, "tokens already cached per sequence (decode, chunked; default "
                               "prompt_len; 0: an empty cache)", min=0, phases=("decode", "chunked"),
                               fallback=lambda o: o.prompt_len)
    tp: int = knob(1, int, "tensor-parallel ranks (attention and dense MLP)", min=1)
    pp: int = knob(1, int, "pipeline stages", min=1)
    ep: int = knob(1, int, "expert-parallel ranks (1, or a multiple of tp: attention then runs in ep/tp "
                   "data-parallel groups of tp ranks)", min=1)
    microbatches: int = knob(1, int, "micro-batches through the pipeline", min=1)
    dtype: str = knob("bf16", "dtype", "activation dtype")
    weight_dtype: str | None = knob(None, "dtype", "weight dtype (int4/int8: group-quantized; default dtype)",
                                    fallback=lambda o: o.dtype)
    kv_dtype: str | None = knob(None, "dtype", "KV-cache dtype (default dtype)", fallback=lambda o: o.dtype)
    group_size: int | None = knob(None, int, "int4/int8 weights: elements per quantization group (default "
                                  f"{DEFAULT_GROUP_SIZE})", min=1, fallback=lambda o: DEFAULT_GROUP_SIZE)
    kv_placement: str = knob("device", str, "where the KV cache lives", choices=PLACEMENTS)
    spec_tokens: int = knob(0, int, "speculative tokens verified per step", min=0, phases=("decode",))
    draft: Any = knob(None, "model", "draft model for speculative decoding (id or config.json)",
                      phases=("decode",))
    acceptance: float | None = knob(None, float, "speculative decoding: per-token acceptance rate (default "
                                    f"{DEFAULT_ACCEPTANCE})", min=0, max=1, phases=("decode",),
                                    fallback=lambda o: DEFAULT_ACCEPTANCE)
    best_of: int = knob(1, int, "samples per prompt sharing its KV prefix", min=1, phases=("prefill", "decode"))
    kv_fraction: float = knob(1.0, float, "sparse attention: fraction of the KV read", min=0, max=1,
                              min_open=True)
    chunk_size: int | None = knob(None, int, "chunked prefill: tokens per chunk (default: the rest of the prompt)", min=1,
                                  phases=("chunked",), fallback=lambda o: o.prompt_len - o.chunk_start)
    chunk_start: int = knob(0, int, "chunked prefill: prompt tokens already prefilled before this chunk",
                            min=0, phases=("chunked",))
    moe_imbalance: float | None = knob(None, float, "MoE: busiest expert's load over the mean (default 1)",
                                       min=1, fallback=lambda o: 1.0)
    fused_attention: bool = knob(True, bool, "flash-style fused attention (off: the scores are materialized)",
                                 flag="--unfused-attention")
    kv_block: int | None = knob(None, int, "tokens per block of a paged KV cache, gathered block by block "
                                "(vLLM's --block-size; default: a contiguous cache)", min=1)

    def __post_init__(self) -> None:
        for name, axis in _AXES.items():
            object.__setattr__(self, name, axis.check(getattr(self, name)))
        self._check_combinations()

    @classmethod
    def axes(cls) -> dict[str, Axis]:
        """Every knob's name, type, range/choices, phases and help (for a sweep spec's axes)."""
        return dict(_AXES)

    @classmethod
    def from_kwargs(cls, **knobs) -> StepOptions:
        """Options from keyword arguments; an unknown name is an InputError with a suggestion."""
        _known(knobs)
        return cls(**knobs)

    def replace(self, **changes) -> StepOptions:
        """A copy with ``changes`` (validated like a new one)."""
        _known(changes)
        return dataclasses.replace(self, **changes)

    def effective(self, name: str) -> Any:
        """The value of knob ``name``, its default filled in where it was left None."""
        value = getattr(self, name)
        fallback = _FIELDS[name].metadata["fallback"]
        return fallback(self) if value is None and fallback is not None else value

    def applies(self, name: str) -> bool:
        """Whether knob ``name`` means something for this step's phase."""
        return knob_applies(name, self.phase, best_of=self.best_of)

    def _check_combinations(self) -> None:
        """Knobs that do not apply to the phase, or contradict each other."""
        phase = self.phase
        if self.context is not None and phase == "prefill" and self.context != self.prompt_len:
            raise InputError(f"context ({self.context}) differs from prompt_len ({self.prompt_len}): context "
                             "(tokens cached) applies to phases decode and chunked; a prefill runs prompt_len "
                             "tokens from an empty cache", path="context")
        for name in ("chunk_size", "chunk_start"):
            if getattr(self, name) != _FIELDS[name].default and phase != "chunked":
                raise InputError(f"{name} applies to phase 'chunked' (got phase '{phase}')", path=name)
        if self.acceptance is not None and not self.spec_tokens:
            raise InputError("acceptance applies to speculative decoding; give spec_tokens >= 1 too",
                             path="acceptance")
        weights = self.effective("weight_dtype")
        if self.group_size is not None and (weights not in QUANTIZED_DTYPES or weights == self.dtype):
            why = (f"{weights} weights with {self.dtype} activations run as integer GEMMs without group scales"
                   if weights in QUANTIZED_DTYPES else f"not {weights} weights")
            raise InputError(f"group_size applies to int4/int8 weights (weight_dtype) dequantized to the "
                             f"activation dtype; {why}", path="group_size")
        if self.batch % self.microbatches:
            raise InputError(f"batch ({self.batch}) must be a multiple of microbatches ({self.microbatches})",
                             path="microbatches")
        if self.draft is not None and (self.spec_tokens == 0 or phase != "decode"):
            raise InputError("a draft model needs phase 'decode' and spec_tokens >= 1", path="draft")
        if self.draft is not None and self.pp > 1:
            raise InputError("speculative decoding with a draft model is modelled without pipeline "
                             "parallelism (pp=1)", path="pp")
        if phase == "chunked" and (self.microbatches > 1 or self.best_of > 1 or self.spec_tokens):
            raise InputError("chunked prefill is modelled without microbatches, best_of or spec_tokens",
                             path="phase")
        if self.spec_tokens and phase != "decode":
            raise InputError("spec_tokens applies to phase 'decode'", path="spec_tokens")
        if phase == "decode" and self.best_of > 1 and self.effective("context") < self.prompt_len:
            raise InputError(f"best_of: context ({self.effective('context')}) must include the shared prompt "
                             f"({self.prompt_len})", path="context")
        if phase == "chunked" and self.chunk_start >= self.prompt_len:
            raise InputError(f"chunk_start ({self.chunk_start}) must be below prompt_len ({self.prompt_len}): "
                             "a chunk needs at least one prompt token left", path="chunk_start")
        if phase == "chunked" and self.chunk_start + self.effective("chunk_size") > self.prompt_len:
            raise InputError(f"chunk_start + chunk_size ({self.chunk_start + self.effective('chunk_size')}) "
                             f"exceeds prompt_len ({self.prompt_len})",
                             path="chunk_size" if self.chunk_size is not None else "chunk_start")


def _known(knobs: dict) -> None:
    for name in knobs:
        if name not in _AXES:
            raise unknown_name("build option", name, _AXES, path=name)


def knob_applies(name: str, phase: str, *, best_of: int = 1) -> bool:
    """Whether knob ``name`` means something for a step of ``phase`` (a decode's ``prompt_len`` only
    as the prefix its ``best_of`` samples share; names that are not knobs: True)."""
    if name == "prompt_len" and phase == "decode":
        return best_of > 1
    return name not in _AXES or _AXES[name].applies(phase)


_FIELDS = {f.name: f for f in dataclasses.fields(StepOptions)}
_AXES = {f.name: Axis(f.name, f.metadata["type"], f.metadata["help"], f.default, f.metadata["min"],
                      f.metadata["max"], f.metadata["min_open"], tuple(f.metadata["choices"]),
                      tuple(f.metadata["phases"]))
         for f in dataclasses.fields(StepOptions)}
