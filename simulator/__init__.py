"""Time: the SimPy engine that plays a workload over a system with contention.

``simulate(graph, hardware)`` places a (partitioned) operator graph on a device or a system,
takes every operator's demands from the cost model (``roofline.cost``) and plays them over
shared resources with :class:`~simulator.engine.FluidEngine`; the :class:`SimResult` carries
latency, throughput, energy, utilisation, the timeline, the critical path, the bottleneck,
what-if sensitivity and a Perfetto trace.
"""

from .engine import EngineResult, FluidEngine
from .result import SimResult
from .simulate import Plan, simulate

__all__ = ["EngineResult", "FluidEngine", "Plan", "SimResult", "simulate"]
