"""The one cost model: operator x device -> demands per resource; rooflines and bounds.

* :func:`cost` (``op, device -> Demands``) with a registry of cost functions per operator kind
  (:func:`register_cost`); :class:`Demands` is what the simulator plays over time.
* :func:`cost_matmul_batch`: the same GEMM cost, vectorized over shapes (numpy).
* :func:`analyze` (``graph, device -> Analysis``): per-operator table, bound summary, plots.
* :mod:`roofline.collectives`: collective algorithms (a registry: ring, tree, in-switch) as
  link-transfer steps and peers; :func:`~roofline.collectives.plan_collective` chooses and describes
  a collective for the cost model and the simulator alike.
* :mod:`roofline.efficiency`: every efficiency assumption, in one place.
"""

from . import collectives
from .analysis import Analysis, analyze, ridge_points
from .batch import BatchDemands, cost_matmul_batch
from .costs import COSTS, cost, op_signature, register_cost
from .demands import LATENCY_BOUND, Demands
from .plot import plot_rooflines

__all__ = [
    "COSTS", "LATENCY_BOUND", "Analysis", "BatchDemands", "Demands", "analyze", "collectives", "cost",
    "cost_matmul_batch", "op_signature", "plot_rooflines",
    "register_cost", "ridge_points",
]
