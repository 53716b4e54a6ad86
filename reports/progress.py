"""A progress bar on stderr for work that may take more than a couple of seconds (long
simulations and their what-ifs): rich when installed and stderr is a terminal, plain lines
otherwise; nothing at all for work that ends within ``delay_s``. Never on stdout."""

from __future__ import annotations

import importlib.util
import sys
import time


class DelayedProgress:
    """``with DelayedProgress() as bar: bar.phase("simulating"); ...`` and hand ``bar.update``
    to :func:`simulator.engine.progress`: it receives ``(done, total)`` of each engine run."""

    def __init__(self, enabled: bool = True, delay_s: float = 2.0, stream=None):
        self.enabled = enabled
        self.delay_s = delay_s
        self.stream = stream or sys.stderr
        self._t0 = time.perf_counter()
        self._label = ""
        self._runs = 0
        self._last_done = None
        self._shown_at = -1.0
        self._rich = None
        self._task = None

    def __enter__(self) -> DelayedProgress:
        return self

    def phase(self, label: str) -> None:
        """Name what runs next (``simulating``, ``2x what-ifs``)."""
        self._label = label
        self._runs = 0
        self._last_done = None

    def update(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self._last_done is None or done < self._last_done:
            self._runs += 1
        self._last_done = done
        elapsed = time.perf_counter() - self._t0
        if elapsed < self.delay_s:
            return
        label = self._label + (f" (run {self._runs})" if self._runs > 1 else "")
        if self._rich is None and self._task is None:
            self._start_rich()
        if self._rich is not None:
            self._rich.update(self._task, completed=done, total=total, description=label)
        elif elapsed - self._shown_at >= 1.0 or done == total:
            self._shown_at = elapsed
            print(f"{label}: {done / total:.0%} of {total} tasks, {elapsed:.1f} s", file=self.stream, flush=True)

    def _start_rich(self) -> None:
        self._task = False   # tried
        if importlib.util.find_spec("rich") is None or not self.stream.isatty():
            return
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

        self._rich = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                              TimeElapsedColumn(), console=Console(file=self.stream), transient=True)
        self._rich.__enter__()
        self._task = self._rich.add_task(self._label, total=1)

    def __exit__(self, *exc) -> None:
        if self._rich is not None:
            self._rich.__exit__(*exc)
