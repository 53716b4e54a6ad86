"""Workload importers by file suffix.

:func:`workloads.loader.load_workload` picks the importer registered for a file's suffix (a
reference without one is a model id or a ``config.json`` for the LLM builder). An importer is
``fn(path: Path, **knobs) -> Graph``, registered next to its definition::

    @IMPORTERS.register(".onnx", help="ONNX model graph")
    def import_onnx(path, unknown_ops="error", batch=None): ...

and its module is imported by :mod:`workloads.loader`.
"""

from __future__ import annotations

from hwmodels.registry import Registry

IMPORTERS = Registry("workload file type")
