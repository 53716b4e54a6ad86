"""The replicas of a deployment, the arrivals that feed them and the transfers between them.

:class:`Cluster` owns the SimPy environment: an arrival process (open loop: each request at its
arrival time; closed loop: ``concurrency`` requests in flight, each finished or rejected one
replaced at once), the router, the replicas' step processes and, for a disaggregated deployment
(Splitwise, DistServe), the hand-off of a request from a prefill replica to a decode replica: its
KV cache (the prompt's tokens) crosses the device link, queued behind the transfers before it.
Requests that can never run (longer than the model's context or than a replica's whole KV cache)
are rejected on arrival and counted, as vLLM rejects them.
"""

from __future__ import annotations

from array import array

import simpy


class Cluster:
    """Replicas behind a router, fed by ``requests`` (see the module docstring)."""

    def __init__(self, requests, *, step_model, profile, router, preemption: str, block_bytes: float,
                 kv_bytes_per_token: float, max_model_len: int | None, concurrency: int | None = None,
                 prefix_caching: bool = True):
        self.env = simpy.Environment()
        self.requests = requests
        self.step_model, self.profile = step_model, profile
        self.router, self.router_state = router, {}
        self.preemption = preemption
        self.prefix_caching = prefix_caching
        self.block_bytes = block_bytes
        self.kv_bytes_per_token = kv_bytes_per_token
        self.max_model_len = max_model_len
        self.concurrency = concurrency
        self.replicas: list = []
        self.decode_pool: list = []
        self.kv_link = None
        self.itl = array("d")
        self.done = 0
        self._next = 0
        self._arrived = 0
        # decode runs may be played at once when every outside event that can reach a replica
        # (an arrival) is known in advance; a hand-off between replicas or another replica's
        # finish (closed loop) is not
        self.fast_forward = True

    def next_arrival_s(self) -> float:
        """When the next request arrives from outside (inf: none is due)."""
        if self.concurrency:
            return float("inf")
        if self._arrived < len(self.requests):
            return self.requests[self._arrived].arrival_s
        return float("inf")

    def entry_pool(self) -> list:
        return [r for r in self.replicas if r.role != "decode"]

    # -- arrivals ----------------------------------------------------------------------------------
    def _arrivals(self):
        env = self.env
        if self.concurrency:
            for _ in range(min(self.concurrency, len(self.requests))):
                self._release_next()
            return
        for req in self.requests:
            if req.arrival_s > env.now:
                yield env.timeout(req.arrival_s - env.now)
            self._arrived += 1
            self._arrive(req)

    def _release_next(self) -> None:
        if self._next < len(self.requests):
            req = self.requests[self._next]
            self._next += 1
            req.arrival_s = self.env.now
            self._arrive(req)

    def _arrive(self, req) -> None:
        pool = self.entry_pool()
        longest = req.prompt + req.output
        if self.max_model_len and longest > self.max_model_len:
            req.rejected = f"{longest} tokens exceed the model's context of {self.max_model_len}"
        elif pool[0].kv.blocks_for(longest) > pool[0].kv.blocks_total:
            req.rejected = (f"{longest} tokens need {pool[0].kv.blocks_for(longest)} KV blocks; a replica "
                            f"has {pool[0].kv.blocks_total}")
        else:
            # a scheduler may refuse what it could never run (its ``rejects``: the reason, or None)
            rejects = getattr(pool[0].scheduler, "rejects", None)
            req.rejected = rejects(req) if rejects is not None else None
        if req.rejected:
            self.finished(req)
            return
        self.router(pool, req, self.router_state).submit(req)

    # -- what replicas call --------------------------------------------------------------------------
    def finished(self, req) -> None:
        self.done += 1
        if self.concurrency:
            self._release_next()

    def hand_off(self, req) -> None:
        """Move ``req`` (first token out) from its prefill replica to a decode replica."""
        self.env.process(self._move(req))

    def _move(self, req):
        end = self.kv_link.transfer(self.env.now, req.computed * self.kv_bytes_per_token)
        yield self.env.timeout(end - self.env.now)
        self.router(self.decode_pool, req, self.router_state.setdefault("decode", {})).submit(req)

    def run(self) -> None:
        if self.decode_pool or (self.concurrency and len(self.replicas) > 1):
            self.fast_forward = False
        self.env.process(self._arrivals())
        for r in self.replicas:
            self.env.process(r.run())
        self.env.run()
