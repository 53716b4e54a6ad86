"""Errors that are part of Ridgeline's interface.

An :class:`InputError` is a problem with something a user gave us (a file, a flag, a
field). It always says where (file, line, field path), what was expected and, when a
likely typo is involved, what the user probably meant. The CLI turns it into one line
per problem on stderr and exit code 2; it never becomes a traceback.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Iterable
from dataclasses import dataclass


def did_you_mean(name: str, choices: Iterable[str], n: int = 1) -> str | None:
    """The closest spelling of ``name`` among ``choices``, or None."""
    matches = difflib.get_close_matches(str(name), [str(c) for c in choices], n=n, cutoff=0.6)
    return matches[0] if matches else None


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where it is and what was expected."""

    message: str
    file: str | None = None
    line: int | None = None
    path: str | None = None
    suggestion: str | None = None

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        field = f"{self.path}: " if self.path else ""
        hint = f" (did you mean '{self.suggestion}'?)" if self.suggestion else ""
        return f"{where}{field}{self.message}{hint}"


class InputError(ValueError):
    """Bad user input: one or more :class:`Problem` s. Exit code 2 at the CLI."""

    exit_code = 2

    def __init__(self, message: str | None = None, *, file=None, line=None, path=None,
                 suggestion=None, problems: Iterable[Problem] | None = None):
        probs = list(problems or [])
        if message is not None:
            probs.insert(0, Problem(message, file=str(file) if file else None, line=line,
                                    path=path, suggestion=suggestion))
        if not probs:
            probs = [Problem("invalid input")]
        self.problems: list[Problem] = probs
        super().__init__("\n".join(str(p) for p in probs))


class RidgelineWarning(UserWarning):
    """A result that holds but that a user should know about (a workload spilled to host memory,
    a knob that has no effect). Issued with :func:`warnings.warn`, so the Python API shows it;
    the CLI prints each one once on stderr as ``warning: ...``."""


def unknown_name(what: str, name: str, choices: Iterable[str], **where) -> InputError:
    """An InputError for a name that is not among ``choices``, with a suggestion."""
    choices = sorted(choices)
    hint = did_you_mean(name, choices)
    listing = ", ".join(choices[:30]) + (" ..." if len(choices) > 30 else "")
    return InputError(f"unknown {what} '{name}'; expected one of: {listing}", suggestion=hint, **where)


class InputWarning(RidgelineWarning):
    """An input that is legal but implausible (a memory latency of 400 s): the CLI prints it as
    ``warning: FILE:LINE: field.path: message`` on stderr; in Python it is an ordinary warning."""


def warn_problems(problems: Iterable[Problem]) -> None:
    """Issue one :class:`InputWarning` per problem."""
    for problem in problems:
        warnings.warn(str(problem), InputWarning, stacklevel=3)
