"""Writing a validation report to a folder: JSON, CSV, the text tables, and a log-log plot of
predicted against measured (matplotlib's Agg backend, so it works without a display)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .store import atomic_write, atomic_write_text

SECTIONS = (("kernels", "1) held-out kernels (s)"), ("end_to_end", "2) end to end (s)"),
            ("public", "3) public measurements (row units)"))


def plot_predicted_vs_measured(report, path: Path) -> Path:
    """One log-log panel per section that has rows with a prediction; the diagonal is y = x."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(key, title, [r for r in getattr(report, key) if r["predicted"] and r["measured"]])
              for key, title in SECTIONS]
    panels = [p for p in panels if p[2]] or [("none", "no predictions", [])]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.6), squeeze=False)
    for ax, (_key, title, rows) in zip(axes[0], panels):
        if rows:
            xs = [r["measured"] for r in rows]
            ys = [r["predicted"] for r in rows]
            families = sorted({r["family"] for r in rows})
            for fam in families:
                sel = [(x, y) for x, y, r in zip(xs, ys, rows) if r["family"] == fam]
                ax.scatter(*zip(*sel), s=18, label=fam, zorder=3)
            lo, hi = min(xs + ys) / 1.5, max(xs + ys) * 1.5
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, zorder=2)
            ax.fill_between([lo, hi], [lo / 1.15, hi / 1.15], [lo * 1.15, hi * 1.15], color="0.9", lw=0, zorder=1)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlim(lo, hi)
            ax.set_ylim(lo, hi)
            if len(families) <= 12:
                ax.legend(fontsize=6, loc="upper left")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("measured")
        ax.set_ylabel("predicted")
    fig.suptitle(f"ridgeline validate: {report.hw} (band: +-15%)", fontsize=10)
    fig.tight_layout()
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    finally:
        plt.close(fig)


def write_validation(report, out_dir: Path, text: str, doc: dict | None = None) -> list[Path]:
    """validation.json (``doc``, by default the report's dict), validation.csv, validation.md and
    validation.png in ``out_dir``."""
    from reports.output import to_jsonable

    out_dir.mkdir(parents=True, exist_ok=True)
    doc = json.dumps(to_jsonable(doc or report.to_dict()), indent=2, allow_nan=False) + "\n"
    paths = [atomic_write_text(out_dir / "validation.json", doc)]
    frame = pd.DataFrame(report.rows())
    paths.append(atomic_write(out_dir / "validation.csv", lambda tmp: frame.to_csv(tmp, index=False)))
    paths.append(atomic_write_text(out_dir / "validation.md", "```\n" + text + "\n```\n"))
    paths.append(plot_predicted_vs_measured(report, out_dir / "validation.png"))
    return paths
