"""Hardware descriptions: typed schema, units, the bundled catalog, systems and overlays.

Public API (see docs/internals.md): :func:`load_device`, :func:`load_system`,
:func:`load_hardware`, :func:`catalog_ids`, :func:`system_from_device`, and the models
:class:`Device`, :class:`Engine`, :class:`MemoryLevel`, :class:`Link`, :class:`Curve`,
:class:`System`.
"""

from .lazy import lazy_exports

# Public name -> submodule defining it. Loaded on first use, so that importing a light module
# (``hwmodels.errors`` for the CLI's start-up) does not load pydantic, pint and networkx.
_EXPORTS = {
    "Curve": "device", "Device": "device", "Engine": "device", "Link": "device",
    "MemoryLevel": "device", "Power": "device",
    "catalog_ids": "loader", "load_device": "loader", "load_hardware": "system",
    "System": "system", "load_system": "system", "system_from_device": "system",
    "with_fp16_accumulate": "system",
}

__all__ = [
    "Curve", "Device", "Engine", "Link", "MemoryLevel", "Power", "System",
    "catalog_ids", "load_device", "load_hardware", "load_system", "system_from_device", "with_fp16_accumulate",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
