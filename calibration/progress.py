"""A progress bar on stderr (rich when installed, plain lines otherwise); never on stdout."""

from __future__ import annotations

import importlib.util
import sys
import time


class Progress:
    """``with Progress(total, "measuring") as p: p.step("gemm fp32 512")`` - shows what runs now."""

    def __init__(self, total: int, title: str = "measuring", enabled: bool = True, stream=None):
        self.total = total
        self.title = title
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.done = 0
        self._rich = None
        self._task = None
        self._t0 = time.perf_counter()

    def __enter__(self) -> Progress:
        if self.enabled and importlib.util.find_spec("rich") is not None and self.stream.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RichProgress

            self._rich = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), console=Console(file=self.stream), transient=True)
            self._rich.__enter__()
            self._task = self._rich.add_task(self.title, total=self.total)
        return self

    def step(self, label: str) -> None:
        """Announce the item about to be measured (and count the previous one as done)."""
        if not self.enabled:
            return
        if self._rich is not None:
            self._rich.update(self._task, completed=self.done, description=f"{self.title}: {label}")
        elif self.total <= 60 or self.done % max(1, self.total // 20) == 0:
            print(f"[{self.done + 1}/{self.total}] {self.title}: {label}", file=self.stream, flush=True)
        self.done += 1

    def __exit__(self, *exc) -> None:
        if self._rich is not None:
            self._rich.update(self._task, completed=self.total)
            self._rich.__exit__(*exc)
        if self.enabled and exc[0] is None:
            print(f"{self.title}: {self.total} done in {time.perf_counter() - self._t0:.1f} s",
                  file=self.stream, flush=True)
