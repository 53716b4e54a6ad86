"""Hierarchical roofline plots (matplotlib): ceilings per engine and dtype, a slope per memory level
and link, operators as points.

Each operator appears once per memory level (and link) it moves bytes at, at x = its arithmetic
intensity there and y = the FLOP/s it achieves, with the marker of that level; the distance of a
point below a level's slope shows how far that level is from limiting it. Marker area is the
operator's share of the workload's time (identical operators, e.g. one projection in every
layer, are one point with their summed share); colour is the bounding resource. Several analyses
(one per device) are drawn side by side on a shared FLOP/s axis.

The plot is drawn from :meth:`roofline.analysis.Analysis.plot_data` (plain data), so a report can
draw it again from a result's JSON.
"""

from __future__ import annotations

import math

LEVEL_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
BOUND_COLORS = {"compute": "tab:red", "memory": "tab:blue", "link": "tab:green", "latency": "tab:gray"}
_SHADES = {"compute": ("tab:red", "tab:orange", "tab:pink", "tab:brown"),
           "memory": ("tab:blue", "tab:cyan", "tab:purple", "navy", "teal"),
           "link": ("tab:green", "olive", "lime")}
# Roof labels closer than this ratio would print on top of each other: they are stacked instead.
_CLOSE = 1.35


def run_label(meta: dict, name: str = "") -> str:
    """What was run, in one line: ``llama-2-7b decode, batch 8, context 1024, bf16, tp 2``."""
    meta = meta or {}
    head = " ".join(str(v) for v in (meta.get("model") or name, meta.get("phase")) if v)
    parts = [head] if head else []
    if meta.get("batch") is not None:
        parts.append(f"batch {meta['batch']}")
    if meta.get("phase") == "prefill" and meta.get("prompt_len") is not None:
        parts.append(f"prompt {meta['prompt_len']}")
    elif meta.get("context") is not None:
        parts.append(f"context {meta['context']}")
    if meta.get("dtype"):
        parts.append(str(meta["dtype"]))
    parts += [f"{k} {meta[k]}" for k in ("tp", "pp", "ep", "dp") if (meta.get(k) or 1) > 1]
    return ", ".join(parts)


def _bound_color(key: str, seen: dict[str, str]) -> str:
    if key not in seen:
        kind = key.split(":", 1)[0]
        shades = _SHADES.get(kind, (BOUND_COLORS.get(kind, "black"),))
        used = sum(1 for k in seen if k.split(":", 1)[0] == kind)
        seen[key] = shades[used % len(shades)]
    return seen[key]


def plot_rooflines(analyses, *, title: str | None = None, figsize=None, annotate: int = 5, ncols: int | None = None):
    """A figure with one hierarchical roofline per analysis (side by side, ``ncols`` per row;
    default: all in one row up to 3, else 3 per row): each an
    :class:`~roofline.analysis.Analysis` or its ``plot_data()`` dict. ``annotate``: label that
    many operators with the largest time share on each panel. Returns the Figure."""
    # matplotlib on first use: it would add ~1 s to every CLI start
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    panels = [a.plot_data() if hasattr(a, "plot_data") else a for a in analyses]
    if not panels:
        raise ValueError("plot_rooflines needs at least one analysis")
    n = len(panels)
    cols = max(1, min(ncols or (n if n <= 3 else 3), n))
    grid_rows = math.ceil(n / cols)
    width = 9.5 if cols == 1 else 7.0 * cols
    fig, axes = plt.subplots(grid_rows, cols, figsize=figsize or (width, 5.0 * grid_rows + 0.8), sharey=True,
                             squeeze=False)
    colors: dict[str, str] = {}
    markers: dict[str, str] = {}
    for ax, data in zip(axes.flat, panels):
        _draw(ax, data, colors, markers, annotate)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    for row in axes:
        row[0].set_ylabel("attained FLOP/s")
    handles = [Line2D([], [], marker="o", linestyle="", color=c, label=f"{k}-bound") for k, c in colors.items()]
    handles += [Line2D([], [], marker=m, linestyle="", color="0.4", markerfacecolor="none",
                       label=f"{k.split(':', 1)[1]} intensity") for k, m in markers.items()]
    ncol = 4 if cols == 1 else 6
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), ncol), fontsize="small",
                   frameon=False)
    fig.suptitle(title or f"Roofline: {run_label(panels[0]['meta'], panels[0]['workload'])}", fontsize=12)
    legend_in = (0.25 * math.ceil(len(handles) / ncol) + 0.2) / fig.get_figheight() if handles else 0
    fig.tight_layout(rect=(0, legend_in, 1, 1))
    return fig


def _x_range(data) -> tuple[float, float]:
    xs = [p["flops"] / b for p in data["points"] for b in p["bytes"].values() if p["flops"] > 0 and b > 0]
    top = data["ceilings"][0]["flops_s"] if data["ceilings"] else 1.0
    slowest = min((s["bytes_s"] for s in data["slopes"]), default=1.0)
    lo = min([*xs, 0.01])
    hi = max([*xs, top / slowest * 4.0, 1e4])
    return 10 ** math.floor(math.log10(lo)), 10 ** math.ceil(math.log10(hi))


