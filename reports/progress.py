"""A progress bar on stderr (points done, rate, ETA): rich's when it is installed, a plain line
otherwise. Never on stdout, which may carry JSON."""

from __future__ import annotations

import sys
import time


class ProgressBar:
    """``bar(done, total)`` updates; ``close()`` ends the line. Use as a context manager."""

    def __init__(self, label: str = "points", stream=None):
        self.label = label
        self.stream = stream or sys.stderr
        self.start = time.monotonic()
        self.first_done: int | None = None
        self._rich = None
        self._task = None
        self._last = 0.0
        try:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
        except ImportError:
            return
        self._rich = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(),
                              TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                              console=Console(file=self.stream), transient=False)

    def __enter__(self):
        if self._rich is not None:
            self._rich.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def _rate(self, done: int) -> float:
        if self.first_done is None:
            self.first_done = done
        elapsed = time.monotonic() - self.start
        return (done - self.first_done) / elapsed if elapsed > 0 else 0.0

    def __call__(self, done: int, total: int) -> None:
        rate = self._rate(done)
        if self._rich is not None:
            if self._task is None:
                self._task = self._rich.add_task(self.label, total=total, completed=done, rate="")
            self._rich.update(self._task, completed=done, rate=f"{rate:.1f}/s")
            return
        now = time.monotonic()
        if now - self._last < 0.5 and done < total:
            return
        self._last = now
        eta = (total - done) / rate if rate > 0 else float("nan")
        self.stream.write(f"\r{self.label}: {done}/{total} ({rate:.1f}/s, ETA {eta:.0f} s)   ")
        self.stream.flush()

    def close(self) -> None:
        if self._rich is not None:
            self._rich.stop()
            self._rich = None
        elif self._last:
            self.stream.write("\n")
            self._last = 0.0


class DelayedProgress:
    """A :class:`ProgressBar` that appears only once work has taken ``delay_s`` (a short
    simulation prints nothing), one bar per run of a phase. ``with DelayedProgress() as bar:
    bar.phase("simulating")``, and hand ``bar.update`` to :func:`simulator.engine.progress`: it
    receives ``(tasks done, tasks total)`` of each engine run."""

    def __init__(self, enabled: bool = True, delay_s: float = 2.0, stream=None):
        self.enabled = enabled
        self.delay_s = delay_s
        self.stream = stream or sys.stderr
        self._t0 = time.monotonic()
        self._label = ""
        self._runs = 0
        self._last_done: int | None = None
        self._bar: ProgressBar | None = None

    def __enter__(self) -> DelayedProgress:
        return self

    def __exit__(self, *exc) -> None:
        self._close()

    def phase(self, label: str) -> None:
        """Name what runs next (``simulating``, ``2x what-ifs``)."""
        self._close()
        self._label = label
        self._runs = 0
        self._last_done = None

    def update(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self._last_done is None or done < self._last_done:   # a new engine run began
            self._runs += 1
            self._close()
        self._last_done = done
        if time.monotonic() - self._t0 < self.delay_s:
            return
        if self._bar is None:
            label = self._label + (f" (run {self._runs})" if self._runs > 1 else "")
            self._bar = ProgressBar(f"{label}: tasks", stream=self.stream).__enter__()
        self._bar(done, total)

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
