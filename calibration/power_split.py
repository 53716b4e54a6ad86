"""A device's board power split into a running baseline, energy per byte read from device memory
and energy per fp32 FLOP, fitted on public roofline sweeps that log power.

Each sweep point is one kernel at the full clock reading ``bytes_per_s`` from device memory and
doing ``fp32_flop_per_s``; a least-squares fit of

    power_w = active_w + energy_per_byte_j x bytes_per_s + energy_per_flop_j x fp32_flop_per_s

over a device's points (``calibration/data/power_sweeps.csv``, sources in SOURCES.md) gives the
three coefficients. ``python -m calibration.power_split`` prints them with the fit's residuals.
The energy per byte is the catalog's HBM energy per byte (A100 family 118 pJ/B, H100/H200 122
pJ/B, other accelerators' HBM 120 pJ/B); the intercept is not the catalog's active baseline,
which stays the one fitted power parameter (:mod:`calibration.energy_fit`): put there as it is,
it leaves the vLLM power rows 10-27% low (docs/accuracy.md, "The measured split, tried", and
"HBM's energy per byte, measured").
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from dataclasses import asdict, dataclass
from importlib import resources

import numpy as np

TERA = 1e12


@dataclass(frozen=True)
class PowerSplit:
    """The fitted split of one device (SI units) and how well it fits its points."""

    device: str
    points: int
    active_w: float
    energy_per_byte_j: float
    energy_per_flop_j: float
    rms_relative_residual: float
    max_relative_residual: float


def load_sweeps() -> dict[str, list[dict]]:
    """The bundled sweep points, by device."""
    text = resources.files("calibration.data").joinpath("power_sweeps.csv").read_text(encoding="utf-8")
    out: dict[str, list[dict]] = {}
    for row in csv.DictReader(io.StringIO(text)):
        out.setdefault(row["device"], []).append({k: (v if k == "device" else float(v)) for k, v in row.items()})
    return out


def fit_split(device: str, points: list[dict]) -> PowerSplit:
    """Least-squares split of ``points`` (each with bytes_per_s, fp32_flop_per_s, power_w); the
    rates are taken in tera-units so that the three columns are of one scale."""
    bytes_t = np.array([p["bytes_per_s"] for p in points]) / TERA
    flops_t = np.array([p["fp32_flop_per_s"] for p in points]) / TERA
    power = np.array([p["power_w"] for p in points])
    design = np.column_stack([np.ones_like(power), bytes_t, flops_t])
    (active, per_tbyte, per_tflop), *_ = np.linalg.lstsq(design, power, rcond=None)
    residual = (design @ np.array([active, per_tbyte, per_tflop]) - power) / power
    return PowerSplit(device, len(points), float(active), float(per_tbyte / TERA), float(per_tflop / TERA),
                      float(np.sqrt(np.mean(residual**2))), float(np.max(np.abs(residual))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m calibration.power_split", description=__doc__.split("\n\n")[0])
    parser.add_argument("--format", choices=("text", "json"), default="text")
    args = parser.parse_args(argv)
    splits = [fit_split(device, points) for device, points in sorted(load_sweeps().items())]
    if args.format == "json":
        print(json.dumps([asdict(s) for s in splits], indent=1))
        return 0
    for s in splits:
        print(f"{s.device}: active {s.active_w:.1f} W, {s.energy_per_byte_j * 1e12:.1f} pJ per byte read, "
              f"{s.energy_per_flop_j * 1e12:.2f} pJ per fp32 FLOP ({s.points} points; relative residual "
              f"rms {s.rms_relative_residual:.1%}, max {s.max_relative_residual:.1%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
