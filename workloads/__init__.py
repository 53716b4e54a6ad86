"""Workloads: operators with exact FLOP and byte counts, operator graphs, model builders, importers.

Device-agnostic: a workload says how much work and which bytes, never how long.
"""

from .configs import ModelConfig, bundled_ids, load_config
from .graph import Graph
from .llm import PHASES, build_llm, expected_tokens
from .loader import load_workload
from .operators import OPERATORS, Operator, make_operator, register_operator
from .tensors import Tensor

__all__ = [
    "OPERATORS", "PHASES", "Graph", "ModelConfig", "Operator", "Tensor", "build_llm", "bundled_ids",
    "expected_tokens", "load_config", "load_workload", "make_operator", "register_operator",
]
