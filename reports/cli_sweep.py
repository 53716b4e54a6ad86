"""``ridgeline sweep run|pareto|show``: design-space sweeps (see :mod:`sweeps`).

``ridgeline sweep run SPEC.yaml --out DIR [--workers N] [--dask tcp://host:8786 | --dask local:N]
[--resume] [--yes] [--csv] [--format json]`` runs every point of the spec into
``DIR/results.parquet`` (a progress bar on stderr, none under ``--format json``);
``ridgeline sweep pareto DIR --objective latency_s:min --objective throughput_tok_s:max`` prints the
non-dominated points and draws them (``DIR/pareto.png`` unless ``--plot`` names another file);
``ridgeline sweep show DIR`` counts the points per status and names the best point per objective.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from hwmodels.errors import InputError

from .commands import COMMANDS
from .output import print_json
from .text import pareto_text, sweep_summary_text

# the outputs a table shows (those the job has): analyze/simulate, then serve
SHOWN_OUTPUTS = ("latency_s", "throughput_tok_s", "energy_j_per_token", "cost_per_mtok", "bound", "dominant",
                 "ttft_p99_s", "tpot_mean_s", "goodput_req_s", "j_per_output_token")


def _not_inputs() -> set[str]:
    """Columns that are not a point's inputs: the bookkeeping and every job's outputs."""
    from sweeps.jobs import JOBS, job_columns

    return {"key", "status", "message", "job", "ridgeline_version",
            *(c for _, job in JOBS.items() for c in job_columns(job, True))}


@COMMANDS.register("sweep", help="design-space sweeps: run a spec, Pareto fronts, summaries")
def sweep_command(p) -> None:
    """Fill ``sweep`` with ``run``, ``pareto`` and ``show`` (sweeps/ is imported when one runs: it
    loads the cost model and the workload builders, too slow for every ridgeline call)."""
    sub = p.add_subparsers(dest="sweep_command", metavar="SUBCOMMAND", parser_class=type(p))
    run = sub.add_parser("run", help="run every point of a sweep spec (resumable)")
    run.add_argument("spec", metavar="SPEC.yaml")
    run.add_argument("--out", required=True, metavar="DIR", help="folder for results.parquet and spec.json")
    run.add_argument("--workers", type=int, default=None,
                     help="local worker processes (default: one per core this process may use)")
    run.add_argument("--dask", metavar="ADDRESS", help="a Dask scheduler (tcp://host:8786) or local:N to start "
                                                       "a LocalCluster of N workers (needs ridgeline[distributed])")
    run.add_argument("--resume", action="store_true", help="continue a sweep in DIR, skipping stored points")
    run.add_argument("--yes", action="store_true", help="allow a plan above the size limit")
    run.add_argument("--csv", action="store_true", help="also write DIR/results.csv")
    run.add_argument("--format", choices=("table", "json"), default="table")
    run.add_argument("--html", metavar="FILE.html", help="write a self-contained HTML report of the sweep")
    run.set_defaults(func=cmd_run)

    par = sub.add_parser("pareto", help="the non-dominated points of a sweep, as a table and a plot")
    par.add_argument("dir", metavar="DIR")
    par.add_argument("--objective", action="append", metavar="COLUMN:min|max",
                     help="repeat for each objective (default: the spec's objectives)")
    par.add_argument("--constraint", action="append", metavar="EXPR",
                     help="fits_memory or 'COLUMN <= NUMBER' (default: the spec's constraints)")
    par.add_argument("--plot", metavar="FILE", help="PNG/SVG of the front (default DIR/pareto.png)")
    par.add_argument("--color", metavar="COLUMN", help="colour the points by this column")
    par.add_argument("--format", choices=("table", "json"), default="table")
    par.set_defaults(func=cmd_pareto)

    show = sub.add_parser("show", help="points per status and the best point per objective")
    show.add_argument("dir", metavar="DIR")
    show.add_argument("--format", choices=("table", "json"), default="table")
    show.set_defaults(func=cmd_show)
    p.set_defaults(func=lambda args: _usage(p))


def _usage(parser) -> int:
    parser.print_usage(sys.stderr)
    raise InputError("expected a subcommand: run, pareto or show", path="sweep")


def cmd_run(args) -> int:
    from sweeps import Sweep

    from .progress import ProgressBar

    if args.workers is not None and args.workers < 1:
        raise InputError("--workers must be >= 1", path="workers")
    sweep = Sweep.from_yaml(args.spec, yes=args.yes)
    if args.format == "json":
        frame = sweep.run(workers=args.workers, out=args.out, resume=args.resume, dask=args.dask)
    else:
        with ProgressBar("points") as bar:
            frame = sweep.run(workers=args.workers, out=args.out, resume=args.resume, dask=args.dask,
                              progress=bar)
    if args.csv:
        frame.to_csv(Path(args.out) / "results.csv", index=False)
    if args.html:
        from .html import write_report
        from .html.sweep import sweep_document
        from .manifest import manifest

        for path in write_report(sweep_document(args.out, manifest(args, seed=sweep.spec.seed)), args.html):
            print(f"wrote {path}", file=sys.stderr)
    summary = sweep.summary(frame)
    if args.format == "json":
        print_json({"out": str(args.out), **summary})
        return 0
    print(sweep_summary_text(summary, args.out, _not_inputs()))
    return 0


def _stored(folder: str):
    from sweeps.spec import parse_constraint
    from sweeps.store import read_results, read_spec

    stored = read_spec(folder)
    frame = read_results(folder)
    constraints = [parse_constraint(c, frame.columns) for c in stored.get("constraints", [])]
    return stored, frame, constraints


def _columns(frame, objectives) -> list[str]:
    not_inputs = _not_inputs()
    axes = [c for c in frame.columns if c not in not_inputs and c not in objectives]
    outputs = [c for c in (*objectives, *SHOWN_OUTPUTS) if c in frame.columns]
    return [*axes, *dict.fromkeys(outputs)]


def cmd_pareto(args) -> int:
    from sweeps.pareto import pareto_front, parse_objective
    from sweeps.spec import parse_constraint

    from .sweep_plot import plot_sweep

    stored, frame, constraints = _stored(args.dir)
    if args.objective:
        numeric = frame.select_dtypes("number").columns
        objectives = dict(parse_objective(o, numeric) for o in args.objective)
    else:
        objectives = stored.get("objectives") or {}
    if args.constraint is not None:
        constraints = [parse_constraint(c, frame.columns, {"path": "constraint"}) for c in args.constraint]
    if args.color is not None and args.color not in frame.columns:
        from hwmodels.errors import unknown_name

        raise unknown_name("column", args.color, frame.columns, path="color")
    front = pareto_front(frame, objectives, constraints)
    plot = Path(args.plot) if args.plot else Path(args.dir) / "pareto.png"
    names = list(objectives)
    x, y = (names[0], names[1]) if len(names) > 1 else (names[0], names[0])
    plot_sweep(frame, x, y, color=args.color, front=front,
               title=f"Pareto front: {', '.join(f'{k} {v}' for k, v in objectives.items())}").savefig(plot, dpi=120)
    columns = _columns(frame, objectives)
    if args.format == "json":
        print_json({"objectives": objectives, "constraints": [c.text for c in constraints], "plot": str(plot),
                    "points": len(front), "front": json.loads(front[["key", *columns]].to_json(orient="records"))})
        return 0
    print(pareto_text(front[columns].to_dict("records"), int((frame["status"] == "ok").sum()), objectives, plot))
    return 0


def cmd_show(args) -> int:
    from sweeps.pareto import summary

    stored, frame, constraints = _stored(args.dir)
    result = summary(frame, stored.get("objectives") or {}, constraints)
    result["planned"] = stored.get("planned")
    if args.format == "json":
        print_json(result)
        return 0
    print(sweep_summary_text(result, args.dir, _not_inputs()))
    return 0
