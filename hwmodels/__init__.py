"""Hardware descriptions: typed schema, units, the bundled catalog, systems and overlays."""
