"""Fitting the one free parameter of the energy model: the active-baseline power fraction.

A device executing work draws ``active = static + f x (tdp - static)`` plus dynamic energy per
FLOP and per byte (see :mod:`hwmodels.defaults`). The per-byte energies are physically sourced
and fixed; the per-FLOP energies follow the TDP rule ``(tdp - active) / (peak x efficiency)``
(a large GEMM at the default matrix efficiency runs at TDP), so they move with ``f`` too. The
predicted energy of a simulation is therefore *linear* in ``f``:

    E(f) = static x T + f x (tdp - static) x busy + bytes x e_byte + (1 - f) x (tdp - static) x S,

with S = sum over dtypes of FLOPs / (peak x efficiency). Below the power cap a run's duration does
not depend on ``f``, so its mean power E(f) / T is linear in ``f`` too. The fraction is a power
parameter, so it is fitted to measured mean power (fitting it to energy per token would also
absorb the time model's error on those rows): :func:`fit_fraction` takes every public row of
role ``fit`` that states one (:func:`measured_power_w`: the ``mean_power`` rows and the ML.ENERGY
row whose framework column states it), evaluates each at f = 0 and f = 1/2, and solves the least
squares of their relative errors in closed form (checked by evaluating again). :func:`report`
gives the energy and power errors on those rows and on every held-out row with a measured power
(and TPU v4's measured mean power). Run ``python -m calibration.energy_fit`` to reproduce the value
in ``hwmodels.defaults.ACTIVE_POWER_FRACTION``.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

import hwmodels
from hwmodels.defaults import NON_MATRIX_FLOP_ENERGY_RATIO, flop_energy_at_tdp_j
from hwmodels.jsonable import dumps_json
from simulator.public import predict_public_row, serve_row, served, static_batch_power_w
from simulator.simulate import simulate
from workloads.llm import build_llm

from . import public

# The second fraction the linear fit evaluates (the first is 0); see fit_fraction.
LINEAR_PROBE = 0.5
# The mean power an ML.ENERGY row states in its "framework" column ("mean power 486.4 W": Zeus GPU
# energy over the steady state / its time).
STATED_MEAN_POWER = re.compile(r"\bmean power (\d+(?:\.\d+)?) W\b")
# Google Cloud TPU v4 docs (shared/data/hardware_specs.md): measured power min/mean/max 90/170/192 W.
TPU_V4_MEAN_POWER_W = 170.0
# The held-out TPU v4 workload: one chat turn of Llama-3.1-8B (bf16) served at batch 8, 70 tokens
# in (LMSYS-Chat-1M's mean prompt of a turn) and 388.7 out (the ML.ENERGY rows' mean output): one prefill step,
# then the decode steps at the mean context. Chosen before looking at the result.
TPU_WORKLOAD = {"model": "llama-3.1-8b", "batch": 8, "prompt_len": 70, "output_len": 388.7}


def rule_power(device, fraction: float) -> dict:
    """The YAML ``power`` overrides of ``device`` at active fraction ``fraction``: the active
    baseline and, for every dtype a matrix engine runs, the TDP-rule energy per FLOP (on the
    matrix engine with the highest peak for that dtype, at its efficiency); dtypes only vector
    or scalar engines run get the bf16 value times ``NON_MATRIX_FLOP_ENERGY_RATIO``. A device
    with an ``energy_basis`` (a lower-power card of a chip) takes that part's energy per FLOP:
    the same silicon spends the same energy on a FLOP whatever the card's power limit."""
    p = device.power
    active = p.static_w + fraction * (p.tdp_w - p.static_w)
    if p.energy_basis:
        basis = rule_power(hwmodels.load_device(p.energy_basis), fraction)
        return {"active": f"{active!r} W", "energy_per_flop": basis["energy_per_flop"]}
    best: dict[str, tuple[float, float]] = {}
    others: set[str] = set()
    for engine in device.engines.values():
        for dtype, peak in engine.peak_flops.items():
            if engine.kind != "matrix":
                others.add(dtype)
            elif peak > best.get(dtype, (0.0, 0.0))[0]:
                best[dtype] = (peak, engine.efficiency)
    energy = {d: flop_energy_at_tdp_j(p.tdp_w, active, peak, eff) for d, (peak, eff) in best.items()}
    for dtype in sorted(others - set(best)):
        energy[dtype] = NON_MATRIX_FLOP_ENERGY_RATIO[dtype] * energy["bf16"]
    return {"active": f"{active!r} W", "energy_per_flop": {d: f"{e * 1e12!r} pJ/FLOP" for d, e in energy.items()}}


