"""Workloads: operators with exact FLOP and byte counts, operator graphs, model builders, importers."""
