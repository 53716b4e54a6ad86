"""Batch schedulers: which requests run in the next step, with how many tokens each.

A scheduler looks at its replica (``waiting``: arrived requests not running, oldest first;
``running``: admitted requests, oldest first; ``kv``: the block pool) and returns a
:class:`Batch`; it admits a waiting request with ``replica.resume`` (which takes its blocks and
says how many tokens it computes now) and ``replica.admit``, grows running ones with ``kv.grow``
and, when blocks run out, preempts through ``replica.preempt`` (recompute or swap, the
replica's choice). It never works
out a time: the replica asks the step-time model what the batch costs.

Register your own with ``@SCHEDULERS.register("name", help=...)`` on a class whose constructor
takes the :class:`SchedulerConfig` and that has ``schedule(replica) -> Batch | None``; it may
also have ``rejects(req) -> str | None`` (the cluster refuses, on arrival, a request its
scheduler could never run, with that reason).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hwmodels.errors import InputError
from hwmodels.registry import Registry

SCHEDULERS: Registry[type] = Registry("scheduler")


@dataclass(frozen=True)
class SchedulerConfig:
    """Knobs shared by the schedulers (vLLM's names)."""

    max_num_seqs: int = 256
    max_num_batched_tokens: int = 8192
    chunk_size: int = 512            # sarathi's token budget per step
    reserve_full_prompt: bool = True  # admit only when the whole prompt's blocks are free
    # multi-step scheduling (the engine profile's scheduler_steps, vLLM 0.6's
    # --num-scheduler-steps): orca runs a decode batch this many steps before it looks at the
    # waiting requests again
    decode_run_steps: int = 1

    def __post_init__(self):
        for name in ("max_num_seqs", "max_num_batched_tokens", "chunk_size", "decode_run_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive integer, got {value!r}", path=name)


@dataclass
class Batch:
    """One step's work: ``prefills`` as (request, tokens) and ``decodes`` (one token each)."""

    prefills: list = field(default_factory=list)
    decodes: list = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.prefills or self.decodes)

    def add(self, req, tokens: int) -> None:
        if tokens == 1 and req.computed >= req.prompt:
            self.decodes.append(req)
        else:
            self.prefills.append((req, tokens))

    @property
    def tokens(self) -> int:
        return len(self.decodes) + sum(t for _, t in self.prefills)


def _grow_or_preempt(replica, req, tokens: int, protect=()) -> bool:
    """Blocks for ``req`` to reach ``tokens``, preempting the newest running requests (not
    ``protect``ed) until they fit; False when ``req`` itself had to go."""
    running = replica.running
    while not replica.kv.grow(req, tokens):
        victim = running[-1]
        if victim is req or victim in protect:
            if victim is req:
                running.pop()
                replica.preempt(req)
            return False
        running.pop()
        replica.preempt(victim)
    return True


def _whole_request(req) -> int:
    """Tokens a request holds when it finishes (prompt and whole output): what a scheduler that
    never preempts reserves at admission."""
    return req.prompt + req.output


def _admit_whole(replica, batch: Batch, limit: int, room=lambda req, batch: True, reserve=lambda req: 0) -> None:
    """Admit waiting requests in arrival order with their whole remaining prompt, while fewer than
    ``limit`` run, ``room(req, batch)`` holds and their blocks (grown for ``reserve(req)`` tokens)
    are there: the admission loop of the schedulers that do not chunk prefills."""
    waiting = replica.waiting
    while waiting and len(replica.running) < limit:
        req = waiting[0]
        if not room(req, batch):
            break
        need = replica.resume(req, reserve=reserve(req))
        if need is None:
            break
        replica.admit(waiting.popleft())
        batch.add(req, need)


@SCHEDULERS.register("vllm", help="vLLM v1: one token budget per step shared by decodes and chunked "
                                  "prefills, max_num_seqs, FCFS, recompute preemption of the newest")