def _rule_hardware(ref: str, fraction: float, folder: Path) -> str:
    """Path of an overlay of catalog device ``ref`` with the rule's power section."""
    device = hwmodels.load_device(ref)
    path = folder / f"{ref}-f{fraction!r}.yaml"
    path.write_text(yaml.safe_dump({"extends": ref, "id": f"{ref}-energy-fit",
                                    "power": rule_power(device, fraction)}))
    return str(path)


def load_rows() -> dict[str, dict]:
    """The bundled public measurements (:func:`calibration.public.load_rows`) by row id."""
    return {r["id"]: r for r in public.load_rows()}


@dataclass
class RowEnergy:
    """Predicted energy per output token (J; None for a row that is not a served run) and mean
    power (W) of one public row."""

    energy_per_token_j: float | None
    avg_power_w: float


def measured_power_w(row: dict) -> float | None:
    """The mean power (W) a public row measured: a ``mean_power`` row's value, or the power its
    ``framework`` column states (:data:`STATED_MEAN_POWER`, the ML.ENERGY rows); None for the others."""
    if row.get("metric") == "mean_power":
        return float(row["value"])
    stated = STATED_MEAN_POWER.search(row.get("framework") or "")
    return float(stated.group(1)) if stated else None


def predict_row(row: dict, fraction: float, folder: Path) -> RowEnergy:
    """The row's energy per output token and mean power with the rule's power section at
    ``fraction``, predicted as ``ridgeline validate --public`` predicts the row (a served row: its
    serving run's steady state; a ``mean_power`` row: its static batch)."""
    rule = {**row, "hardware": _rule_hardware(row["hardware"], fraction, folder)}
    if served(rule):
        run = serve_row(rule)
        return RowEnergy(run["j_per_output_token"], run["avg_power_w"])
    return RowEnergy(None, predict_public_row(rule))


def fit_rows(rows: dict[str, dict]) -> list[dict]:
    """The rows the fraction is fitted on: role ``fit`` with a measured mean power."""
    return [r for r in rows.values() if r.get("role") == "fit" and measured_power_w(r) is not None]


def fit_fraction(rows: list[dict], folder: Path) -> float:
    """The active fraction that minimises the squared relative errors of ``rows``' predicted mean
    power (each linear in the fraction below the power cap: p_i(f) = a_i + b_i f, so with
    c_i = b_i / m_i and d_i = 1 - a_i / m_i the minimum is sum(c_i d_i) / sum(c_i^2)); checked."""
    lines = []
    for row in rows:
        p0 = predict_row(row, 0.0, folder).avg_power_w
        slope = (predict_row(row, LINEAR_PROBE, folder).avg_power_w - p0) / LINEAR_PROBE
        if slope == 0:
            raise ValueError(f"row {row['id']}: the prediction does not depend on the active fraction")
        lines.append((row, p0, slope, measured_power_w(row)))
    fraction = (sum(b / m * (1 - a / m) for _, a, b, m in lines) / sum((b / m) ** 2 for _, a, b, m in lines))
    for row, a, b, _ in lines:
        check = predict_row(row, fraction, folder).avg_power_w
        # a step at the power cap (a long prompt of a large batch) bends the line a little
        if abs(check - (a + b * fraction)) > 1e-3 * check:
            raise ArithmeticError(f"row {row['id']}: mean power is not linear in the active fraction "
                                  f"({check} != {a + b * fraction})")
    return fraction


def tpu_v4_power_w(fraction: float, folder: Path) -> dict[str, float]:
    """Average power (W) of :data:`TPU_WORKLOAD` on a TPU v4 at ``fraction``: prefill alone,
    decode alone, and the whole chat turn (total energy over total time)."""
    hw = _rule_hardware("tpu-v4", fraction, folder)
    w = TPU_WORKLOAD
    prefill = simulate(build_llm(w["model"], "prefill", batch=w["batch"], prompt_len=w["prompt_len"]), hw)
    decode = simulate(build_llm(w["model"], "decode", batch=w["batch"], prompt_len=w["prompt_len"],
                                context=round(w["prompt_len"] + w["output_len"] / 2)), hw)
    return {"prefill": prefill.energy_j / prefill.latency_s, "decode": decode.energy_j / decode.latency_s,
            "chat_turn": static_batch_power_w(prefill, decode, w["output_len"])}


