"""A replica: one model instance (``tp`` x ``pp`` devices) running steps on the SimPy clock.

Its process loops: ask the scheduler for a batch, ask the step-time model what it costs, add the
engine profile's runtime overhead (and any swap transfer the step waits for), sleep that long,
then hand out the tokens the step produced. With nothing to run it sleeps until a request arrives.
"""

from __future__ import annotations

from array import array
from collections import deque

import numpy as np

from workloads.batch import DECODE_CONTEXT_GRANULE, PrefillChunk

# columns of the per-step record
STEP_COLUMNS = ("start_s", "duration_s", "running", "waiting", "kv_blocks_used", "prefill_tokens",
                "prompt_tokens", "prefills", "decodes", "tokens_out", "energy_j")


class Link:
    """One transfer path (host link for swaps, device link for disaggregated KV moves): transfers
    queue in order (first come, first served), so concurrent ones contend for its bandwidth."""

    __slots__ = ("name", "bandwidth_bytes_s", "latency_s", "free_at", "bytes_moved", "busy_s")

    def __init__(self, name: str, bandwidth_bytes_s: float, latency_s: float = 0.0):
        self.name, self.bandwidth_bytes_s, self.latency_s = name, bandwidth_bytes_s, latency_s
        self.free_at = 0.0
        self.bytes_moved = 0.0
        self.busy_s = 0.0

    def transfer(self, now: float, nbytes: float) -> float:
        """Queue ``nbytes`` at ``now``; the time the transfer ends."""
        start = max(now, self.free_at)
        duration = self.latency_s + nbytes / self.bandwidth_bytes_s
        self.free_at = start + duration
        self.bytes_moved += nbytes
        self.busy_s += duration
        return self.free_at