class VLLMScheduler:
    """vLLM v1's scheduler: running requests first (in admission order), each taking
    ``min(tokens it still needs, budget left)`` so that long prompts are chunked; when a request's
    blocks cannot grow, the newest running request is preempted (possibly itself); then, if
    nothing was preempted this step, waiting requests in FCFS order while the budget, the
    ``max_num_seqs`` limit and the blocks last."""

    def __init__(self, config: SchedulerConfig):
        self.config = config
        self.budget = config.max_num_batched_tokens

    @staticmethod
    def step_tokens(config: SchedulerConfig) -> int:
        """The largest step it runs (the KV budget's activation peak is taken there)."""
        return config.max_num_batched_tokens

    def order(self, running: list) -> list:
        return list(running)

    def decodes_alone(self, n: int) -> bool:
        """With nothing waiting and ``n`` requests all decoding, every one decodes each step."""
        return n <= self.budget

    def schedule(self, replica) -> Batch | None:
        cfg, kv = self.config, replica.kv
        batch = Batch()
        budget = self.budget
        preempted = replica.preemptions
        for req in self.order(replica.running):
            if budget <= 0:
                break
            if req not in replica.running_set:      # preempted by an earlier request this step
                continue
            new = min(req.tokens - req.computed, budget)
            if not _grow_or_preempt(replica, req, req.computed + new, protect=batch.decodes):
                continue
            batch.add(req, new)
            budget -= new
        if replica.preemptions == preempted:
            waiting = replica.waiting
            while waiting and budget > 0 and len(replica.running) < cfg.max_num_seqs:
                req = waiting[0]
                if cfg.reserve_full_prompt and not kv.can_hold(req, req.tokens):
                    break
                new = replica.resume(req, budget)
                if new is None:
                    break
                replica.admit(waiting.popleft())
                batch.add(req, new)
                budget -= new
        return batch or None


@SCHEDULERS.register("sarathi", help="Sarathi-Serve stall-free batching: decodes first, then prefill "
                                     "chunks up to chunk_size tokens per step")
class SarathiScheduler(VLLMScheduler):
    """Sarathi-Serve: the token budget per step is the chunk size, decodes are never stalled
    (they are scheduled before any prefill chunk), prefills fill what is left in chunks."""

    def __init__(self, config: SchedulerConfig):
        super().__init__(config)
        self.budget = config.chunk_size

    @staticmethod
    def step_tokens(config: SchedulerConfig) -> int:
        """The largest step it runs (the KV budget's activation peak is taken there)."""
        return config.chunk_size

    def order(self, running: list) -> list:
        return sorted(running, key=lambda r: r.computed < r.tokens - 1)   # decodes first (stable)


@SCHEDULERS.register("orca", help="Orca iteration-level scheduling with whole prefills first: a step "
                                  "of new prompts whenever one can be admitted, else a decode step")
class OrcaScheduler:
    """Iteration-level batching without chunking: when waiting requests can be admitted, the
    step runs their whole prompts (up to the token budget, at least one prompt) and the running
    requests wait (vLLM v0's prefill-first policy); otherwise every running request decodes.

    With ``decode_run_steps`` N > 1 (multi-step scheduling, vLLM 0.6) a decode batch runs N
    steps before the waiting requests are looked at again (``locked``: the steps left of the
    current run); a prefill step is a step of its own. A request that finishes inside a run
    leaves it at once (vLLM keeps its place to the run's end)."""

    def __init__(self, config: SchedulerConfig):
        self.config = config
        self.locked = 0

    def decodes_alone(self, n: int) -> bool:
        return True

    def admits_none(self, replica) -> bool:
        """Whether no waiting request can be admitted before a running one finishes or the
        current multi-step run ends (:meth:`steps_before_admission`)."""
        return bool(self.locked) or self._full(replica)

    def _full(self, replica) -> bool:
        """Every place is taken, or (without prefix caching, which could hand blocks back) the
        oldest waiting prompt's blocks are not free, and decode steps only take more of them."""
        if len(replica.running) >= self.config.max_num_seqs:
            return True
        head = replica.waiting[0]
        return not replica.cluster.prefix_caching and not replica.kv.can_hold(head, head.tokens)

    def steps_before_admission(self, replica) -> int | None:
        """Decode steps that may be played at once before a waiting request could join: the
        rest of the current multi-step run when only it keeps them out; None: until a running
        request finishes."""
        return self.locked if self.locked and not self._full(replica) else None

    def advance(self, steps: int) -> None:
        """``steps`` decode steps were played at once: move through the multi-step runs (a
        decode step outside a run starts one of ``decode_run_steps``)."""
        self.locked = self._locked_after(steps)

    def _locked_after(self, steps: int) -> int:
        n = self.config.decode_run_steps
        return self.locked - steps if steps <= self.locked else n - 1 - (steps - self.locked - 1) % n

    def run_ends(self, steps: int) -> list[bool]:
        """For each of the next ``steps`` decode steps (asked before :meth:`advance`), whether it
        ends a multi-step run: vLLM 0.6 hands a run's tokens to the client at its end."""
        return [self._locked_after(j) == 0 for j in range(1, steps + 1)]

    def holds_tokens(self) -> bool:
        """Whether the step just scheduled leaves its multi-step run open (its tokens are held
        for the run's end)."""
        return self.locked > 0

    def schedule(self, replica) -> Batch | None:
        cfg = self.config
        batch = Batch()

        def room(req, batch) -> bool:   # at least one prompt, then whole prompts within the budget
            return not batch.prefills or batch.tokens + req.tokens - req.computed <= cfg.max_num_batched_tokens

        if not self.locked:
            _admit_whole(replica, batch, cfg.max_num_seqs, room)
            if batch:
                return batch
        for req in list(replica.running):
            if req in replica.running_set and _grow_or_preempt(replica, req, req.computed + 1,
                                                               protect=batch.decodes):
                batch.add(req, req.tokens - req.computed)
        if not batch:
            self.locked = 0
            return None
        self.advance(1)
        return batch


