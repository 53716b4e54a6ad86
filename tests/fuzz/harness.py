"""Running one fuzz case and naming what happened.

A :class:`Surface` is one kind of input: a hypothesis ``strategy`` of cases and a ``run(case,
workdir)`` that feeds one case to Ridgeline the way a user would (a file loaded through the public
API, or argv through the CLI) and, when the input is accepted, checks the figures it produces.
:func:`attempt` runs it under a time limit and sorts the result into one of :data:`OUTCOMES`:

* ``accepted``: the input was valid and every figure of the result is finite;
* ``clean_error``: an :class:`~hwmodels.errors.InputError` (the CLI: exit 2 with ``error:`` lines);
* ``traceback``: any other exception (a bug: the signature names the exception and where);
* ``time_out``: the case ran past the limit (a hang, or a size that was not bounded);
* ``non_finite``: accepted, but a figure of the result is NaN or infinite.

Surfaces register in :data:`SURFACES` (the project's one registry helper). A new input surface
(request traces, sweep specs) is a module ``tests/fuzz/surface_<name>.py`` calling
``SURFACES.register("<name>", Surface("<name>", strategy, run))``; :mod:`fuzz.surfaces` imports
every such module, and both the CI test and ``run.py`` pick it up.
"""

from __future__ import annotations

import contextlib
import faulthandler
import io
import math
import os
import pickle
import select
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from hwmodels.errors import InputError
from hwmodels.registry import Registry

OUTCOMES = ("clean_error", "traceback", "time_out", "non_finite", "accepted")
FAILURES = ("traceback", "time_out", "non_finite")


@dataclass(frozen=True)
class Surface:
    """One kind of input: cases drawn from ``strategy`` are fed to ``run(case, workdir)``."""

    name: str
    strategy: st.SearchStrategy
    run: Callable[[Any, Path], None]
    help: str = ""
    requires: tuple[str, ...] = ()   # optional modules the surface needs (skipped without them)

    def available(self) -> bool:
        import importlib.util

        return all(importlib.util.find_spec(m) is not None for m in self.requires)


SURFACES: Registry[Surface] = Registry("fuzz surface")


class NonFinite(Exception):
    """An accepted input produced a NaN or infinite figure."""


class _TimeOut(BaseException):
    """Raised by the alarm; a BaseException so that no ``except Exception`` in the code under
    test swallows it."""


@dataclass
class Outcome:
    kind: str                 # one of OUTCOMES
    detail: str = ""          # the error message, or the traceback's signature
    trace: str = field(default="", repr=False)


_ARMED = {"on": False}   # whether an alarm now means "this case ran too long"


def _alarm(_signum, _frame):
    if not _ARMED["on"]:
        return   # a late alarm after the case ended
    # re-armed first: an exception raised where Python ignores it (a garbage-collector callback)
    # would otherwise leave the case running without a limit
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    raise _TimeOut()


def attempt(surface: Surface, case: Any, workdir: Path, timeout_s: float) -> Outcome:
    """Run ``case`` on ``surface`` with a wall-clock limit; what happened."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        try:
            _ARMED["on"] = True
            signal.setitimer(signal.ITIMER_REAL, timeout_s)
            surface.run(case, workdir)
        finally:
            _ARMED["on"] = False
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    except _TimeOut:
        return Outcome("time_out", f"over {timeout_s:g} s")
    except InputError as err:
        return Outcome("clean_error", str(err).splitlines()[0])
    except NonFinite as exc:
        return Outcome("non_finite", str(exc))
    except (Exception, SystemExit) as exc:  # every other exception is what a fuzzer looks for
        return Outcome("traceback", signature(exc), traceback.format_exc())
    return Outcome("accepted")


def attempt_isolated(surface: Surface, case: Any, workdir: Path, timeout_s: float) -> Outcome:
    """:func:`attempt` in a forked child that is killed at the limit: robust where an alarm is not
    (a case that allocates so fast that the alarm keeps landing in garbage-collector callbacks,
    where Python ignores the exception) and where the interpreter itself dies (a crash is a
    ``traceback`` outcome naming the signal). The child inherits the parent's warm caches."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:   # the child: run the case, send the outcome, leave without cleanup
        os.close(read_end)
        faulthandler.disable()   # a crash is reported by the parent, without a stack dump
        try:
            outcome = attempt(surface, case, workdir, timeout_s * 2)
            outcome.trace = outcome.trace[-4000:]
            data = pickle.dumps(outcome)
            while data:
                data = data[os.write(write_end, data):]
        finally:
            os._exit(0)
    os.close(write_end)
    chunks, deadline = [], time.monotonic() + timeout_s
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([read_end], [], [], remaining)[0]:
                os.kill(pid, signal.SIGKILL)
                return Outcome("time_out", f"over {timeout_s:g} s")
            chunk = os.read(read_end, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_end)
        _pid, status = os.waitpid(pid, 0)
    if not chunks:
        how = f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit {os.WEXITSTATUS(status)}"
        return Outcome("traceback", f"the interpreter died ({how})")
    return pickle.loads(b"".join(chunks))


def signature(exc: BaseException) -> str:
    """``ExceptionType at file:line (function)`` of the innermost frame in Ridgeline's code."""
    frames = traceback.extract_tb(exc.__traceback__)
    root = str(Path(__file__).resolve().parents[2])
    ours = [f for f in frames if f.filename.startswith(root) and "/tests/" not in f.filename]
    where = ours[-1] if ours else (frames[-1] if frames else None)
    place = f" at {Path(where.filename).relative_to(root) if where.filename.startswith(root) else where.filename}:" \
            f"{where.lineno} ({where.name})" if where else ""
    return f"{type(exc).__name__}{place}"


def check_figures(obj: Any, path: str = "result") -> None:
    """Raise :class:`NonFinite` naming the first NaN or infinite float in ``obj`` (dicts, lists,
    numbers); None where a figure should be is not checked here (the JSON writer refuses it)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        raise NonFinite(f"{path} = {obj}")
    if isinstance(obj, dict):
        for key, value in obj.items():
            check_figures(value, f"{path}.{key}")
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            check_figures(value, f"{path}[{i}]")


def run_cli_in(argv: list[str], workdir: Path) -> str:
    """Run ``ridgeline ARGV`` as a fuzz case inside ``workdir`` (a relative output name such as
    ``--html 64`` lands in the case's folder) and sort it: its stdout when it exits 0; an
    :class:`InputError` (a clean error) for exit 2 with a message and no traceback; anything else
    is a ``RuntimeError`` the harness counts as a traceback."""
    here = os.getcwd()
    os.chdir(workdir)
    try:
        code, out, err = run_cli(argv)
    finally:
        os.chdir(here)
    if code == 0:
        return out
    if code == 2 and err.strip() and "Traceback" not in err:
        raise InputError(err.strip().splitlines()[-1])
    raise RuntimeError(f"exit {code}: {err.strip()[-300:]}")


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``ridgeline ARGV`` in-process: (exit code, stdout, stderr). An exception escaping the CLI
    propagates (it is a traceback a user would see)."""
    from reports.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:   # argparse: --help (0) or a usage error (2)
            code = exc.code if isinstance(exc.code, int) else 2
    return code, out.getvalue(), err.getvalue()
