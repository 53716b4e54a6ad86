"""The scatter of a sweep's points with its Pareto front drawn (``Sweep.plot``, ``ridgeline sweep pareto``).

Points that are not ``ok`` have no figures and are left out; a numeric ``color`` column gets a
colour bar (log-scaled when it spans more than a decade), a text column (``bound``, ``hw``) one
colour per value with a legend. Axes whose values span more than two decades are log-scaled.
"""

from __future__ import annotations

import numpy as np


def _log_worthy(values, ratio: float = 100.0) -> bool:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    return bool(len(values)) and values.min() > 0 and values.max() / values.min() > ratio


def _default_title(frame, ok, x: str, y: str) -> str:
    """What was swept (the job, model and phase when every point shares them) and how many points."""
    shared = [str(frame[c].iloc[0]) for c in ("job", "model", "phase")
              if c in frame.columns and len(frame) and frame[c].nunique() == 1]
    return f"{' '.join(shared) + ': ' if shared else ''}{y} against {x} ({len(ok)} of {len(frame)} points ok)"


def plot_sweep(frame, x: str, y: str, *, color: str | None = None, front=None, ax=None, title: str | None = None):
    """A matplotlib Figure: ``y`` against ``x`` for the ok points, coloured by ``color``, with
    the Pareto-front points joined by a step line."""
    from matplotlib.colors import LogNorm

    from .figures import pyplot

    plt = pyplot()   # Agg in a terminal; Jupyter keeps its inline backend, so the figure shows

    ok = frame[(frame["status"] == "ok") & frame[x].notna() & frame[y].notna()]
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 5))
    else:
        fig = ax.figure
    if color is None:
        ax.scatter(ok[x], ok[y], s=14, color="tab:blue", alpha=0.6, label="points")
    elif ok[color].dtype.kind in "if":
        norm = LogNorm() if _log_worthy(ok[color], 10.0) else None
        sc = ax.scatter(ok[x], ok[y], s=14, c=ok[color], cmap="viridis", norm=norm, alpha=0.8)
        fig.colorbar(sc, ax=ax, label=color)
    else:
        cmap = plt.get_cmap("tab10")
        for i, (value, part) in enumerate(ok.groupby(color, sort=True)):
            ax.scatter(part[x], part[y], s=14, color=cmap(i % 10), alpha=0.8, label=f"{color}={value}")
    if front is not None and len(front):
        f = front.sort_values(x)
        ax.plot(f[x], f[y], color="black", lw=1.2, drawstyle="steps-post", zorder=3)
        ax.scatter(f[x], f[y], s=40, facecolors="none", edgecolors="black", lw=1.2, zorder=4,
                   label=f"Pareto front ({len(front)})")
    for name, setter in ((x, ax.set_xscale), (y, ax.set_yscale)):
        if len(ok) and _log_worthy(ok[name]):
            setter("log")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.grid(True, lw=0.3, alpha=0.5)
    # below the axes, so it never covers a point (a colour bar may take the right side)
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3, frameon=False)
    what = _default_title(frame, ok, x, y)
    ax.set_title(f"{title}\n{what}" if title else what, fontsize=9)
    fig.tight_layout()
    return fig
