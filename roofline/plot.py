"""Hierarchical roofline plots (matplotlib): ceilings per engine and dtype, a slope per memory level
and link, operators as points.

Each operator appears once per memory level (and link) it moves bytes at, at x = its arithmetic
intensity there and y = the FLOP/s it achieves, with the marker of that level; the distance of a
point below a level's slope shows how far that level is from limiting it. Marker area is the
operator's share of the workload's time (identical operators, e.g. one projection in every
layer, are one point with their summed share); colour is the bounding resource. Several analyses
(one per device) are drawn side by side on a shared FLOP/s axis.
"""

from __future__ import annotations

import math

from .hardware import device_info

LEVEL_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
BOUND_COLORS = {"compute": "tab:red", "memory": "tab:blue", "link": "tab:green", "latency": "tab:gray"}
_SHADES = {"compute": ("tab:red", "tab:orange", "tab:pink", "tab:brown"),
           "memory": ("tab:blue", "tab:cyan", "tab:purple", "navy", "teal"),
           "link": ("tab:green", "olive", "lime")}


def _bound_color(key: str, seen: dict[str, str]) -> str:
    if key not in seen:
        kind = key.split(":", 1)[0]
        shades = _SHADES.get(kind, (BOUND_COLORS.get(kind, "black"),))
        used = sum(1 for k in seen if k.split(":", 1)[0] == kind)
        seen[key] = shades[used % len(shades)]
    return seen[key]


def _points(analysis):
    """Unique operators (by shared demands) with their summed time share."""
    groups: dict[int, list] = {}
    total = analysis.total_time_s or 1.0
    for op, d, time_s in zip(analysis.ops, analysis._shared, analysis._times):
        entry = groups.setdefault(id(d), [op, d, 0.0, 0])
        entry[2] += time_s / total
        entry[3] += 1
    return list(groups.values())


def plot_rooflines(analyses, *, title: str | None = None, figsize=None, annotate: int = 5):
    """A figure with one hierarchical roofline per analysis (side by side). ``annotate``: label
    that many operators with the largest time share on each panel. Returns the Figure."""
    # matplotlib on first use: it would add ~1 s to every CLI start
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    analyses = list(analyses)
    if not analyses:
        raise ValueError("plot_rooflines needs at least one analysis")
    n = len(analyses)
    fig, axes = plt.subplots(1, n, figsize=figsize or (6.5 * n, 5.2), sharey=True, squeeze=False)
    colors: dict[str, str] = {}
    for ax, analysis in zip(axes[0], analyses):
        _draw(ax, analysis, colors, annotate)
    axes[0][0].set_ylabel("FLOP/s")
    handles = [Line2D([], [], marker="o", linestyle="", color=c, label=k) for k, c in colors.items()]
    if handles:
        fig.legend(handles=handles, title="bound", loc="lower center", ncol=min(len(handles), 6),
                   fontsize="small", frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.08 if handles else 0, 1, 1))
    return fig


def _draw(ax, analysis, colors: dict[str, str], annotate: int) -> None:
    device = analysis.device
    ax.set_xscale("log")
    ax.set_yscale("log")
    points = _points(analysis)
    resource = device_info(device).resource
    levels = [(key, resource[key].bandwidth_bytes_s) for key in analysis.resource_keys()]
    markers = {key: LEVEL_MARKERS[i % len(LEVEL_MARKERS)] for i, (key, _) in enumerate(levels)}

    xs = [d.flops / d.work[key] for _, d, _, _ in points for key, _ in levels
          if d.work.get(key, 0) > 0 and d.flops > 0]
    # one ceiling per engine and peak, naming every dtype that runs at it (bf16/fp16)
    ceilings: dict[tuple[str, float], list[str]] = {}
    for en, e in device.engines.items():
        for dt, p in e.peak_flops.items():
            ceilings.setdefault((en, p), []).append(dt)
    peaks = sorted(((f"{en}:{'/'.join(dts)}", p) for (en, p), dts in ceilings.items()), key=lambda kv: -kv[1])
    top = peaks[0][1] if peaks else 1.0
    slowest_bw = min((bw for _, bw in levels), default=1.0)
    x_lo = min([*xs, 0.01])
    x_hi = max([*xs, top / slowest_bw * 4.0, 1e4])
    x_lo, x_hi = 10 ** math.floor(math.log10(x_lo)), 10 ** math.ceil(math.log10(x_hi))

    for label, peak in peaks:
        ax.plot([x_lo, x_hi], [peak, peak], color="0.35", lw=0.8)
        ax.text(x_hi, peak, f" {label}", va="center", ha="left", fontsize=6, color="0.25", clip_on=False)
    for key, bw in levels:
        ridge = top / bw
        ax.plot([x_lo, ridge], [bw * x_lo, top], lw=0.9, ls="--", color="0.5")
        x_text = max(x_lo * 3, ridge / 30)
        ax.text(x_text, bw * x_text * 1.15, key.split(":", 1)[1], fontsize=6, color="0.3",
                rotation=30, rotation_mode="anchor")

    plotted = []
    for op, d, share, count in points:
        if d.flops <= 0 or d.time_s <= 0:
            continue
        y = d.flops / d.time_s
        color = _bound_color(d.bound, colors)
        size = 15 + 400 * share
        for key, _ in levels:
            nbytes = d.work.get(key, 0.0)
            if nbytes > 0:
                ax.scatter([d.flops / nbytes], [y], s=size, marker=markers[key], color=color,
                           alpha=0.7, edgecolors="black", linewidths=0.3)
        plotted.append((share, op, count, d))
    for _share, op, count, d in sorted(plotted, key=lambda p: -p[0])[:annotate]:
        main = f"memory:{device.main_memory}"
        nbytes = d.work.get(main) or max((v for k, v in d.work.items() if not k.startswith("compute")),
                                         default=0.0)
        if nbytes:
            label = f"{op.kind}" + (f" x{count}" if count > 1 else "")
            ax.annotate(label, (d.flops / nbytes, d.flops / d.time_s), fontsize=6,
                        xytext=(4, -8), textcoords="offset points")
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(bottom=max(1e6, min([top * 1e-6, *[d.flops / d.time_s for _, _, _, d in plotted]]) / 3),
                top=top * 2.5)
    ax.set_xlabel("arithmetic intensity (FLOP/byte at each level)")
    ax.set_title(f"{device.name}\n{analysis.name} (markers: " +
                 ", ".join(f"{markers[k]} {k.split(':', 1)[1]}" for k, _ in levels) + ")", fontsize=8)
    ax.grid(True, which="major", lw=0.3, alpha=0.5)
