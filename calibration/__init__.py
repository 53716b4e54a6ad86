"""Calibration: real kernel runs on this machine, fitted efficiency overlays, validation."""
