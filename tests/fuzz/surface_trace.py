"""``trace``: request traces for ``ridgeline serve --requests FILE``.

Cases are the bundled traces' first lines in the three layouts the loader reads (vLLM benchmark
JSONL with ``input_toks``/``output_toks`` and ``queued_ts``/``arrival_time``/``arrival_s``; the
CSV ``arrived_at,num_prefill_tokens,num_decode_tokens``; Azure ``TIMESTAMP,ContextTokens,
GeneratedTokens``) with cells replaced by junk (zero, negative, NaN, huge and non-numeric values),
columns or keys dropped, headers duplicated, lines duplicated or swapped, bytes that are not UTF-8.
Each runs through the serve CLI on llama-3.1-8b / h100-sxm with a few requests at most, and an
accepted run must account for every arrival (completed or reported rejected) with finite,
non-negative latencies.
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

from hypothesis import strategies as st

from .harness import SURFACES, NonFinite, Surface, check_figures, run_cli_in
from .surfaces import _fresh

DATA = Path(__file__).resolve().parents[2] / "simulator" / "serving" / "data"
MAX_REQUESTS = 4   # requests simulated per case (the rest of a trace is loaded and checked only)


def _seed_traces() -> dict[str, str]:
    """A few lines of every bundled trace, in each layout the loader reads."""
    jsonl = (DATA / "vllm-rtx4090-llama-3.1-8b.jsonl").read_text().splitlines()[:6]
    azure = gzip.decompress((DATA / "azure-code-2023.csv.gz").read_bytes()).decode().splitlines()[:6]
    plain = [json.loads(line) for line in jsonl]
    return {
        "vllm.jsonl": "\n".join(jsonl) + "\n",
        "arrival_s.jsonl": "".join(json.dumps({"input_toks": r["input_toks"], "output_toks": r["output_toks"],
                                               "arrival_s": i * 0.25}) + "\n" for i, r in enumerate(plain)),
        "azure-code.csv": "\n".join(azure) + "\n",
        "azure.csv": "TIMESTAMP,ContextTokens,GeneratedTokens\n"
                     "2023-11-16 18:15:46.6805900,374,44\n2023-11-16 18:15:50.9951690,396,109\n"
                     "2023-11-16 18:15:51.2345000,879,28\n",
    }


SEEDS = _seed_traces()
CELL_JUNK = ["0", "-1", "-5.5", "NaN", "nan", "inf", "-inf", "1e308", "1e400", "99999999999999999999", "2.5",
             "", " ", "abc", "null", "true", "[]", "{}", '"12"', "1" + "0" * 40, "2023-99-99 00:00:00",
             "2023-11-16T18:15:46+05:00", "0x10", "1_000", "\u00e9", "\x00"]


def _mutate_csv(lines: list[str], rnd: random.Random) -> None:
    i = rnd.randrange(len(lines))
    cells = lines[i].split(",")
    op = rnd.randrange(5)
    if op == 0:
        cells[rnd.randrange(len(cells))] = rnd.choice(CELL_JUNK)
    elif op == 1 and len(cells) > 1:
        del cells[rnd.randrange(len(cells))]
    elif op == 2:
        cells.append(rnd.choice(cells))   # a duplicated column (a header one when i == 0)
    elif op == 3:
        lines.insert(i, lines[0])          # the header again, as a data line
    else:
        cells = cells[::-1]
    lines[i] = ",".join(cells)


def _mutate_jsonl(lines: list[str], rnd: random.Random) -> None:
    i = rnd.randrange(len(lines))
    try:
        obj = json.loads(lines[i])
    except ValueError:
        return
    if not isinstance(obj, dict):   # a line an earlier edit made a number, string or list
        return
    key = rnd.choice(sorted(obj) + ["input_toks", "output_toks", "arrival_s", "queued_ts"])
    op = rnd.randrange(4)
    if op == 0:
        obj[key] = rnd.choice([0, -1, -3.5, 2.5, 10**30, 2**63, 1e308, True, None, "12", "x", [], {}])
        lines[i] = json.dumps(obj)
    elif op == 1:
        obj.pop(key, None)
        lines[i] = json.dumps(obj)
    elif op == 2:   # tokens json.dumps cannot write: NaN, Infinity, a duplicated key
        lines[i] = json.dumps(obj)[:-1] + f', "{key}": {rnd.choice(["NaN", "Infinity", "-Infinity", "1e999", "7"])}}}'
    else:
        lines[i] = rnd.choice(["[1, 2, 3]", "42", '"x"', "{", lines[i][: len(lines[i]) // 2]])


def trace_text(name: str, seed: int, edits: int) -> bytes:
    """The seed trace ``name`` with ``edits`` random edits, as bytes (sometimes not UTF-8)."""
    rnd = random.Random(seed)
    lines = SEEDS[name].splitlines()
    mutate = _mutate_jsonl if name.endswith(".jsonl") else _mutate_csv
    for _ in range(edits):
        if not lines:
            break
        op = rnd.randrange(8)
        if op == 0:
            del lines[rnd.randrange(len(lines))]
        elif op == 1:
            lines.insert(rnd.randrange(len(lines) + 1), rnd.choice(lines))
        else:
            mutate(lines, rnd)
    data = ("\n".join(lines) + "\n").encode()
    if rnd.randrange(12) == 0 and data:   # an invalid UTF-8 byte
        j = rnd.randrange(len(data))
        data = data[:j] + rnd.choice([b"\xff", b"\xc3", b"\xed\xa0\x80"]) + data[j + 1:]
    return data


JUNK_FILES = st.sampled_from([b"", b"\n\n", b"\xef\xbb\xbfarrived_at,num_prefill_tokens,num_decode_tokens\n0,1,1\n",
                              b"arrived_at,arrived_at,num_prefill_tokens,num_decode_tokens\n0,0,5,5\n",
                              b'{"input_toks": 1, "output_toks": 1, "arrival_s": 0}',
                              b"\x1f\x8b\x08\x00garbage", b"\xff\xfe\x00\x00"])
TRACE = st.one_of(
    st.sampled_from(sorted(SEEDS)).flatmap(
        lambda name: st.tuples(st.just(name), st.builds(trace_text, st.just(name), st.integers(0, 2**32 - 1),
                                                        st.integers(0, 4)))),
    st.tuples(st.sampled_from(["junk.jsonl", "junk.csv", "junk.csv.gz"]), JUNK_FILES))
CASE = st.tuples(TRACE, st.integers(1, MAX_REQUESTS), st.sampled_from(["vllm", "sarathi"]))


def check_serve_json(result: dict, arrivals: int) -> None:
    """Every arrival completed or reported rejected; no latency negative or non-finite."""
    check_figures(result, "serve")
    done, rejected = len(result["requests"]), len(result["rejected"])
    if done + rejected != arrivals:
        raise AssertionError(f"{arrivals} arrivals but {done} completed and {rejected} rejected")
    for name, values in result["latencies"].items():
        bad = [v for v in values if v is None or v < 0]
        if bad:
            raise NonFinite(f"latencies.{name} has {bad[0]!r}")


def run_trace(case: tuple, workdir: Path) -> None:
    from simulator.serving.requests import load_trace

    (name, data), num_requests, scheduler = case
    path = _fresh(workdir, "-" + name)
    path.write_bytes(data)
    argv = ["serve", "--hw", "h100-sxm", "--model", "llama-3.1-8b", "--requests", str(path),
            "--num-requests", str(num_requests), "--scheduler", scheduler, "--format", "json"]
    out = run_cli_in(argv, workdir)
    check_serve_json(json.loads(out), min(num_requests, len(load_trace(str(path)))))


SURFACES.register("trace", Surface("trace", CASE, run_trace,
                                   "mutated request traces (JSONL, CSV, Azure) through `ridgeline serve --requests`"))
