"""The pictures of a result, drawn from plain data (a result object's fields or its JSON), so the
same figure comes out of ``result.plot()``, ``--plot FILE`` and an HTML report made from a JSON file.

Every figure says what was run in its title, labels its axes with units and keeps its legend off
the data. Matplotlib's Agg backend is used when no other backend was chosen (no display needed).
"""

from __future__ import annotations

import io
import sys

BOUND_COLOURS = {"compute": "tab:blue", "memory": "tab:orange", "link": "tab:green", "latency": "tab:gray"}


def pyplot():
    import matplotlib

    if "ipykernel" not in sys.modules:  # Jupyter keeps its inline backend: figures show in cells
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png_bytes(fig, dpi: int = 110) -> bytes:
    """The figure as PNG bytes (closed afterwards: a report draws many)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    pyplot().close(fig)
    return buf.getvalue()


def _records(timeline) -> list[dict]:
    if hasattr(timeline, "to_dict"):
        return timeline.to_dict(orient="records")
    return list(timeline or [])


def _short(op: str) -> str:
    """``model.layers.3.mlp.up_proj`` -> ``L3 up_proj``: fits inside a bar."""
    parts = op.split(".")
    layer = next((parts[i + 1] for i, p in enumerate(parts[:-1]) if p == "layers"), None)
    return (f"L{layer} " if layer is not None else "") + parts[-1]


def _layer_window(rows: list[dict], lanes: list[tuple[str, str]]) -> tuple[float, float, int] | None:
    """(start, end, layer) of one transformer layer on the first device, for a zoomed panel in
    which operator names fit; None when the ops have no ``layers.N`` in their names."""
    device = lanes[0][0] if lanes else None
    layers: dict[int, list[dict]] = {}
    for r in rows:
        parts = r["op"].split(".")
        if r["device"] == device and "layers" in parts[:-1]:
            index = parts[parts.index("layers") + 1]
            if index.isdigit():
                layers.setdefault(int(index), []).append(r)
    if len(layers) < 2:
        return None
    layer = sorted(layers)[1]
    return min(r["start"] for r in layers[layer]), max(r["end"] for r in layers[layer]), layer


def _draw_lanes(ax, rows: list[dict], lane_y: dict, t0: float, t1: float, name_of=_short) -> set[str]:
    """Bars (ms) of ``rows`` within [t0, t1] s on their lanes, with names in bars wide enough to
    hold them; returns the bound classes drawn."""
    span_ms = (t1 - t0) * 1e3 or 1.0
    bars: dict[tuple[int, str], list[tuple[float, float]]] = {}
    for r in rows:
        y = lane_y.get((r["device"], r["stream"]))
        if y is None or r["end"] < t0 or r["start"] > t1:
            continue
        start, width = r["start"] * 1e3, max((r["end"] - r["start"]) * 1e3, span_ms * 1e-4)
        bars.setdefault((y, r["bound"]), []).append((start, width))
        name = name_of(r["op"])
        if width > span_ms * 0.0075 * max(len(name), 3):
            ax.text(start + width / 2, y, name, ha="center", va="center", fontsize=7, color="white",
                    clip_on=True)
    for (y, bound), spans in sorted(bars.items()):
        ax.broken_barh(spans, (y - 0.4, 0.8), facecolors=BOUND_COLOURS.get(bound, "tab:purple"),
                       edgecolor="white", linewidth=0.3, zorder=1)
    ax.set_yticks(range(len(lane_y)), [f"{d} {s}" for d, s in lane_y])
    ax.set_ylim(len(lane_y) - 0.5, -0.5)
    ax.set_xlim(t0 * 1e3, t1 * 1e3)
    ax.set_xlabel("time (ms)")
    return {b for _, b in bars}


def timeline_figure(timeline, *, title: str, max_lanes: int = 24, ax=None):
    """A Gantt chart: one row per device stream (``gpu0 compute``), operators coloured by what
    bound them and named inside the bars wide enough to hold a name. Below the whole step, one
    transformer layer on the first device is zoomed so its operators can be read. ``timeline``:
    a DataFrame or records with op, device, stream, bound, start, end (seconds)."""
    plt = pyplot()
    rows = _records(timeline)
    lanes = sorted({(r["device"], r["stream"]) for r in rows})
    hidden = max(0, len(lanes) - max_lanes)
    lanes = lanes[:max_lanes]
    end = max((r["end"] for r in rows), default=0.0) or 1e-3
    zoom = _layer_window(rows, lanes) if ax is None else None
    zoom_lanes = [lane for lane in lanes if lane[0] == lanes[0][0]] if zoom else []
    if ax is None:
        heights = [max(len(lanes), 1)] + ([len(zoom_lanes) + 1] if zoom else [])
        fig, axes = plt.subplots(len(heights), 1, figsize=(11, 1.9 + 0.36 * sum(heights) + (0.9 if zoom else 0)),
                                 gridspec_kw={"height_ratios": heights}, squeeze=False)
        ax = axes[0][0]
    else:
        fig = ax.figure
    bounds = _draw_lanes(ax, rows, {lane: i for i, lane in enumerate(lanes)}, 0.0, end)
    ax.set_title(title + (f" ({hidden} more lanes not shown)" if hidden else ""), fontsize=10)
    if zoom:
        t0, t1, layer = zoom
        ax.axvspan(t0 * 1e3, t1 * 1e3, color="gold", alpha=0.35, zorder=0)
        zax = axes[1][0]
        bounds |= _draw_lanes(zax, rows, {lane: i for i, lane in enumerate(zoom_lanes)}, t0, t1,
                              name_of=lambda op: op.rsplit(".", 1)[-1])
        zax.set_title(f"zoom: layer {layer} on {zoom_lanes[0][0]} (shaded above)", fontsize=9)
    present = [b for b in BOUND_COLOURS if b in bounds] + sorted(bounds - set(BOUND_COLOURS))
    handles = [plt.Rectangle((0, 0), 1, 1, color=BOUND_COLOURS.get(b, "tab:purple")) for b in present]
    ax.legend(handles, [f"{b}-bound" for b in present], loc="upper left", bbox_to_anchor=(1.005, 1.0),
              fontsize="small", frameon=False, title="limited by")
    fig.tight_layout()
    return fig


def power_figure(avg_power_w: dict, tdp_w: dict, *, title: str, max_devices: int = 16):
    """Average power per device against its TDP (a bar per device, the TDP as a tick mark)."""
    plt = pyplot()
    devices = list(avg_power_w)[:max_devices]
    fig, ax = plt.subplots(figsize=(max(5.0, 0.55 * len(devices) + 3.5), 3.6))
    colours = ["tab:red" if avg_power_w[d] > tdp_w.get(d, float("inf")) > 0 else "tab:blue" for d in devices]
    ax.bar(devices, [avg_power_w[d] for d in devices], color=colours, width=0.6, label="average power")
    ax.scatter(devices, [tdp_w.get(d, 0.0) for d in devices], marker="_", s=900, color="black", zorder=3,
               label="TDP")
    ax.set_ylabel("power (W)")
    ax.set_ylim(0, max([*avg_power_w.values(), *tdp_w.values(), 1.0]) * 1.15)
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    ax.tick_params(axis="x", labelrotation=45 if len(devices) > 6 else 0)
    fig.tight_layout()
    return fig


def sensitivity_figure(sensitivity: dict, latency_s: float, *, title: str):
    """Latency now and with each top resource 2x faster (horizontal bars, ms)."""
    plt = pyplot()
    names = ["as simulated", *[f"{k} 2x" for k in sensitivity]]
    values = [latency_s * 1e3, *[v["latency_s"] * 1e3 for v in sensitivity.values()]]
    fig, ax = plt.subplots(figsize=(7.5, 1.2 + 0.45 * len(names)))
    ax.barh(names, values, color=["0.5", *["tab:green"] * len(sensitivity)], height=0.6)
    for y, (v, s) in enumerate(zip(values, [None, *sensitivity.values()])):
        ax.text(v, y, f" {v:.4g} ms" + (f" ({s['change']:+.1%})" if s else ""), va="center", fontsize=8)
    ax.set_xlim(0, max(values) * 1.35 if values else 1)
    ax.invert_yaxis()
    ax.set_xlabel("latency (ms)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def validation_figure(sections: list[tuple[str, list[dict]]], *, title: str, band: float = 0.15):
    """Predicted against measured, log-log, one panel per ``(title, rows)`` with predictions;
    the diagonal is a perfect prediction, the shaded band +-``band``. Rows: measured, predicted,
    family."""
    plt = pyplot()
    panels = [(t, [r for r in rows if r.get("predicted") and r.get("measured")]) for t, rows in sections]
    panels = [p for p in panels if p[1]] or [("no predictions", [])]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.8), squeeze=False)
    for ax, (panel_title, rows) in zip(axes[0], panels):
        if rows:
            xs = [r["measured"] for r in rows]
            ys = [r["predicted"] for r in rows]
            families = sorted({str(r.get("family", "")) for r in rows})
            for fam in families:
                sel = [(r["measured"], r["predicted"]) for r in rows if str(r.get("family", "")) == fam]
                ax.scatter(*zip(*sel), s=18, label=fam, zorder=3)
            lo, hi = min(xs + ys) / 1.5, max(xs + ys) * 1.5
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, zorder=2)
            ax.fill_between([lo, hi], [lo / (1 + band), hi / (1 + band)], [lo * (1 + band), hi * (1 + band)],
                            color="0.9", lw=0, zorder=1)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlim(lo, hi)
            ax.set_ylim(lo, hi)
            if len(families) <= 12:
                ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        ax.set_title(panel_title, fontsize=10)
        ax.set_xlabel("measured (row units)")
        ax.set_ylabel("predicted (row units)")
    fig.suptitle(f"{title} (band: +-{band:.0%})", fontsize=10)
    fig.tight_layout()
    return fig