@SCHEDULERS.register("trtllm", help="TensorRT-LLM in-flight batching as trtllm-bench runs it: every running "
                                    "request's next token, then whole new prompts (no context chunking) within "
                                    "max_num_batched_tokens (max_num_tokens); a prompt is admitted only with the "
                                    "blocks of its whole output (GUARANTEED_NO_EVICT: nothing is preempted)")
class TRTLLMScheduler:
    """TensorRT-LLM's batch manager with the GUARANTEED_NO_EVICT capacity policy and context
    chunking off (trtllm-bench's defaults): a request is admitted, oldest first, while fewer than
    ``max_num_seqs`` (max_batch_size) run, its whole prompt fits in what the step's token budget
    (``max_num_batched_tokens``: max_num_tokens) leaves after the running requests' tokens, and
    the blocks of its prompt and its whole output are free; they are taken at once, so a running
    request never waits for a block and nothing is preempted. A prompt longer than the budget is
    rejected on arrival (it could never run)."""

    def __init__(self, config: SchedulerConfig):
        self.config = config

    def decodes_alone(self, n: int) -> bool:
        return n <= self.config.max_num_batched_tokens

    def rejects(self, req) -> str | None:
        budget = self.config.max_num_batched_tokens
        if req.prompt > budget:
            return (f"{req.prompt} prompt tokens exceed the step's {budget} (max_num_batched_tokens; the trtllm "
                    f"scheduler does not chunk prompts)")
        return None

    def admits_none(self, replica) -> bool:
        """Every place is taken, or the oldest waiting request's whole blocks are not free (decode
        steps take none: a running request holds its output's blocks from the start)."""
        if len(replica.running) >= self.config.max_num_seqs:
            return True
        head = replica.waiting[0]
        return not replica.kv.can_hold(head, _whole_request(head))

    def schedule(self, replica) -> Batch | None:
        cfg = self.config
        batch = Batch()
        for req in replica.running:
            if batch.tokens >= cfg.max_num_batched_tokens:
                break
            batch.add(req, req.tokens - req.computed)

        def room(req, batch) -> bool:
            return batch.tokens + req.tokens - req.computed <= cfg.max_num_batched_tokens

        _admit_whole(replica, batch, cfg.max_num_seqs, room, reserve=_whole_request)
        return batch or None


@SCHEDULERS.register("static", help="static batching (FasterTransformer): a batch is admitted when the "
                                    "replica is idle and runs until its last request finishes")
class StaticScheduler:
    """Static batching: when nothing runs, admit up to ``max_num_seqs`` waiting requests whose
    whole sequences (prompt + output) fit in the free blocks, prefill them in one step, then
    decode until every one has finished; arrivals wait for the next batch."""

    def __init__(self, config: SchedulerConfig):
        self.config = config

    def decodes_alone(self, n: int) -> bool:
        return True

    def admits_none(self, replica) -> bool:
        """Arrivals wait while a batch runs."""
        return bool(replica.running)

    def schedule(self, replica) -> Batch | None:
        batch = Batch()
        if not replica.running:
            _admit_whole(replica, batch, self.config.max_num_seqs, reserve=_whole_request)
            return batch or None
        for req in replica.running:
            batch.add(req, req.tokens - req.computed)
        return batch


@SCHEDULERS.register("disaggregated", help="Splitwise/DistServe: prefill replicas and decode replicas, "
                                           "the KV cache moved between them over the link")
class DisaggregatedScheduler(VLLMScheduler):
    """On each replica of a disaggregated cluster: vLLM's policy. The cluster makes the split: a
    prefill replica hands every request on after its first token, and its KV cache travels over
    the link to a decode replica (see :class:`~simulator.serving.cluster.Cluster`). A scheduler
    class with ``disaggregated = True`` gets that split."""

    disaggregated = True