class Replica:
    """Requests waiting and running on one model instance, its KV blocks and its step loop.

    ``role``: ``"both"``, or ``"prefill"`` / ``"decode"`` in a disaggregated cluster (a prefill
    replica hands each request to the cluster after its first token).
    """

    def __init__(self, index: int, cluster, scheduler, kv, *, role: str = "both", host_link: Link | None = None):
        self.index, self.cluster, self.scheduler, self.kv = index, cluster, scheduler, kv
        self.env = cluster.env
        self.role = role
        self.host_link = host_link
        self.waiting: deque = deque()
        self.running: list = []
        self.running_set: set = set()
        self.preemptions = self.swaps = 0
        self.swap_bytes_pending = 0.0
        self.wake = None
        self.steps = {c: array("d") for c in STEP_COLUMNS}
        self.busy_s = 0.0
        self.energy_j = 0.0

    # -- what schedulers call ----------------------------------------------------------------------
    def submit(self, req) -> None:
        req.replica = self.index
        self.waiting.append(req)
        if self.wake is not None and not self.wake.triggered:
            self.wake.succeed()

    def admit(self, req) -> None:
        self.running.append(req)
        self.running_set.add(req)
        if req.scheduled_s is None:
            req.scheduled_s = self.env.now

    def preempt(self, req) -> None:
        """Take ``req`` off the replica: recompute (its cache is dropped, its prompt and output so
        far are prefilled again later, less what prefix caching still holds of it) or swap (its
        blocks go to host memory over the host link)."""
        self.running_set.discard(req)
        if self.cluster.preemption == "swap":
            self.swap_bytes_pending += req.blocks * self.cluster.block_bytes
            req.swapped = True
            self.swaps += 1
            self.kv.release(req)
        else:
            req.computed = 0
            self.kv.release(req, keep=self.cluster.prefix_caching)
        req.preemptions += 1
        self.preemptions += 1
        self.waiting.appendleft(req)

    def resume(self, req, budget: int | None = None, reserve: int = 0) -> int | None:
        """Ready waiting ``req`` to run: the tokens it will compute this step (all it needs, or at
        most ``budget``), its blocks grown for them (and for ``reserve`` tokens), or None and
        nothing changed when the blocks are not there. A swapped request gets its blocks' contents
        back over the host link; a recomputed one first takes back what prefix caching kept."""
        kv = self.kv
        hits = 0
        if not req.swapped and req.computed == 0 and self.cluster.prefix_caching:
            hits = req.computed = kv.reclaim(req, req.tokens - 1)
        new = req.tokens - req.computed if budget is None else min(req.tokens - req.computed, budget)
        target = max(req.computed + new, reserve)
        if not kv.grow(req, target):
            if hits:
                kv.release(req, keep=True)
                req.computed = 0
            return None
        if req.swapped:
            self.swap_bytes_pending += kv.blocks_for(req.computed) * self.cluster.block_bytes
            req.swapped = False
        return new

    # -- the step loop -----------------------------------------------------------------------------
    def run(self):
        env, cluster = self.env, self.cluster
        idle_rounds = 0
        while True:
            if not self.waiting and not self.running:
                self.wake = env.event()
                yield self.wake
                self.wake = None
                continue
            if cluster.fast_forward and (not self.waiting or self._admits_none()):
                run = self._decode_run(env.now)
                if run is not None:
                    yield env.timeout(run[0][-1] - env.now)
                    self._take_run(*run)
                    continue
            batch = self.scheduler.schedule(self)
            if batch is None:
                idle_rounds += 1
                if idle_rounds > 2:
                    # nothing can run until something changes elsewhere (a transfer, an arrival)
                    self.wake = env.event()
                    yield self.wake
                    self.wake = None
                continue
            idle_rounds = 0
            yield env.timeout(self._begin(batch, env.now))
            self._apply(batch, env.now)

    def _begin(self, batch, now: float) -> float:
        """Cost ``batch`` (step-time model, engine profile, a swap it waits for), record the step,
        and return how long it takes."""
        model, profile = self.cluster.step_model, self.cluster.profile
        context = 0
        for r in batch.decodes:
            context += r.computed
        chunks = [PrefillChunk(n, r.computed, r.computed + n >= r.tokens) for r, n in batch.prefills]
        cost = model.step(chunks, len(batch.decodes), context)
        gpu = profile.gpu_time(cost)
        duration = profile.step_time(gpu, len(chunks) + len(batch.decodes), prefill=bool(chunks))
        if self.swap_bytes_pending:
            duration += self.host_link.transfer(now, self.swap_bytes_pending) - now
            self.swap_bytes_pending = 0.0
        energy = model.energy_j(cost, gpu, duration)
        self._record(now, duration, batch, energy, len(batch.decodes) + sum(c.last for c in chunks))
        return duration

    def _admits_none(self) -> bool:
        """Whether the scheduler says no waiting request can join before a running one finishes
        (its ``admits_none``; a scheduler without one is asked every step)."""
        admits_none = getattr(self.scheduler, "admits_none", None)
        return admits_none is not None and admits_none(self)

    def _decode_run(self, now: float):
        """Play, at once, the decode-only steps that follow while nothing arrives: every running
        request decodes each step (no waiting request, or none the scheduler could admit before
        a running one finishes, and the scheduler lets all decode), until a
        request finishes, an arrival is due, or the free blocks run out. The same steps, the
        same step times as one at a time; only the Python per step is saved. Returns the step
        end times, or None (fewer than two such steps: the ordinary path takes them)."""
        running = self.running
        n = len(running)
        alone = getattr(self.scheduler, "decodes_alone", None)
        if n == 0 or alone is None or not alone(n):
            return None
        bs = self.kv.block_size
        starts = [0] * bs           # requests whose next new block falls on step j (mod bs)
        context, left = 0, 1 << 62
        for r in running:
            c = r.computed
            if r.tokens - c != 1 or r.generated == 0 or r.swapped:   # a decode (not a prompt's last token)
                return None
            rest = r.output - r.generated
            if rest < 2:                    # it finishes in the next step: no run of two
                return None
            context += c
            left = min(left, rest)
            first = r.blocks * bs - c       # the step at which it needs a new block
            if first < bs:
                starts[first] += 1
            elif first < rest:
                return None
        cluster = self.cluster
        model, profile = cluster.step_model, cluster.profile
        # step j decodes with contexts summing to context + j n; its cost depends on that only
        # through the rounded mean (workloads.batch.decode_context), so cost each distinct one once
        j = np.arange(left)
        g = DECODE_CONTEXT_GRANULE
        means = -(-(context + j * n) // (n * g)) * g
        keys, index = np.unique(means, return_inverse=True)
        durs, energy = np.empty(keys.size), np.empty(keys.size)
        for i, mean in enumerate(keys):
            cost = model.step((), n, int(mean) * n)
            gpu = profile.gpu_time(cost)
            durs[i] = profile.step_time(gpu, n)
            energy[i] = model.energy_j(cost, gpu, durs[i])
        durations, energies = durs[index], energy[index]
        # new blocks taken at step j, and the steps before the free ones run out
        kv_used = self.kv.used + np.cumsum(np.asarray(starts)[j % bs])
        k = int(np.searchsorted(kv_used, self.kv.blocks_total, side="right"))
        ends = now + np.cumsum(durations[:k])
        # stop at the step during which the next request arrives (it joins the step after), or
        # where the scheduler would let a waiting one in (the end of a multi-step run)
        k = min(k, int(np.searchsorted(ends, cluster.next_arrival_s(), side="left")) + 1)
        cap = getattr(self.scheduler, "steps_before_admission", None)
        if self.waiting and cap is not None and cap(self) is not None:
            k = min(k, cap(self))
        if k < 2:
            return None
        durations, energies, kv_used, ends = durations[:k], energies[:k], kv_used[:k], ends[:k]
        free, used = self.kv.blocks_total - int(kv_used[-1]), int(kv_used[-1])
        s = self.steps
        s["start_s"].extend((ends - durations).tolist())
        s["duration_s"].extend(durations.tolist())
        for col, value in (("running", n), ("waiting", 0), ("prefill_tokens", 0), ("prompt_tokens", 0), ("prefills", 0),
                           ("decodes", n), ("tokens_out", n)):
            s[col].extend([value] * k)
        s["kv_blocks_used"].extend(kv_used.tolist())
        s["energy_j"].extend(energies.tolist())
        self.busy_s += float(ends[-1] - now)
        self.energy_j += float(energies.sum())
        self.kv.peak_used = max(self.kv.peak_used, used)
        return ends, free

    def _take_run(self, ends, free: int) -> None:
        """Hand out the tokens of ``k`` decode steps ending at ``ends`` to every running request."""
        bs = self.kv.block_size
        k = len(ends)
        advance = getattr(self.scheduler, "advance", None)
        run_ends = getattr(self.scheduler, "run_ends", None)
        # the steps whose tokens reach the client (all, or a multi-step run's last ones)
        shown = ends if run_ends is None else ends[np.asarray(run_ends(k), dtype=bool)]
        if advance is not None:
            advance(k)
        last = float(ends[-1])
        gaps = array("d", np.diff(shown))
        itl = self.cluster.itl
        self.kv.take(self.kv.free - free)
        done = False
        for r in self.running:
            r.computed += k
            r.generated += k
            r.blocks = max(r.blocks, -(-r.computed // bs))
            times, between = shown, gaps
            if r.generated >= r.output and (not shown.size or shown[-1] != last):
                times = np.append(shown, last)      # its last token goes out when it finishes
                between = array("d", np.diff(times))
            if times.size:
                itl.append(float(times[0]) - r.last_token_s)
                itl.extend(between)
                r.last_token_s = float(times[-1])
            if r.generated >= r.output:
                r.finish_s = last
                self._leave(r)
                self.cluster.finished(r)
                done = True
        if done:
            self.running = [r for r in self.running if r in self.running_set]

    def _record(self, now: float, duration: float, batch, energy: float, tokens_out: int) -> None:
        s = self.steps
        s["start_s"].append(now)
        s["duration_s"].append(duration)
        s["running"].append(len(self.running))
        s["waiting"].append(len(self.waiting))
        s["kv_blocks_used"].append(self.kv.used)
        s["prefill_tokens"].append(sum(n for _, n in batch.prefills))
        # prompt tokens prefilled for the first time (vLLM's log counts a prompt once, not its
        # re-prefill after a preemption)
        fresh = 0
        for req, n in batch.prefills:
            reach = min(req.computed + n, req.prompt)
            if reach > req.prompt_seen:
                fresh += reach - req.prompt_seen
                req.prompt_seen = reach
        s["prompt_tokens"].append(fresh)
        s["prefills"].append(len(batch.prefills))
        s["decodes"].append(len(batch.decodes))
        s["tokens_out"].append(tokens_out)
        s["energy_j"].append(energy)
        self.busy_s += duration
        self.energy_j += energy

    def _apply(self, batch, now: float) -> None:
        done = False
        itl = self.cluster.itl
        for req, n in batch.prefills:
            req.computed += n
            if req.computed >= req.tokens:
                done |= self._token(req, now, itl)
        holds = getattr(self.scheduler, "holds_tokens", None)
        held = holds is not None and holds()
        for req in batch.decodes:
            req.computed += 1
            done |= self._token(req, now, itl, held)
        if done:
            self.running = [r for r in self.running if r in self.running_set]

    def _token(self, req, now: float, itl, held: bool = False) -> bool:
        """``req`` produced a token at ``now`` (``held``: kept for the end of its multi-step run,
        unless it is the last); True when it leaves the replica."""
        req.generated += 1
        if req.first_token_s is None:
            req.first_token_s = now
            req.last_token_s = now
        elif not held or req.generated >= req.output:
            itl.append(now - req.last_token_s)
            req.last_token_s = now
        if req.generated >= req.output:
            req.finish_s = now
            self._leave(req)
            self.cluster.finished(req)
            return True
        if self.role == "prefill":
            self._leave(req)
            self.cluster.hand_off(req)
            return True
        return False

    def _leave(self, req) -> None:
        self.kv.release(req)
        self.running_set.discard(req)
