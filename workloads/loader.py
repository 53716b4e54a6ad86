"""One entry point for every workload reference: a bundled model id, a config.json, a workload
YAML file or an ONNX model."""

from __future__ import annotations

from pathlib import Path

from hwmodels.errors import InputError

from .graph import Graph
from .llm import build_llm
from .options import StepOptions


def load_workload(ref: str | Path, options: StepOptions | None = None, **knobs) -> Graph:
    """The graph ``ref`` describes. ``options`` and ``knobs`` go to :func:`~workloads.llm.build_llm`
    for models (phase, batch, prompt_len, context, tp, pp, ep, dtypes, ...: the fields of
    :class:`~workloads.options.StepOptions`); ``knobs`` go to the importer for ONNX
    (``unknown_ops``, ``batch``). Workload YAML files take no knobs."""
    path = Path(str(ref))
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        from .yaml_format import load_yaml_workload

        if knobs or options is not None:
            raise InputError(f"a workload YAML file takes no build options (got {', '.join(sorted(knobs))})",
                             file=str(path))
        return load_yaml_workload(path)
    if suffix == ".onnx":
        from .onnx_import import import_onnx

        if options is not None:
            raise InputError("an ONNX model takes batch and unknown_ops, not LLM step options", file=str(path))
        return import_onnx(path, **knobs)
    return build_llm(str(ref), options, **knobs)
