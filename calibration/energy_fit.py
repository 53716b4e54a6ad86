"""Fitting the one free parameter of the energy model: the active-baseline power fraction.

A device executing work draws ``active = static + f x (tdp - static)`` plus dynamic energy per
FLOP and per byte (see :mod:`hwmodels.defaults`). The per-byte energies are physically sourced
and fixed (an accelerator's HBM: measured on public power sweeps, :mod:`calibration.power_split`);
the per-FLOP energies follow the TDP rule ``(tdp - active) / (peak x efficiency)`` (a large GEMM
at the default matrix efficiency runs at TDP), so they move with ``f`` too. The predicted energy
of a simulation is therefore *linear* in ``f``:

    E(f) = static x T + f x (tdp - static) x busy + bytes x e_byte + (1 - f) x (tdp - static) x S,

with S = sum over dtypes of FLOPs / (peak x efficiency). Below the power cap a run's duration does
not depend on ``f``, so its mean power E(f) / T is linear in ``f`` too. The fraction is a power
parameter, so it is fitted to measured mean power (fitting it to energy per token would also
absorb the time model's error on those rows): :func:`fit_fraction` takes every public row of
role ``fit`` that states one (:func:`measured_power_w`: the ``mean_power`` rows and the ML.ENERGY
row whose framework column states it), evaluates each at f = 0 and f = 1/2, and solves the least
squares of their relative errors in closed form; a row whose step reaches the power cap bends its
line, so the lines are drawn again through the fraction found until it settles (Gauss-Newton).
:func:`report` gives the energy and power errors on those rows and on every held-out row with a
measured power (and TPU v4's measured mean power). Run ``python -m calibration.energy_fit`` to
reproduce the value in ``hwmodels.defaults.ACTIVE_POWER_FRACTION``.

``--second flop|dram`` fits the fraction jointly with one more multiplier (:func:`fit_two`: k on the
TDP rule's energy per FLOP, or s on the DRAM levels' energy per byte), the same least squares on the
same rows, and evaluates every row at both. It is a diagnosis, not the model: neither was adopted
(docs/accuracy.md, "Issue 12: a second energy parameter (tried)").
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

import hwmodels
from hwmodels.defaults import NON_MATRIX_FLOP_ENERGY_RATIO, flop_energy_at_tdp_j
from hwmodels.jsonable import dumps_json
from simulator.public import predict_public_row, serve_row, served, stated_figure, static_batch_power_w
from simulator.simulate import simulate
from workloads.llm import build_llm

from . import public

# The second fraction the linear fit evaluates (the first is 0); see fit_fraction.
LINEAR_PROBE = 0.5
# Gauss-Newton rounds of fit_fraction after the first line: the step of the later lines' probe,
# the change of the fraction that ends them, and their most.
FRACTION_PROBE = 0.01
FRACTION_TOLERANCE = 1e-4
FIT_ROUNDS = 8
# Candidates for a second energy parameter (docs/accuracy.md, "Issue 12: a second energy
# parameter (tried)"), each a multiplier on one dynamic term, fitted jointly with the fraction by
# :func:`fit_two`: ``flop``, k on the TDP rule's energy per FLOP (a large GEMM at the default
# efficiency would draw active + k x (tdp - active)); ``dram``, s on the energy per byte of the
# device's DRAM levels (:data:`DRAM_KINDS`: the traffic's cost beyond the DRAM and its PHY).
SECOND_PARAMETERS = ("flop", "dram")
DRAM_KINDS = ("hbm", "gddr", "ddr", "lpddr")
# The mean power an ML.ENERGY row states in its "framework" column ("mean power 486.4 W": Zeus GPU
# energy over the steady state / its time).
STATED_MEAN_POWER = r"\bmean power (\d+(?:\.\d+)?) W\b"
# Google Cloud TPU v4 docs (shared/data/hardware_specs.md): measured power min/mean/max 90/170/192 W.
TPU_V4_MEAN_POWER_W = 170.0
# The held-out TPU v4 workload: one chat turn of Llama-3.1-8B (bf16) served at batch 8, 70 tokens
# in (LMSYS-Chat-1M's mean prompt of a turn) and 388.7 out (the ML.ENERGY rows' mean output): one prefill step,
# then the decode steps at the mean context. Chosen before looking at the result.
TPU_WORKLOAD = {"model": "llama-3.1-8b", "batch": 8, "prompt_len": 70, "output_len": 388.7}


def rule_power(device, fraction: float, flop_scale: float = 1.0) -> dict:
    """The YAML ``power`` overrides of ``device`` at active fraction ``fraction``: the active
    baseline and, for every dtype a matrix engine runs, the TDP-rule energy per FLOP (on the
    matrix engine with the highest peak for that dtype, at its efficiency) times ``flop_scale``
    (1 in the model; :data:`SECOND_PARAMETERS` ``flop`` tries others); dtypes only vector
    or scalar engines run get the bf16 value times ``NON_MATRIX_FLOP_ENERGY_RATIO``. A device
    with an ``energy_basis`` (a lower-power card of a chip) takes that part's energy per FLOP:
    the same silicon spends the same energy on a FLOP whatever the card's power limit."""
    p = device.power
    active = p.static_w + fraction * (p.tdp_w - p.static_w)
    if p.energy_basis:
        basis = rule_power(hwmodels.load_device(p.energy_basis), fraction, flop_scale)
        return {"active": f"{active!r} W", "energy_per_flop": basis["energy_per_flop"]}
    best: dict[str, tuple[float, float]] = {}
    others: set[str] = set()
    for engine in device.engines.values():
        for dtype, peak in engine.peak_flops.items():
            if engine.kind != "matrix":
                others.add(dtype)
            elif peak > best.get(dtype, (0.0, 0.0))[0]:
                best[dtype] = (peak, engine.efficiency)
    energy = {d: flop_scale * flop_energy_at_tdp_j(p.tdp_w, active, peak, eff) for d, (peak, eff) in best.items()}
    for dtype in sorted(others - set(best)):
        energy[dtype] = NON_MATRIX_FLOP_ENERGY_RATIO[dtype] * energy["bf16"]
    return {"active": f"{active!r} W", "energy_per_flop": {d: f"{e * 1e12!r} pJ/FLOP" for d, e in energy.items()}}