def report(fraction: float | None = None, digits: int = 2) -> dict:
    """Fit the fraction on :func:`fit_rows` (or take ``fraction``), round it to ``digits``, and
    evaluate every public row with a measured power (fit and held-out) and TPU v4 with the
    rounded value."""
    rows = load_rows()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        fitting = fit_rows(rows)
        fitted = fit_fraction(fitting, folder) if fraction is None else fraction
        used = round(fitted, digits)
        out = {"fit_rows": [r["id"] for r in fitting], "fitted_fraction": fitted, "fraction": used, "rows": {}}
        for row in (r for r in rows.values() if measured_power_w(r) is not None):
            pred = predict_row(row, used, folder)
            power = measured_power_w(row)
            entry = {"role": row.get("role") or "held-out", "measured_power_w": power,
                     "predicted_power_w": pred.avg_power_w, "power_error": pred.avg_power_w / power - 1.0}
            if pred.energy_per_token_j is not None:
                measured = float(row["value"])
                entry.update({"measured_j_per_tok": measured, "predicted_j_per_tok": pred.energy_per_token_j,
                              "error": pred.energy_per_token_j / measured - 1.0})
            out["rows"][row["id"]] = entry
        tpu = tpu_v4_power_w(used, folder)
        out["tpu_v4"] = {"workload": TPU_WORKLOAD, "measured_mean_power_w": TPU_V4_MEAN_POWER_W,
                         "predicted_power_w": tpu, "error": tpu["chat_turn"] / TPU_V4_MEAN_POWER_W - 1.0}
    return out


def catalog_table(fraction: float, refs: tuple[str, ...]) -> dict[str, dict]:
    """The rule's power section for each catalog device in ``refs`` (to write into the YAML)."""
    return {ref: rule_power(hwmodels.load_device(ref), fraction) for ref in refs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m calibration.energy_fit", description=__doc__.split("\n")[0])
    parser.add_argument("--fraction", type=float, help="evaluate this fraction instead of fitting one")
    parser.add_argument("--catalog", nargs="*", metavar="ID", help="also print the rule's power section "
                        "for these catalog devices at the fraction used")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    args = parser.parse_args(argv)
    out = report(args.fraction)
    if args.catalog:
        out["catalog"] = catalog_table(out["fraction"], tuple(args.catalog))
    if args.format == "json":
        print(dumps_json(out))
        return 0
    print(f"active fraction fitted on the mean power of {len(out['fit_rows'])} fit rows: "
          f"{out['fitted_fraction']:.4f} (used: {out['fraction']})")
    for rid, r in sorted(out["rows"].items(), key=lambda item: item[1]["role"]):
        energy = (f"; {r['measured_j_per_tok']:.4g} J/tok measured, {r['predicted_j_per_tok']:.4g} predicted "
                  f"({r['error']:+.1%})" if "error" in r else "")
        print(f"  {rid} ({r['role']}): mean power measured {r['measured_power_w']:.1f} W, predicted "
              f"{r['predicted_power_w']:.0f} W ({r['power_error']:+.1%}){energy}")
    t = out["tpu_v4"]
    p = t["predicted_power_w"]
    print(f"  tpu-v4 (held-out) {t['workload']['model']} chat turn at batch {t['workload']['batch']}: measured "
          f"fleet mean {t['measured_mean_power_w']:.0f} W, predicted {p['chat_turn']:.0f} W ({t['error']:+.1%}); "
          f"prefill {p['prefill']:.0f} W, decode {p['decode']:.0f} W")
    for ref, power in out.get("catalog", {}).items():
        print(f"  {ref}: active {float(power['active'].split()[0]):.1f} W; energy per FLOP "
              + ", ".join(f"{d} {float(v.split()[0]):.4g}" for d, v in power["energy_per_flop"].items())
              + " pJ/FLOP")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
