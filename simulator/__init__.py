"""Time: the SimPy engine that plays a workload over a system with contention."""
