"""The kinds of result a report is made for, and the sections a report can hold.

Two registries (:class:`hwmodels.registry.Registry`, the project's one extension mechanism):

* ``REPORT_SECTIONS``: ``name -> fn(doc) -> Section | None`` (None: nothing to show for this
  result, e.g. no timeline in the JSON);
* ``REPORT_KINDS``: ``name -> ReportKind``: how to recognise a result document of that kind, its
  title and headline figures, and which sections it shows, in order.

A new kind of result (a serving run's latency CDFs, a sweep's Pareto front) plugs in with one
``REPORT_KINDS.register`` and the ``REPORT_SECTIONS.register`` of its own sections::

    @REPORT_SECTIONS.register("pareto", help="Pareto front of a sweep")
    def pareto(doc): ...

    REPORT_KINDS.register("sweep", ReportKind(detect=lambda d: "points" in d, title=...,
                                              headline=..., sections=("pareto", "manifest")))

A result document is the JSON a command writes with ``--format json`` (``--out FILE``); it
names its kind in ``"kind"``, and older documents without it are recognised by ``detect``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hwmodels.errors import InputError
from hwmodels.registry import Registry

from .blocks import Report

REPORT_SECTIONS: Registry[Callable] = Registry("report section")


@dataclass(frozen=True)
class ReportKind:
    """How a kind of result is reported: ``detect(doc)`` recognises a document without a
    ``kind``; ``title(doc)`` says what was run; ``headline(doc)`` gives the key figures as
    ``(label, value with unit)``; ``sections`` names registered sections, in order."""

    detect: Callable[[dict], bool]
    title: Callable[[dict], tuple[str, str]]
    headline: Callable[[dict], list[tuple[str, str]]]
    sections: tuple[str, ...]


REPORT_KINDS: Registry[ReportKind] = Registry("report kind")


def kind_of(doc: dict, *, file=None) -> str:
    """The registered kind of a result document (its ``kind``, else the first that recognises it)."""
    if not isinstance(doc, dict):
        raise InputError("a result document is a JSON object (write one with --format json --out FILE)",
                         file=file)
    if "kind" in doc:
        return REPORT_KINDS.check(doc["kind"], path="kind")
    for name, kind in REPORT_KINDS.items():
        if kind.detect(doc):
            return name
    raise InputError("not a Ridgeline result: expected the JSON a command writes with --format json "
                     f"(one of the kinds: {', '.join(REPORT_KINDS.names())})", file=file)


def build_report(doc: dict, *, file=None) -> Report:
    """The :class:`Report` of a result document: its kind's title, headline and sections."""
    name = kind_of(doc, file=file)
    kind = REPORT_KINDS.get(name)
    title, subtitle = kind.title(doc)
    built = [REPORT_SECTIONS.get(s, path="sections")(doc) for s in kind.sections]
    return Report(name, title, subtitle, kind.headline(doc), [s for s in built if s is not None])
