"""Hardware descriptions: typed schema, units, the bundled catalog, systems and overlays.

Public API (see docs/internals.md): :func:`load_device`, :func:`load_system`,
:func:`load_hardware`, :func:`catalog_ids`, :func:`system_from_device`, and the models
:class:`Device`, :class:`Engine`, :class:`MemoryLevel`, :class:`Link`, :class:`Curve`,
:class:`System`.
"""

from .device import Curve, Device, Engine, Link, MemoryLevel, Power
from .loader import catalog_ids, load_device, load_hardware
from .system import System, load_system, system_from_device

__all__ = [
    "Curve", "Device", "Engine", "Link", "MemoryLevel", "Power", "System",
    "catalog_ids", "load_device", "load_hardware", "load_system", "system_from_device",
]