def _rule_hardware(ref: str, fraction: float, folder: Path, flop_scale: float = 1.0, dram_scale: float = 1.0) -> str:
    """Path of an overlay of catalog device ``ref`` with the rule's power section (per-FLOP
    energies times ``flop_scale``) and its DRAM levels' energy per byte times ``dram_scale``."""
    device = hwmodels.load_device(ref)
    doc = {"extends": ref, "id": f"{ref}-energy-fit", "power": rule_power(device, fraction, flop_scale)}
    if dram_scale != 1.0:
        doc["memory"] = {name: {"energy_per_byte": f"{level.energy_j_per_byte * dram_scale * 1e12!r} pJ/B"}
                         for name, level in device.memory.items() if level.kind in DRAM_KINDS}
    path = folder / f"{ref}-f{fraction!r}-x{flop_scale!r}-d{dram_scale!r}.yaml"
    path.write_text(yaml.safe_dump(doc))
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
    stated = stated_figure(row, "framework", STATED_MEAN_POWER)
    return float(stated) if stated else None


def predict_row(row: dict, fraction: float, folder: Path, flop_scale: float = 1.0,
                dram_scale: float = 1.0) -> RowEnergy:
    """The row's energy per output token and mean power with the rule's power section at
    ``fraction`` (and the scales of :func:`_rule_hardware`), predicted as ``ridgeline validate
    --public`` predicts the row (a served row: its serving run's steady state; a ``mean_power``
    row: its static batch)."""
    rule = {**row, "hardware": _rule_hardware(row["hardware"], fraction, folder, flop_scale, dram_scale)}
    if served(rule):
        run = serve_row(rule)
        return RowEnergy(run["j_per_output_token"], run["avg_power_w"])
    return RowEnergy(None, predict_public_row(rule))


def fit_rows(rows: dict[str, dict]) -> list[dict]:
    """The rows the fraction is fitted on: role ``fit`` with a measured mean power."""
    return [r for r in rows.values() if r.get("role") == "fit" and measured_power_w(r) is not None]


def fit_fraction(rows: list[dict], folder: Path) -> float:
    """The active fraction that minimises the squared relative errors of ``rows``' predicted mean
    power. Below the power cap each is linear in the fraction, p_i(f) = a_i + b_i f, and with
    c_i = b_i / m_i, d_i = 1 - a_i / m_i the minimum is sum(c_i d_i) / sum(c_i^2). A step at the
    cap (a long prompt of a large batch) bends its line, so the lines are drawn again through the
    fraction found (Gauss-Newton) until it moves by less than :data:`FRACTION_TOLERANCE`;
    checked against the last lines."""
    fraction = 0.0
    for line_number in range(FIT_ROUNDS):
        probe = LINEAR_PROBE if line_number == 0 else FRACTION_PROBE
        lines = []
        for row in rows:
            p0 = predict_row(row, fraction, folder).avg_power_w
            slope = (predict_row(row, fraction + probe, folder).avg_power_w - p0) / probe
            # a row flat where a later line is drawn is at its cap there, which is no error
            if slope == 0 and line_number == 0:
                raise ValueError(f"row {row['id']}: the prediction does not depend on the active fraction")
            lines.append((row, p0 - slope * fraction, slope, measured_power_w(row)))
        previous = fraction
        fraction = (sum(b / m * (1 - a / m) for _, a, b, m in lines) / sum((b / m) ** 2 for _, a, b, m in lines))
        if abs(fraction - previous) < FRACTION_TOLERANCE:
            break
    for row, a, b, _ in lines:
        check = predict_row(row, fraction, folder).avg_power_w
        if abs(check - (a + b * fraction)) > 1e-3 * check:
            raise ArithmeticError(f"row {row['id']}: the fit did not settle within {FIT_ROUNDS} lines "
                                  f"({check} != {a + b * fraction})")
    return fraction


