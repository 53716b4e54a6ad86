"""Requests: who arrives when, with how many prompt tokens, wanting how many output tokens.

Arrivals as vLLM's ``benchmark_serving`` draws them: the gap before each next request is
``gamma(shape=burstiness, scale=1 / (rate x burstiness))`` (burstiness 1: Poisson; below 1:
burstier; above 1: more regular), the first request arrives at 0; ``rate=inf`` sends everything
at 0 (offline). A closed loop (``concurrency``) keeps that many requests in flight instead: each
finished request is replaced at once (the replica does that; here they have no arrival yet).

Lengths: a fixed number, or ``uniform:LO,HI``, ``normal:MEAN,STD``, ``lognormal:MEDIAN,SIGMA``
(sigma of the log), ``empirical:FILE`` (one number per line, drawn with replacement), each drawn
per request and rounded to a whole token of at least 1.

Traces (:func:`load_trace`): JSONL with ``input_toks``, ``output_toks`` and an arrival
(``queued_ts``, ``arrival_time`` or ``arrival_s``; the first arrival is time 0), CSV with
``arrived_at,num_prefill_tokens,num_decode_tokens`` or the Azure columns
``TIMESTAMP,ContextTokens,GeneratedTokens``; ``.gz`` files are read through gzip. The bundled
traces (:data:`BUNDLED`) are named by id.

Mixes (:mod:`.mixes`, e.g. ``sharegpt``): a public benchmark's length distribution without
arrival times; the lengths come from the mix, the arrivals from ``rate`` (or a closed loop).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
from datetime import datetime
from importlib import resources
from pathlib import Path

import numpy as np

from hwmodels import limits
from hwmodels.errors import InputError, did_you_mean, unknown_name

from .mixes import REQUEST_MIXES, load_mix

BUNDLED = {
    "azure-conv": "azure-conv-2023.csv.gz",
    "azure-code": "azure-code-2023.csv.gz",
    "vllm-rtx4090": "vllm-rtx4090-llama-3.1-8b.jsonl",
}
JSONL_ARRIVALS = ("queued_ts", "arrival_time", "arrival_s")
CSV_COLUMNS = (("arrived_at", "num_prefill_tokens", "num_decode_tokens"),
               ("TIMESTAMP", "ContextTokens", "GeneratedTokens"))


class Request:
    """One request and what happened to it (times in s on the simulation clock).

    ``computed``: tokens of it in the KV cache; ``generated``: output tokens produced; it needs
    ``prompt + generated`` tokens computed before its next token (after a recompute preemption the
    output generated so far is prefilled again, as vLLM does).
    """

    __slots__ = ("id", "arrival_s", "prompt", "output", "computed", "generated", "first_token_s",
                 "last_token_s", "finish_s", "preemptions", "blocks", "replica", "rejected", "swapped",
                 "scheduled_s", "prompt_seen")

    def __init__(self, rid: int, arrival_s: float, prompt: int, output: int):
        self.id, self.arrival_s, self.prompt, self.output = rid, arrival_s, prompt, output
        self.computed = self.generated = self.preemptions = self.blocks = self.prompt_seen = 0
        self.first_token_s = self.last_token_s = self.finish_s = self.scheduled_s = None
        self.replica = -1
        self.rejected: str | None = None
        self.swapped = False

    @property
    def tokens(self) -> int:
        """Tokens the request holds once its cache is complete: the prompt and its output so far."""
        return self.prompt + self.generated

    def __repr__(self) -> str:
        return f"Request({self.id}, arrival={self.arrival_s:.3f}s, {self.prompt} in, {self.output} out)"


# -- arrivals -----------------------------------------------------------------------------------
def arrival_times(n: int, rate: float, burstiness: float = 1.0, seed: int = 0) -> np.ndarray:
    """``n`` arrival times (s): gamma gaps as vLLM's benchmark draws them, the first at 0."""
    if not rate > 0:
        raise InputError(f"rate must be > 0 requests/s (inf: all at once), got {rate!r}", path="rate")
    if not (burstiness > 0 and math.isfinite(burstiness)):
        raise InputError(f"burstiness must be a positive number, got {burstiness!r}", path="burstiness")
    if math.isinf(rate):
        return np.zeros(n)
    rng = np.random.default_rng(seed)
    gaps = rng.gamma(shape=burstiness, scale=1.0 / (rate * burstiness), size=n)
    gaps[0] = 0.0
    return np.cumsum(gaps)


# -- lengths ------------------------------------------------------------------------------------
def _numbers(text: str, n: int, path: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",")]
    except ValueError:
        raise InputError(f"'{text}': expected {n} comma-separated numbers", path=path) from None
    if len(values) != n or not all(math.isfinite(v) for v in values):
        raise InputError(f"'{text}': expected {n} comma-separated finite numbers", path=path)
    return values


