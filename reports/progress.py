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
