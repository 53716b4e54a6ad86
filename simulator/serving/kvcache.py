"""The KV cache as paged blocks (PagedAttention), and how many blocks a replica has.

A request holds ``ceil(tokens / block_size)`` blocks for the tokens of it in the cache; blocks are
taken as its cache grows and all returned when it finishes or is preempted. The block count is
derived the way vLLM's worker derives it (``determine_num_available_blocks``: profile a forward
pass of the largest step, then split what is left): device memory x ``gpu_memory_utilization``,
minus the weights, minus the activation peak of the largest step (``max_num_batched_tokens``
tokens), minus the runtime's reserve (CUDA context, NCCL and CUDA-graph pools: a number of the
serving-engine profile), divided by the bytes of one block across the layers a rank holds.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from hwmodels.dtypes import DTYPE_BYTES
from hwmodels.errors import InputError


class KVCache:
    """``blocks_total`` blocks of ``block_size`` tokens; counts what is used and its peak.

    Free blocks are taken oldest-freed first (vLLM's free block queue, LRU). With prefix caching,
    the blocks a preempted request gives back keep their contents until they are taken again
    (``release(req, keep=True)``): if some are still untouched when the request resumes,
    :meth:`reclaim` hands them back and that much of its prefill is skipped. A request's blocks
    enter the queue last-block first (as vLLM frees them), so what survives is a prefix.
    """

    __slots__ = ("blocks_total", "block_size", "free", "peak_used", "_queue", "_kept")

    def __init__(self, blocks_total: int, block_size: int = 16):
        self.blocks_total, self.block_size = blocks_total, block_size
        self.free = blocks_total
        self.peak_used = 0
        self._queue = deque([[None, blocks_total]])   # [owner whose contents they keep, count], oldest first
        self._kept: dict = {}

    @property
    def used(self) -> int:
        return self.blocks_total - self.free

    def blocks_for(self, tokens: int) -> int:
        return -(-tokens // self.block_size)

    def can_hold(self, req, tokens: int) -> bool:
        """Whether ``req`` could grow to ``tokens`` tokens now."""
        return self.blocks_for(tokens) - req.blocks <= self.free

    def grow(self, req, tokens: int) -> bool:
        """Give ``req`` the blocks for ``tokens`` tokens if there are enough free; else False."""
        need = -(-tokens // self.block_size) - req.blocks
        if need > self.free:
            return False
        if need > 0:
            self.take(need)
            req.blocks += need
        return True

    def take(self, n: int) -> None:
        """Take ``n`` free blocks, oldest-freed first (evicting what they kept)."""
        self.free -= n
        used = self.blocks_total - self.free
        if used > self.peak_used:
            self.peak_used = used
        queue = self._queue
        while n > 0:
            head = queue[0]
            k = min(head[1], n)
            head[1] -= k
            n -= k
            if head[1] == 0:
                queue.popleft()
                if head[0] is not None:
                    self._kept.pop(head[0], None)

    def release(self, req, keep: bool = False) -> None:
        """Return ``req``'s blocks (``keep``: their contents stay until the blocks are taken)."""
        if req.blocks:
            self.free += req.blocks
            tail = self._queue[-1] if self._queue else None
            if not keep and tail is not None and tail[0] is None:
                tail[1] += req.blocks
            else:
                entry = [req if keep else None, req.blocks]
                self._queue.append(entry)
                if keep:
                    self._kept[req] = entry
        req.blocks = 0

    def reclaim(self, req, max_tokens: int) -> int:
        """Tokens of ``req``'s prefix still in blocks it gave back (whole blocks, at most
        ``max_tokens``); those blocks are its again."""
        entry = self._kept.pop(req, None)
        if entry is None or entry[1] == 0:
            return 0
        blocks = min(entry[1], max_tokens // self.block_size)
        entry[0], entry[1] = None, entry[1] - blocks    # the rest stays free, no longer of use
        self.free -= blocks
        req.blocks = blocks
        used = self.blocks_total - self.free
        if used > self.peak_used:
            self.peak_used = used
        return blocks * self.block_size


@dataclass(frozen=True)
class KVBudget:
    """How a replica's device memory is spent (bytes per rank) and the blocks that follow."""

    memory_bytes: float
    usable_bytes: float
    weights_bytes: float
    activations_bytes: float
    reserve_bytes: float
    block_bytes: float
    blocks: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def kv_budget(cfg, knobs: dict, device, *, block_size: int, gpu_memory_utilization: float,
              max_num_batched_tokens: int, reserve_bytes: float, free_fraction: float | None = None) -> KVBudget:
    """The KV blocks of a replica of ``cfg`` on ``device`` (per rank; see the module docstring).
    ``free_fraction`` (TensorRT-LLM's ``kv_cache_free_gpu_mem_fraction``) gives the KV cache that
    fraction of the memory left after the weights, activations and reserve, instead of what is
    left of ``gpu_memory_utilization`` of the whole (vLLM's way). A model that does not fit raises
    InputError saying by how much."""
    from workloads.batch import PrefillChunk, build_step
    from workloads.footprint import stage_footprints

    if not 0 < gpu_memory_utilization <= 1:
        raise InputError(f"gpu_memory_utilization must be in (0, 1], got {gpu_memory_utilization}",
                         path="gpu_memory_utilization")
    if free_fraction is not None and not 0 < free_fraction <= 1:
        raise InputError(f"kv_free_fraction must be in (0, 1], got {free_fraction}", path="kv_free_fraction")
    graph = build_step(cfg, [PrefillChunk(max_num_batched_tokens, 0)], knobs=knobs)
    prints = stage_footprints(graph)
    weights = max(fp.weight_bytes() for fp in prints)
    acts = max(fp.activations_bytes for fp in prints)
    memory = device.memory[device.main_memory].capacity_bytes
    layers_per_rank = math.ceil(cfg.layers / knobs["pp"])
    per_token = cfg.kv_bytes_per_token(DTYPE_BYTES[knobs["kv_dtype"]]) / cfg.layers * layers_per_rank
    kv_heads = cfg.kv_heads or 1
    block = block_size * per_token / min(knobs["tp"], kv_heads)   # KV heads split over TP ranks
    gib = 2**30
    if free_fraction is None:
        usable = memory * gpu_memory_utilization
        left = usable - weights - acts - reserve_bytes
        whole, knob = f"{usable / gib:.2f} GiB usable ({gpu_memory_utilization:g} of {memory / gib:.2f} GiB)", \
            "gpu_memory_utilization"
    else:
        usable = memory
        left = (memory - weights - acts - reserve_bytes) * free_fraction
        whole, knob = f"{free_fraction:g} (kv_free_fraction) of {memory / gib:.2f} GiB", "kv_free_fraction"
    if left < block:
        short = block - left
        raise InputError(f"{cfg.id} does not fit on {device.id} for serving: {whole} minus weights "
                         f"{weights / gib:.2f} GiB, activations {acts / gib:.2f} GiB and runtime reserve "
                         f"{reserve_bytes / gib:.2f} GiB leaves {left / gib:.2f} GiB, "
                         f"{short / gib:.2f} GiB short of one KV block; more tensor or pipeline "
                         f"parallelism, a smaller weight dtype or a larger {knob} would help",
                         path="memory")    # as the simulator's capacity errors: a sweep records "does-not-fit"
    return KVBudget(memory, usable, weights, acts, reserve_bytes, block, int(left // block))
