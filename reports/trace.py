"""A simulation as a Chrome/Perfetto trace (JSON; opens in ui.perfetto.dev): a process per device,
a thread per stream (operators in a stream never overlap, so their slices nest cleanly; bound,
limiting resource, energy in args), and a counter track per device resource (FLOP/s or B/s in
use) and for power."""

from __future__ import annotations

import json
from pathlib import Path

from simulator.engine import STREAMS


def perfetto_trace(result) -> dict:
    """The trace events of a :class:`simulator.result.SimResult`."""
    tl = result.timeline
    devices = sorted(set(tl["device"]))
    pid = {d: i + 1 for i, d in enumerate(devices)}
    tids = {s: i + 1 for i, s in enumerate(STREAMS)}
    events: list[dict] = []
    for d in devices:
        events.append({"ph": "M", "name": "process_name", "pid": pid[d], "args": {"name": d}})
        for s, t in tids.items():
            events.append({"ph": "M", "name": "thread_name", "pid": pid[d], "tid": t, "args": {"name": s}})
    for row in tl.itertuples(index=False):
        events.append({
            "ph": "X", "name": row.op, "cat": row.kind, "pid": pid[row.device], "tid": tids[row.stream],
            "ts": row.start * 1e6, "dur": max(row.end - row.start, 0.0) * 1e6,
            "args": {"bound": row.bound, "resource": row.resource, "microbatch": int(row.microbatch),
                     "stage": int(row.stage), "energy_j": float(row.energy_j)}})
    for (dev, name), series in result.counters().items():
        if dev in pid:
            events += [{"ph": "C", "name": name, "pid": pid[dev], "ts": t * 1e6, "args": {name: value}}
                       for t, value in series]
    return {"traceEvents": events, "displayTimeUnit": "ns",
            "otherData": {"latency_s": result.latency_s, "bottleneck": result.bottleneck}}


def write_trace(result, path: str | Path) -> Path:
    """Write the trace JSON of ``result`` to ``path``; returns the path."""
    path = Path(path)
    path.write_text(json.dumps(perfetto_trace(result)))
    return path
