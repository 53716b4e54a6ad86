"""One registry pattern for every place users extend Ridgeline.

A :class:`Registry` maps a name to an implementation (an operator class, a cost function, a
collective algorithm, a scheduler, a CLI command, ...) together with one line of help. It is the
only extension mechanism: registration sits next to the definition, CLI ``choices=`` and the
generated docs read :meth:`Registry.names` and :meth:`Registry.help`, and a lookup of a name that is
not there raises one :class:`~hwmodels.errors.InputError` listing the registered names with a
did-you-mean::

    SCHEDULERS = Registry("scheduler")

    @SCHEDULERS.register("fcfs", help="first come, first served")
    class FCFS: ...

    SCHEDULERS.get("fcsf")   # InputError: unknown scheduler 'fcsf'; expected one of: fcfs (did you mean 'fcfs'?)

It lives beside :mod:`hwmodels.errors` because every layer may extend through it and this is the
lowest layer; it imports nothing but the errors module.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from .errors import unknown_name

T = TypeVar("T")
_MISSING = object()


def _first_sentence(value) -> str:
    """The first sentence of ``value``'s docstring (its first paragraph, when no sentence ends)."""
    if isinstance(value, (str, int, float)):
        return ""
    paragraph = (getattr(value, "__doc__", None) or "").strip().split("\n\n")[0]
    text = " ".join(paragraph.split())
    end = re.search(r"(?<!e\.g)(?<!i\.e)\.\s", text)
    return text[:end.start() + 1] if end else text


class Registry(Generic[T]):
    """Named implementations of one extension point (``what``: the noun used in messages).

    Registering a name twice replaces the earlier entry (so a user can override a built-in), and
    ``on_change`` callbacks run after each registration (a cache that depends on the entries,
    e.g. remembered costs, clears itself there).
    """

    def __init__(self, what: str):
        self.what = what
        self._entries: dict[str, T] = {}
        self._help: dict[str, str] = {}
        self._on_change: list[Callable[[], None]] = []

    # -- registering ---------------------------------------------------------------------------
    def register(self, name: str, obj: T | None = None, *, help: str = ""):  # noqa: A002 - argparse's word
        """Add ``obj`` under ``name``; without ``obj``, a decorator that adds what it decorates.
        ``help`` defaults to the first sentence of the object's docstring."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.what} needs a non-empty name, got {name!r}")

        def add(value: T) -> T:
            self._entries[name] = value
            self._help[name] = help or _first_sentence(value)
            for callback in self._on_change:
                callback()
            return value

        return add if obj is None else add(obj)

    def unregister(self, name: str) -> None:
        """Remove ``name`` if it is registered (a test's or a session's temporary entry)."""
        if self._entries.pop(name, None) is not None:
            self._help.pop(name, None)
            for callback in self._on_change:
                callback()

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after every later registration."""
        self._on_change.append(callback)

    # -- looking up ----------------------------------------------------------------------------
    def get(self, name: str, default=_MISSING, *, path: str | None = None, file=None, line=None) -> T:
        """The implementation registered as ``name``; if none, ``default`` when given (as
        ``dict.get``), else an InputError naming the choices."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            if default is not _MISSING:
                return default
            raise unknown_name(self.what, str(name), self._entries, path=path, file=file, line=line) from None

    def check(self, name: str, *, path: str | None = None) -> str:
        """``name`` itself if it is registered, else the same InputError as :meth:`get`."""
        self.get(name, path=path)
        return name

    def names(self) -> list[str]:
        """Registered names in registration order (CLI ``choices=`` and docs read this)."""
        return list(self._entries)

    def help(self, name: str) -> str:
        """The one-line help of ``name``."""
        self.get(name)
        return self._help.get(name, "")

    def describe(self) -> str:
        """``name: help`` lines for ``--help`` texts and generated docs."""
        width = max((len(n) for n in self._entries), default=0)
        return "\n".join(f"{n:<{width}}  {self._help.get(n, '')}".rstrip() for n in self._entries)

    def items(self):
        return self._entries.items()

    def values(self):
        return self._entries.values()

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        # every registered name is a string: anything else (a list from a YAML file) is not one
        return isinstance(name, str) and name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.what!r}: {', '.join(self._entries)})"
