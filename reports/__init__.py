"""Faces to the user: the CLI, tables, reports and plots."""
