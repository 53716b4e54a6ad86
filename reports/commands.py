"""The CLI's commands: one registry, filled by the ``reports/cli_*.py`` modules.

A command module registers, next to the command's code, a function that fills the command's
parser (its arguments, its description and ``set_defaults(func=...)`` with ``func(args) -> int``)::

    @COMMANDS.register("serve", help="replay requests over replicas")
    def serve_command(parser): ...

:func:`reports.cli.build_parser` imports every ``reports.cli_*`` module, so a new command is one
new module with one registration; no list elsewhere names it. The registered help is the line
``ridgeline --help`` shows.
"""

from __future__ import annotations

from hwmodels.registry import Registry

COMMANDS = Registry("command")
