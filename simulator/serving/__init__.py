"""Serving simulation: requests over time on replicas (see docs/serving.md)."""