def draw_lengths(spec: str | int, n: int, rng: np.random.Generator, path: str = "length") -> np.ndarray:
    """``n`` token counts from ``spec`` (see the module docstring), each a whole number >= 1."""
    text = str(spec).strip()
    kind, _, args = text.partition(":")
    if not args:
        try:
            value = float(kind)
        except ValueError:
            raise unknown_name("length distribution", kind, ("uniform", "normal", "lognormal", "empirical"),
                               path=path) from None
        if not (value >= 1 and value.is_integer()):
            raise InputError(f"a length must be a whole number of tokens >= 1, got {text}", path=path)
        return np.full(n, int(value))
    if kind == "uniform":
        lo, hi = _numbers(args, 2, path)
        if not 1 <= lo <= hi:
            raise InputError(f"uniform:{args}: need 1 <= LO <= HI", path=path)
        values = rng.integers(int(lo), int(hi) + 1, size=n)
    elif kind == "normal":
        mean, std = _numbers(args, 2, path)
        if mean < 1 or std < 0:
            raise InputError(f"normal:{args}: need MEAN >= 1 and STD >= 0", path=path)
        values = rng.normal(mean, std, size=n)
    elif kind == "lognormal":
        median, sigma = _numbers(args, 2, path)
        if median < 1 or sigma < 0:
            raise InputError(f"lognormal:{args}: need MEDIAN >= 1 and SIGMA >= 0", path=path)
        values = rng.lognormal(math.log(median), sigma, size=n)
    elif kind == "empirical":
        values = rng.choice(_empirical(args, path), size=n)
    else:
        raise unknown_name("length distribution", kind, ("uniform", "normal", "lognormal", "empirical"),
                           path=path)
    return np.maximum(1, np.rint(values)).astype(np.int64)


def _empirical(file: str, path: str) -> np.ndarray:
    try:
        lines = Path(file).read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror or e}", file=file, path=path) from None
    out = []
    for i, line in enumerate(lines, 1):
        field = line.split(",")[0].strip()
        if not field or field.startswith("#"):
            continue
        try:
            value = float(field)
        except ValueError:
            if not out and i == 1:      # a header
                continue
            raise InputError(f"'{field}' is not a number", file=file, line=i, path=path) from None
        if not (value >= 1 and math.isfinite(value)):
            raise InputError(f"a length must be >= 1 token, got {field}", file=file, line=i, path=path)
        out.append(value)
    if not out:
        raise InputError("no lengths in the file", file=file, path=path)
    return np.asarray(out)


# -- traces -------------------------------------------------------------------------------------
def _open_text(ref: str) -> tuple[str, str]:
    """(text, file name for messages) of a trace path or bundled id."""
    if ref in BUNDLED:
        data = resources.files("simulator.serving.data").joinpath(BUNDLED[ref]).read_bytes()
        name = BUNDLED[ref]
    else:
        path = Path(ref)
        if not path.exists():
            raise InputError(f"no such trace file (bundled traces: {', '.join(BUNDLED)}; request mixes: "
                             f"{', '.join(REQUEST_MIXES.names())})", file=ref, path="requests",
                             suggestion=did_you_mean(ref, [*BUNDLED, *REQUEST_MIXES.names()]))
        data, name = path.read_bytes(), ref
    if name.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:   # gzip.BadGzipFile is an OSError; a cut file is an EOFError
            raise InputError(f"not a readable gzip file ({e or 'truncated'})", file=name, path="requests") from None
    try:
        return data.decode("utf-8"), name
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise InputError(f"not UTF-8 text (byte {data[e.start]:#04x} at offset {e.start})", file=name,
                         line=line, path="requests") from None


def _tokens(value, file: str, line: int, field: str) -> int:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise InputError(f"'{value}' is not a number", file=file, line=line, path=field) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"expected a number, got {value!r}", file=file, line=line, path=field)
    if value < 1 or not float(value).is_integer():
        raise InputError(f"must be a whole number of tokens >= 1, got {value}", file=file, line=line, path=field)
    return int(value)


def _timestamp(text: str) -> float:
    """Seconds of an ISO date-time; the Azure traces give 7 fractional digits (100 ns), which
    ``fromisoformat`` takes only from Python 3.11, so the fraction is cut to microseconds."""
    text = text.strip()
    head, dot, frac = text.partition(".")
    if dot:
        digits = len(frac) - len(frac.lstrip("0123456789"))
        text = f"{head}.{frac[:min(digits, 6)].ljust(6, '0')}{frac[digits:]}"
    return datetime.fromisoformat(text).timestamp()


def _time(value, file: str, line: int, field: str) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            try:
                value = _timestamp(value)
            except ValueError:
                raise InputError(f"'{value}' is neither seconds nor a timestamp", file=file, line=line,
                                 path=field) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"expected a time in seconds, got {value!r}", file=file, line=line, path=field)
    return float(value)


