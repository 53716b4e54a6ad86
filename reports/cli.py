"""The ``ridgeline`` command: one entry point, subcommands registered by modules.

Each ``reports.cli_*`` module exposes ``register(subparsers)``, adding its subcommands
with a ``func(args) -> int`` default. Input errors become one line per problem on
stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys

from hwmodels.errors import InputError, did_you_mean

# Modules that contribute subcommands, in the order they appear in --help.
COMMAND_MODULES = [
    "reports.cli_hw",
    "reports.cli_workload",
    "reports.cli_roofline",
    "reports.cli_simulate",
    "reports.cli_calibrate",
    "reports.cli_sweep",
    "reports.cli_report",
]


class _Parser(argparse.ArgumentParser):
    """argparse with exit code 2 and a suggestion for misspelled subcommands."""

    def error(self, message: str):  # noqa: D401 - argparse API
        if "invalid choice" in message:
            # argparse says: invalid choice: 'x' (choose from 'a', 'b'); a subcommand's choices
            # are the subparsers'
            bad = message.split("'")[1] if "'" in message else ""
            if self._subparsers is not None:
                choices = [c for a in self._subparsers._group_actions for c in (a.choices or {})]
            else:
                choices = re.findall(r"'([^']*)'", message.partition("choose from")[2])
            hint = did_you_mean(bad, choices)
            if hint:
                message += f" (did you mean '{hint}'?)"
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ridgeline", description="Hardware performance simulator and roofline analyzer.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(argv) if argv is not None else sys.argv[1:]   # the manifest repeats the command
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        return 0
    except InputError as err:
        for problem in err.problems:
            print(f"error: {problem}", file=sys.stderr)
        return err.exit_code
    except OSError as err:
        # A file the user named (an output path, a trace, a plot) could not be read or written.
        where = f"{err.filename}: " if err.filename else ""
        print(f"error: {where}{err.strerror or err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
