"""Workloads: operators with exact FLOP and byte counts, operator graphs, model builders, importers.

Device-agnostic: a workload says how much work and which bytes, never how long.
"""

from importlib import import_module

# Public name -> submodule defining it, loaded on first use: the CLI's start-up needs only the
# operator registry, not networkx and the model builders.
_EXPORTS = {
    "ModelConfig": "configs", "bundled_ids": "configs", "load_config": "configs", "Graph": "graph",
    "PHASES": "llm", "build_llm": "llm", "expected_tokens": "llm", "load_workload": "loader",
    "OPERATORS": "operators", "Operator": "operators", "make_operator": "operators",
    "register_operator": "operators", "Tensor": "tensors",
}

__all__ = [
    "OPERATORS", "PHASES", "Graph", "ModelConfig", "Operator", "Tensor", "build_llm", "bundled_ids",
    "expected_tokens", "load_config", "load_workload", "make_operator", "register_operator",
]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'workloads' has no attribute '{name}'")
    value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
