"""Calibration: real kernel runs on this machine, fitted efficiency overlays, validation.

Python API (the CLI's ``ridgeline calibrate`` and ``ridgeline validate`` call the same):

* :func:`calibrate` - measure ``host`` (numpy; torch when installed) or ``cuda:N`` (torch), fit,
  and write ``DIR/<device>.yaml`` (an overlay that ``extends:`` the device), the measurements
  and the fingerprint as one set swapped into place (:mod:`calibration.atomic_set`), with the
  BLAS thread count it measured with (:mod:`calibration.cores`);
* :func:`validate` - held-out kernels, a real numpy model end to end, and the bundled public
  measurements, each with its prediction error;
* building blocks: :mod:`calibration.timing` (timing discipline), :mod:`calibration.kernels`
  (numpy micro-benchmarks), :mod:`calibration.torch_kernels`, :mod:`calibration.fit`
  (curve fitting), :mod:`calibration.overlay` (fit -> overlay), :mod:`calibration.public`.

Calibration only changes rates and efficiencies, never the cost model's formulas.
"""

from .calibrate import CalibrationResult, calibrate
from .timing import MeasurementRefused, Timing, TimingPolicy, measure, measure_best
from .validate import ValidationReport, validate

__all__ = ["CalibrationResult", "MeasurementRefused", "Timing", "TimingPolicy", "ValidationReport",
           "calibrate", "measure", "measure_best", "validate"]
