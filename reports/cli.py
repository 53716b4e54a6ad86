"""The ``ridgeline`` command: one entry point, subcommands registered by modules.

Each ``reports/cli_*.py`` module registers its commands in :data:`reports.commands.COMMANDS`
(a function filling the command's parser, with a ``func(args) -> int`` default); this module
imports them all and builds the parser from the registry. Input errors become one line per
problem on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import re
import sys
import warnings

import reports
from hwmodels.errors import InputError, RidgelineWarning, did_you_mean

from .commands import COMMANDS
from .output import warn


class _Parser(argparse.ArgumentParser):
    """argparse with exit code 2 and a suggestion for a misspelled choice (a subcommand, --kind)."""

    def error(self, message: str):  # noqa: D401 - argparse API
        invalid = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if invalid:
            hint = did_you_mean(invalid[1], re.findall(r"'([^']*)'", invalid[2]))
            if hint:
                message += f" (did you mean '{hint}'?)"
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ridgeline", description="Hardware performance simulator and roofline analyzer.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    import_command_modules()
    for name, fill in COMMANDS.items():
        fill(sub.add_parser(name, help=COMMANDS.help(name)))
    return parser


def import_command_modules() -> None:
    """Import every ``reports/cli_*.py`` module: importing one registers its commands. Their
    module-level imports are kept light (heavy ones live in the command functions) so that
    start-up stays about half a second."""
    for module in pkgutil.iter_modules(reports.__path__):
        if module.name.startswith("cli_"):
            importlib.import_module(f"reports.{module.name}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(argv) if argv is not None else sys.argv[1:]   # the manifest repeats the command
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    shown: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        """Each distinct :class:`RidgelineWarning` once per command as ``warning: ...`` on stderr
        (input warnings: ``warning: FILE:LINE: field: ...``); others as Python shows them. A set,
        not the "default" filter: that one remembers per call site and stays silent on repeats
        across commands run in one process."""
        if not issubclass(category, RidgelineWarning):
            sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))
        elif str(message) not in shown:
            shown.add(str(message))
            warn(str(message))

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", RidgelineWarning)
            warnings.showwarning = show
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
