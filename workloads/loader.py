"""One entry point for every workload reference: a bundled model id, a config.json, or a file of
a type registered in :data:`workloads.importers.IMPORTERS` (workload YAML, ONNX)."""

from __future__ import annotations

from pathlib import Path

from hwmodels.errors import InputError

from . import onnx_import, yaml_format  # noqa: F401 - importing them registers their file types
from .graph import Graph
from .importers import IMPORTERS
from .llm import build_llm
from .options import StepOptions


def load_workload(ref: str | Path, options: StepOptions | None = None, **knobs) -> Graph:
    """The graph ``ref`` describes. ``options`` and ``knobs`` go to :func:`~workloads.llm.build_llm`
    for models (phase, batch, prompt_len, context, tp, pp, ep, dtypes, ...: the fields of
    :class:`~workloads.options.StepOptions`); ``knobs`` go to the importer for a file of a
    registered type (ONNX: ``unknown_ops``, ``batch``; workload YAML takes none)."""
    path = Path(str(ref))
    suffix = path.suffix.lower()
    if suffix in IMPORTERS:
        if options is not None:
            raise InputError(f"LLM step options do not apply to a {suffix} file ({IMPORTERS.help(suffix)})",
                             file=str(path))
        return IMPORTERS[suffix](path, **knobs)
    return build_llm(str(ref), options, **knobs)
