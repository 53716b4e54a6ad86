"""Perfetto/Chrome trace of a serving run (``ServeResult.trace()`` through :mod:`reports.views`).

Process "requests": each request an async slice in three parts (queued, prefill, decode; a
preempted request's prefill includes its re-prefill). One process per replica: its steps on the
"steps" track, each slice named by its batch composition (``2P (1024 tok) + 31D``: two prefill
chunks of 1,024 tokens in all and 31 decodes), and counters for KV blocks in use,
running and waiting requests.
"""

from __future__ import annotations

import json
from pathlib import Path

US = 1e6


def serving_trace(res) -> dict:
    events: list[dict] = [{"ph": "M", "name": "process_name", "pid": 0, "args": {"name": "requests"}}]
    df = res.to_frame()
    for r in df.itertuples(index=False):
        rid = int(r.id)
        phases = (("queued", r.arrival_s, r.scheduled_s), ("prefill", r.scheduled_s, r.first_token_s),
                  ("decode", r.first_token_s, r.finish_s))
        events.append({"ph": "b", "cat": "request", "name": f"request {rid}", "id": rid, "pid": 0,
                       "ts": r.arrival_s * US, "args": {"input_tokens": int(r.input_tokens),
                                                        "output_tokens": int(r.output_tokens),
                                                        "preemptions": int(r.preemptions),
                                                        "replica": int(r.replica)}})
        for name, a, b in phases:
            events.append({"ph": "b", "cat": "request", "name": name, "id": rid, "pid": 0, "ts": a * US})
            events.append({"ph": "e", "cat": "request", "name": name, "id": rid, "pid": 0, "ts": b * US})
        events.append({"ph": "e", "cat": "request", "name": f"request {rid}", "id": rid, "pid": 0,
                       "ts": r.finish_s * US})
    steps = res.steps
    for rep in sorted(set(steps["replica"].astype(int))) if len(steps) else []:
        pid = rep + 1
        events.append({"ph": "M", "name": "process_name", "pid": pid, "args": {"name": f"replica {rep}"}})
        events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": 1, "args": {"name": "steps"}})
        part = steps[steps["replica"] == rep]
        for s in part.itertuples(index=False):
            parts = ([f"{int(s.prefills)}P ({int(s.prefill_tokens)} tok)"] if s.prefills else []) + (
                [f"{int(s.decodes)}D"] if s.decodes else [])
            name = " + ".join(parts)
            events.append({"ph": "X", "name": name, "pid": pid, "tid": 1, "ts": s.start_s * US,
                           "dur": s.duration_s * US,
                           "args": {"prefill_tokens": int(s.prefill_tokens), "prefills": int(s.prefills),
                                    "decodes": int(s.decodes), "energy_j": float(s.energy_j)}})
            events.append({"ph": "C", "name": "kv_blocks_used", "pid": pid, "ts": s.start_s * US,
                           "args": {"blocks": int(s.kv_blocks_used)}})
            events.append({"ph": "C", "name": "requests", "pid": pid, "ts": s.start_s * US,
                           "args": {"running": int(s.running), "waiting": int(s.waiting)}})
    return {"traceEvents": events, "displayTimeUnit": "ms"}


def write_serving_trace(res, path) -> Path:
    path = Path(path)
    path.write_text(json.dumps(serving_trace(res)), encoding="utf-8")
    return path
