"""The one door from a result object to ``reports/``: what ``SimResult.plot()``, ``.trace()``,
``.write_trace()`` and the ``_repr_html_`` of results and analyses call (issue 11: a result's
``.plot()`` stays as a thin call into reports/). The layers below import this module only, and
only inside those methods; everything that draws or writes stays here in ``reports/``.
"""

from __future__ import annotations

from pathlib import Path


def gantt(result, *, max_lanes: int = 24, ax=None):
    """The Gantt chart of a :class:`simulator.result.SimResult` (see :func:`reports.figures.timeline_figure`)."""
    from .figures import timeline_figure

    return timeline_figure(result.timeline, title=result.title(), max_lanes=max_lanes, ax=ax)


def perfetto(result) -> dict:
    """The Chrome/Perfetto trace events of a simulation (see :mod:`reports.trace`)."""
    from .trace import perfetto_trace

    return perfetto_trace(result)


def write_perfetto(result, path: str | Path) -> Path:
    from .trace import write_trace

    return write_trace(result, path)


def summary_html(obj) -> str:
    """The short HTML Jupyter shows for an analysis or a simulation result."""
    from .notebook import analysis_html, simulation_html

    return analysis_html(obj) if hasattr(obj, "plot_data") else simulation_html(obj)


def serving_plot(result, interval_s: float = 1.0):
    """The figure of a :class:`simulator.serving.result.ServeResult` (see :mod:`reports.serving_figures`)."""
    from .serving_figures import plot_serving

    return plot_serving(result, interval_s)


def serving_perfetto(result) -> dict:
    from .serving_trace import serving_trace

    return serving_trace(result)


def write_serving_perfetto(result, path: str | Path) -> Path:
    from .serving_trace import write_serving_trace

    return write_serving_trace(result, path)
