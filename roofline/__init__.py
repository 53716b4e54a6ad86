"""The one cost model: operator x device -> demands per resource; rooflines and bounds."""
