"""Workloads: operators with exact FLOP and byte counts, operator graphs, model builders, importers.

Device-agnostic: a workload says how much work and which bytes, never how long.
"""

from hwmodels.lazy import lazy_exports

# Public name -> submodule defining it, loaded on first use: the CLI's start-up needs only the
# operator registry, not networkx and the model builders.
_EXPORTS = {
    "ModelConfig": "configs", "bundled_ids": "configs", "load_config": "configs", "Graph": "graph",
    "PHASES": "llm", "build_llm": "llm", "expected_tokens": "llm", "load_workload": "loader",
    "OPERATORS": "operators", "Operator": "operators", "make_operator": "operators",
    "register_operator": "operators", "Tensor": "tensors", "StepOptions": "options",
}

__all__ = [
    "OPERATORS", "PHASES", "Graph", "ModelConfig", "Operator", "StepOptions", "Tensor", "build_llm", "bundled_ids",
    "expected_tokens", "load_config", "load_workload", "make_operator", "register_operator",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