@dataclass
class TwoParameterFit:
    """The least-squares (fraction, second parameter) of :func:`fit_two`: ``value`` is k or s;
    ``bounded`` says the unconstrained optimum had a fraction below 0 (an active baseline under
    idle power), so the fraction was held at 0; ``unbounded`` is that optimum (fraction, value);
    ``linear_error`` the largest relative gap between a row's evaluated power at the optimum and
    its linear model (the power cap bends the line)."""

    parameter: str
    fraction: float
    value: float
    bounded: bool
    unbounded: tuple[float, float]
    linear_error: float


def _power_line(row: dict, parameter: str, folder: Path) -> tuple[float, float, float]:
    """(a, b, c) with the row's predicted mean power a + b f + c x below the cap, where x is the
    DRAM scale s (``dram``) or k (1 - f) (``flop``: the TDP rule's energy per FLOP is
    proportional to tdp - active = (1 - f) (tdp - static)); three predictions."""
    def power(f: float, **scales: float) -> float:
        return predict_row(row, f, folder, **scales).avg_power_w

    if parameter == "dram":
        base = power(0.0)
        b = (power(LINEAR_PROBE) - base) / LINEAR_PROBE
        c = power(0.0, dram_scale=2.0) - base
        return base - c, b, c
    a = power(0.0, flop_scale=0.0)
    return a, (power(LINEAR_PROBE, flop_scale=0.0) - a) / LINEAR_PROBE, power(0.0) - a


def fit_two(rows: list[dict], parameter: str, folder: Path) -> TwoParameterFit:
    """The fraction f and the second parameter (:data:`SECOND_PARAMETERS`) that minimise the
    squared relative errors of ``rows``' predicted mean power, each a + b f + c x
    (:func:`_power_line`): with B = b / m, C = c / m, D = 1 - a / m the 2 x 2 normal equations;
    a fraction below 0 is held at 0 and x solved alone, sum(C D) / sum(C^2)."""
    if parameter not in SECOND_PARAMETERS:
        raise ValueError(f"unknown second parameter {parameter!r}; one of {SECOND_PARAMETERS}")
    lines = [(row, *_power_line(row, parameter, folder), measured_power_w(row)) for row in rows]
    B = [b / m for _, _, b, _, m in lines]
    C = [c / m for _, _, _, c, m in lines]
    D = [1.0 - a / m for _, a, _, _, m in lines]
    bb, bc, cc = sum(x * x for x in B), sum(x * y for x, y in zip(B, C)), sum(y * y for y in C)
    bd, cd = sum(x * d for x, d in zip(B, D)), sum(y * d for y, d in zip(C, D))
    det = bb * cc - bc * bc
    f, x = (cc * bd - bc * cd) / det, (bb * cd - bc * bd) / det
    unbounded = (f, x / (1.0 - f) if parameter == "flop" else x)
    bounded = f < 0.0
    if bounded:
        f, x = 0.0, cd / cc
    value = x / (1.0 - f) if parameter == "flop" else x
    scales = {"flop_scale": value} if parameter == "flop" else {"dram_scale": value}
    gap = max(abs(predict_row(row, f, folder, **scales).avg_power_w / (a + b * f + c * x) - 1.0)
              for row, a, b, c, _ in lines)
    return TwoParameterFit(parameter, f, value, bounded, unbounded, gap)


def tpu_v4_power_w(fraction: float, folder: Path, **scales: float) -> dict[str, float]:
    """Average power (W) of :data:`TPU_WORKLOAD` on a TPU v4 at ``fraction`` (and ``scales``, as
    :func:`_rule_hardware` takes them): prefill alone, decode alone, and the whole chat turn
    (total energy over total time)."""
    hw = _rule_hardware("tpu-v4", fraction, folder, **scales)
    w = TPU_WORKLOAD
    prefill = simulate(build_llm(w["model"], "prefill", batch=w["batch"], prompt_len=w["prompt_len"]), hw)
    decode = simulate(build_llm(w["model"], "decode", batch=w["batch"], prompt_len=w["prompt_len"],
                                context=round(w["prompt_len"] + w["output_len"] / 2)), hw)
    return {"prefill": prefill.energy_j / prefill.latency_s, "decode": decode.energy_j / decode.latency_s,
            "chat_turn": static_batch_power_w(prefill, decode, w["output_len"])}


