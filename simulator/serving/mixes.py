"""Request length mixes: the prompt and output lengths of a public benchmark's dataset, as data.

A benchmark such as vLLM's ``benchmark_serving --dataset-name sharegpt`` sends requests whose
lengths come from a dataset, filtered; the dataset itself is too large to bundle, so a mix
(``simulator/serving/data/<name>.yaml``) describes its lengths by a distribution whose statistics
come from a public source, says what is assumed beyond them, and names the filters the benchmark
applies. A mix has no arrival times: ``make_requests(trace=NAME)`` draws its lengths and the
arrivals from ``rate`` (or a closed loop), as ``ridgeline serve --requests sharegpt --rate 4``.

Each length is lognormal (``median``, ``sigma`` of the log), drawn independently, rounded to a
whole token; pairs the filters reject are drawn again (the benchmark skips them and takes the
next conversation), so the filtered means are the ``mean`` figures the file states.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources

import numpy as np

from hwmodels import yamlio
from hwmodels.registry import Registry

REQUEST_MIXES: Registry[str] = Registry("request length mix")
REQUEST_MIXES.register("sharegpt", "sharegpt.yaml",
                       help="ShareGPT_V3 first turns as vLLM's/SGLang's benchmarks sample them (prompt 4..1024, "
                            "prompt + output <= 2048 Llama-3 tokens): lognormal lengths, mean 226.75 in, 194.35 out")

FILTERS = ("min_prompt", "min_output", "max_prompt", "max_total")


@dataclass(frozen=True)
class LengthMix:
    """Prompt and output lengths of a mix: lognormal (median, sigma) each, and the filters;
    ``prompt_mean`` / ``output_mean``: the filtered means its source states (what the medians
    were solved for)."""

    name: str
    prompt_median: float
    prompt_sigma: float
    output_median: float
    output_sigma: float
    min_prompt: int = 1
    min_output: int = 1
    max_prompt: int = 1 << 30
    max_total: int = 1 << 30
    prompt_mean: float | None = None
    output_mean: float | None = None
    source: str = ""
    assumed: str = ""

    def keep(self, prompts: np.ndarray, outputs: np.ndarray) -> np.ndarray:
        """Which (prompt, output) pairs pass the benchmark's filters."""
        return ((prompts >= self.min_prompt) & (outputs >= self.min_output) & (prompts <= self.max_prompt)
                & (prompts + outputs <= self.max_total))

    def draw(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` (prompt, output) pairs that pass the filters, in draw order."""
        prompts, outputs, have = [], [], 0
        while have < n:
            want = max(64, int((n - have) * 1.1))
            p = np.maximum(1, np.rint(rng.lognormal(math.log(self.prompt_median), self.prompt_sigma, want)))
            o = np.maximum(1, np.rint(rng.lognormal(math.log(self.output_median), self.output_sigma, want)))
            ok = self.keep(p, o)
            prompts.append(p[ok])
            outputs.append(o[ok])
            have += int(ok.sum())
        return (np.concatenate(prompts)[:n].astype(np.int64), np.concatenate(outputs)[:n].astype(np.int64))


def _positive(doc, value, where: tuple) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
        raise doc.error(f"expected a number > 0, got {value!r}", where)
    return float(value)


def load_mix(name: str) -> LengthMix:
    """The bundled mix ``name`` (:data:`REQUEST_MIXES`)."""
    file = REQUEST_MIXES.get(name, path="requests")
    text = resources.files("simulator.serving.data").joinpath(file).read_text(encoding="utf-8")
    doc = yamlio.loads(text, file)
    data = yamlio.require_mapping(doc)
    fields = {}
    for part in ("prompt", "output"):
        spec = data.get(part)
        if not isinstance(spec, dict):
            raise doc.error("expected a mapping with median and sigma", (part,))
        for key in ("median", "sigma"):
            fields[f"{part}_{key}"] = _positive(doc, spec.get(key), (part, key))
        if "mean" in spec:
            fields[f"{part}_mean"] = _positive(doc, spec["mean"], (part, "mean"))
    filters = data.get("filters") or {}
    for key in FILTERS:
        if key in filters:
            fields[key] = int(_positive(doc, filters[key], ("filters", key)))
    return LengthMix(name=str(data.get("name", name)), source=str(data.get("source", "")),
                     assumed=str(data.get("assumed", "")), **fields)