def _jsonl(text: str, file: str) -> list[tuple[float, int, int]]:
    rows = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"not valid JSON: {e.msg}", file=file, line=i) from None
        if not isinstance(obj, dict):
            raise InputError("expected a JSON object per line", file=file, line=i)
        key = next((k for k in JSONL_ARRIVALS if k in obj), None)
        for need in ("input_toks", "output_toks"):
            if need not in obj:
                raise InputError("missing", file=file, line=i, path=need)
        if key is None:
            raise InputError(f"missing an arrival ({', '.join(JSONL_ARRIVALS)})", file=file, line=i,
                             path=JSONL_ARRIVALS[0])
        rows.append((_time(obj[key], file, i, key), _tokens(obj["input_toks"], file, i, "input_toks"),
                     _tokens(obj["output_toks"], file, i, "output_toks")))
    return rows


def _csv(text: str, file: str) -> list[tuple[float, int, int]]:
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader, [])]
    cols = next((c for c in CSV_COLUMNS if all(x in header for x in c)), None)
    if cols is None:
        raise InputError(f"CSV header {header} has neither {', '.join(CSV_COLUMNS[0])} nor "
                         f"{', '.join(CSV_COLUMNS[1])}", file=file, line=1)
    idx = [header.index(c) for c in cols]
    rows = []
    for i, row in enumerate(reader, 2):
        if not row or not any(x.strip() for x in row):
            continue
        if len(row) < len(header):
            raise InputError(f"{len(row)} fields, the header has {len(header)}", file=file, line=i)
        rows.append((_time(row[idx[0]], file, i, cols[0]), _tokens(row[idx[1]], file, i, cols[1]),
                     _tokens(row[idx[2]], file, i, cols[2])))
    return rows


def load_trace(ref: str) -> list[tuple[float, int, int]]:
    """(arrival s from the first arrival, prompt tokens, output tokens) per line of a trace file
    or bundled trace id, in arrival order."""
    text, name = _open_text(str(ref))
    stem = name.removesuffix(".gz")
    rows = _jsonl(text, name) if stem.endswith((".jsonl", ".json")) else _csv(text, name)
    if not rows:
        raise InputError("the trace has no requests", file=name)
    rows.sort(key=lambda r: r[0])
    t0 = rows[0][0]
    return [(t - t0, p, o) for t, p, o in rows]


def _rows(rows) -> list[tuple[float, int, int]]:
    """(arrival s, prompt, output) rows given in Python, checked like a trace's lines."""
    out = []
    for i, row in enumerate(rows):
        try:
            t, p, o = row
        except (TypeError, ValueError):
            raise InputError("expected (arrival_s, input_toks, output_toks)", path=f"requests[{i}]") from None
        out.append((_time(t, "<requests>", i + 1, "arrival_s"), _tokens(p, "<requests>", i + 1, "input_toks"),
                    _tokens(o, "<requests>", i + 1, "output_toks")))
    if not out:
        raise InputError("no requests", path="requests")
    out.sort(key=lambda r: r[0])
    t0 = out[0][0]
    return [(t - t0, p, o) for t, p, o in out]


def make_requests(*, trace=None, num_requests: int | None = None, rate: float = math.inf,
                  burstiness: float = 1.0, input_len: str | int = 512, output_len: str | int = 128,
                  seed: int = 0, closed_loop: bool = False) -> list[Request]:
    """The requests of a run: from ``trace`` (a file, a bundled id or a list of (arrival_s,
    input_toks, output_toks); its first ``num_requests`` if given), or
    ``num_requests`` drawn (arrivals at ``rate``, lengths from ``input_len`` / ``output_len``, or
    from the mix ``trace`` names, :data:`~.mixes.REQUEST_MIXES`).
    ``closed_loop``: arrival times are left at 0 (the replica admits them by concurrency)."""
    if isinstance(trace, str) and trace in REQUEST_MIXES:
        if num_requests is None:
            raise InputError(f"the mix '{trace}' has no length of its own: give num_requests", path="num_requests")
        n = _count(num_requests)
        prompts, outputs = load_mix(trace).draw(n, np.random.default_rng(seed))
        times = np.zeros(n) if closed_loop else arrival_times(n, rate, burstiness, seed)
        return [Request(i, float(t), int(p), int(o)) for i, (t, p, o) in enumerate(zip(times, prompts, outputs))]
    if trace is not None:
        rows = load_trace(trace) if isinstance(trace, (str, Path)) else _rows(trace)
        if num_requests is not None:
            rows = rows[:_count(num_requests)]
        limits.check("requests", len(rows), path="requests")
        return [Request(i, t, p, o) for i, (t, p, o) in enumerate(rows)]
    n = _count(num_requests)
    rng = np.random.default_rng(seed)
    prompts = draw_lengths(input_len, n, rng, "input_len")
    outputs = draw_lengths(output_len, n, rng, "output_len")
    times = np.zeros(n) if closed_loop else arrival_times(n, rate, burstiness, seed)
    return [Request(i, float(t), int(p), int(o)) for i, (t, p, o) in enumerate(zip(times, prompts, outputs))]


def _count(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"num_requests must be a positive integer, got {n!r}", path="num_requests")
    limits.check("requests", int(n), path="num_requests")   # before drawing n of anything
    return int(n)
