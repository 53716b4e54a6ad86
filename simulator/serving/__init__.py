"""Serving simulation: requests over time on replicas, with schedulers, paged KV blocks,
preemption, and the metrics vLLM's benchmark reports (see docs/serving.md).

    from simulator.serving import serve
    res = serve("llama-3.1-8b", "h100-sxm", requests="azure-conv", num_requests=1000)
    res.metrics["ttft_s"]["p99"], res.to_frame(), res.timeseries(), res.plot()

    from calibration.intervals import attach_serve_intervals   # 80% intervals of the figures
    attach_serve_intervals(res).metrics_frame()   # value, lo, hi, basis per figure
"""

from .requests import BUNDLED, Request, load_trace, make_requests
from .router import ROUTERS
from .schedulers import SCHEDULERS, Batch, SchedulerConfig
from .serve import serve
from .steptime import StepCost, StepTimeModel

__all__ = ["BUNDLED", "ROUTERS", "SCHEDULERS", "Batch", "Request", "SchedulerConfig", "StepCost",
           "StepTimeModel", "load_trace", "make_requests", "serve"]