def _groups(items, value):
    """``items`` (sorted by ``value`` descending) in runs whose values are within ``_CLOSE``."""
    out: list[list] = []
    for item in items:
        if out and value(out[-1][0]) / max(value(item), 1e-300) < _CLOSE:
            out[-1].append(item)
        else:
            out.append([item])
    return out


def _draw_roofs(ax, data, x_lo: float, x_hi: float) -> None:
    """Ceilings (horizontal) and slopes (one per level and link); coinciding or near roofs get
    their labels stacked, so every roof is named."""
    ceilings = data["ceilings"]
    top = ceilings[0]["flops_s"] if ceilings else 1.0
    for c in ceilings:
        ax.plot([x_lo, x_hi], [c["flops_s"], c["flops_s"]], color="0.35", lw=0.8)
    for group in _groups(ceilings, lambda c: c["flops_s"]):
        for i, c in enumerate(group):
            ax.annotate(f" {c['label']}", (x_hi, group[0]["flops_s"]), xytext=(2, -9 * i), fontsize=7,
                        textcoords="offset points", va="center", ha="left", color="0.25", annotation_clip=False)
    slopes = sorted(data["slopes"], key=lambda s: -s["bytes_s"])
    for s in slopes:
        ridge = top / s["bytes_s"]
        ax.plot([x_lo, ridge], [s["bytes_s"] * x_lo, top], lw=0.9, ls="--", color="0.5")
    for group in _groups(slopes, lambda s: s["bytes_s"]):
        bw = group[0]["bytes_s"]
        x_text = max(x_lo * 1.5, top / bw / 300)
        for i, s in enumerate(group):
            ax.annotate(s["key"].split(":", 1)[1], (x_text, bw * x_text), xytext=(0, 4 + 8 * i),
                        textcoords="offset points", fontsize=7, color="0.3", rotation=25,
                        rotation_mode="anchor")


def _draw(ax, data, colors: dict[str, str], markers: dict[str, str], annotate: int) -> None:
    ax.set_xscale("log")
    ax.set_yscale("log")
    x_lo, x_hi = _x_range(data)
    for key in (s["key"] for s in data["slopes"]):
        markers.setdefault(key, LEVEL_MARKERS[len(markers) % len(LEVEL_MARKERS)])
    _draw_roofs(ax, data, x_lo, x_hi)
    placed = []
    # one scatter per (marker, colour): a few collections to draw, not one per point and level
    groups: dict[tuple[str, str], tuple[list, list, list]] = {}
    for p in data["points"]:
        if p["flops"] <= 0 or p["time_s"] <= 0:
            continue
        color = _bound_color(p["bound"], colors)
        for key, nbytes in p["bytes"].items():
            xs, ys, sizes = groups.setdefault((markers.get(key, "o"), color), ([], [], []))
            xs.append(p["flops"] / nbytes)
            ys.append(p["flops"] / p["time_s"])
            sizes.append(15 + 400 * p["share"])
        placed.append(p)
    for (marker, color), (xs, ys, sizes) in groups.items():
        ax.scatter(xs, ys, s=sizes, marker=marker, color=color, alpha=0.7, edgecolors="black", linewidths=0.3,
                   zorder=3)
    top = data["ceilings"][0]["flops_s"] if data["ceilings"] else 1.0
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(bottom=max(1e6, min([top * 1e-6, *[p["flops"] / p["time_s"] for p in placed]]) / 3), top=top * 2.5)
    _label_top(ax, placed[:annotate], data["main_memory"])
    ax.set_xlabel("arithmetic intensity (FLOP/byte, at each memory level and link)")
    ax.set_title(f"{data['device_name']}: {len(placed)} distinct operators, "
                 f"{data['total_time_s'] * 1e3:.4g} ms back to back", fontsize=9)
    ax.grid(True, which="major", lw=0.3, alpha=0.5)


def _label_top(ax, points, main: str) -> None:
    """Label the largest operators (at their main-memory point) from a column of labels in the
    panel's lower right corner, each joined to its point by a leader line: clustered operators
    (a decode step's projections sit on one spot) never print their labels on top of each other."""
    shown = []
    for p in points:
        nbytes = p["bytes"].get(main) or max(p["bytes"].values(), default=0.0)
        if nbytes:
            shown.append((p, (p["flops"] / nbytes, p["flops"] / p["time_s"])))
    # highest point gets the highest label, so leader lines cross as little as possible
    shown.sort(key=lambda item: item[1][1])
    for i, (p, xy) in enumerate(shown):
        label = f"{p['kind']} {p['op'].rsplit('.', 1)[-1]}" + (f" x{p['count']}" if p["count"] > 1 else "")
        ax.annotate(f"{label} ({p['share']:.0%} of time)", xy, xytext=(0.98, 0.04 + 0.065 * i),
                    textcoords="axes fraction", fontsize=7, ha="right", va="bottom",
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "0.7", "alpha": 0.9},
                    arrowprops={"arrowstyle": "-", "color": "0.45", "lw": 0.6, "shrinkB": 3}, zorder=5)