def report(fraction: float | None = None, digits: int = 2, second: str | None = None) -> dict:
    """Fit the fraction on :func:`fit_rows` (or take ``fraction``), round it to ``digits``, and
    evaluate every public row with a measured power (fit and held-out) and TPU v4 with the
    rounded value. With ``second`` (:data:`SECOND_PARAMETERS`), fit the fraction and that
    parameter jointly (:func:`fit_two`) and evaluate at both, rounded (a diagnosis: the model
    keeps one parameter)."""
    rows = load_rows()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        fitting = fit_rows(rows)
        scales: dict[str, float] = {}
        if second is not None:
            two = fit_two(fitting, second, folder)
            fitted = two.fraction
            scales = {f"{second}_scale": round(two.value, digits)}
        else:
            fitted = fit_fraction(fitting, folder) if fraction is None else fraction
        used = round(fitted, digits)
        out = {"fit_rows": [r["id"] for r in fitting], "fitted_fraction": fitted, "fraction": used, "rows": {}}
        if second is not None:
            out["second"] = {"parameter": second, "fitted_value": two.value, "value": scales[f"{second}_scale"],
                             "bounded": two.bounded, "unbounded": list(two.unbounded),
                             "linear_error": two.linear_error}
        for row in (r for r in rows.values() if measured_power_w(r) is not None):
            pred = predict_row(row, used, folder, **scales)
            power = measured_power_w(row)
            entry = {"role": row.get("role") or "held-out", "measured_power_w": power,
                     "predicted_power_w": pred.avg_power_w, "power_error": pred.avg_power_w / power - 1.0}
            if pred.energy_per_token_j is not None:
                measured = float(row["value"])
                entry.update({"measured_j_per_tok": measured, "predicted_j_per_tok": pred.energy_per_token_j,
                              "error": pred.energy_per_token_j / measured - 1.0})
            out["rows"][row["id"]] = entry
        out["power_mape"] = {role: _mape([e["power_error"] for e in out["rows"].values() if e["role"] == role])
                             for role in ("fit", "held-out")}
        tpu = tpu_v4_power_w(used, folder, **scales)
        out["tpu_v4"] = {"workload": TPU_WORKLOAD, "measured_mean_power_w": TPU_V4_MEAN_POWER_W,
                         "predicted_power_w": tpu, "error": tpu["chat_turn"] / TPU_V4_MEAN_POWER_W - 1.0}
    return out


def _mape(errors: list[float]) -> float:
    """Mean absolute relative error (0 for no rows)."""
    return sum(abs(e) for e in errors) / len(errors) if errors else 0.0


def catalog_table(fraction: float, refs: tuple[str, ...]) -> dict[str, dict]:
    """The rule's power section for each catalog device in ``refs`` (to write into the YAML)."""
    return {ref: rule_power(hwmodels.load_device(ref), fraction) for ref in refs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m calibration.energy_fit", description=__doc__.split("\n")[0])
    parser.add_argument("--fraction", type=float, help="evaluate this fraction instead of fitting one")
    parser.add_argument("--catalog", nargs="*", metavar="ID", help="also print the rule's power section "
                        "for these catalog devices at the fraction used")
    parser.add_argument("--second", choices=SECOND_PARAMETERS, help="fit the fraction jointly with a second "
                        "parameter (k on the energy per FLOP, or s on the DRAM energy per byte) and evaluate "
                        "both (a diagnosis; the catalog keeps one parameter)")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    args = parser.parse_args(argv)
    if args.second and args.fraction is not None:
        parser.error("--second fits the fraction: give one of --fraction and --second")
    out = report(args.fraction, second=args.second)
    if args.catalog:
        out["catalog"] = catalog_table(out["fraction"], tuple(args.catalog))
    if args.format == "json":
        print(dumps_json(out))
        return 0
    print(f"active fraction fitted on the mean power of {len(out['fit_rows'])} fit rows: "
          f"{out['fitted_fraction']:.4f} (used: {out['fraction']})")
    if "second" in out:
        two = out["second"]
        print(f"  jointly with {two['parameter']} scale {two['fitted_value']:.4f} (used: {two['value']})"
              + (f"; unconstrained optimum fraction {two['unbounded'][0]:.4f}, scale {two['unbounded'][1]:.4f}, "
                 "held at fraction 0" if two["bounded"] else "")
              + f"; largest gap to the linear model {two['linear_error']:.2%}")
    print(f"  mean-power MAPE: fit rows {out['power_mape']['fit']:.1%}, held-out rows {out['power_mape']['held-out']:.1%}")
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
