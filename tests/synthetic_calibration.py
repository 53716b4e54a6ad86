"""A synthetic machine and measurements of it with a known answer, for the calibration tests.

The machine (``BASE_YAML``): one vector engine of 100 GFLOP/s (fp32), an L1 of 32 KiB and DRAM.
The measurements (:func:`synthetic_frame`): GEMMs at the efficiencies of ``GEMM_EFF`` and
copies at the bandwidths of ``COPY_BW``, each after the ``LAUNCH`` call cost.
"""

import json

import pandas as pd

from calibration.kernels import make_case
from calibration.runner import COLUMNS

PEAK = 100e9  # FLOP/s
LAUNCH = 5e-8  # s (small enough that an 8 KiB copy is not mostly call cost)

BASE_YAML = """\
id: test-cpu
name: Test CPU
kind: cpu
source: written by the test
engines:
  vector:
    kind: vector
    units: 1
    peak: {fp32: "100 GFLOP/s", fp64: "50 GFLOP/s"}
memory:
  l1: {kind: sram, capacity: "32 KiB", bandwidth: "10 TB/s", latency: "0 ns", energy_per_byte: "0 pJ/B"}
  dram: {kind: ddr, capacity: "16 GiB", bandwidth: "1 TB/s", latency: "0 ns", energy_per_byte: "0 pJ/B"}
power: {static: "1 W", tdp: "10 W", energy_per_flop: {fp32: "1 pJ/FLOP", fp64: "2 pJ/FLOP"}}
launch_overhead: "5 us"
"""

GEMM_EFF = {256: 0.5, 512: 0.7, 1024: 0.9}   # efficiency of the synthetic machine at each size
COPY_BW = {512: 100e9, 4 * 2**20: 10e9}      # copy elements -> bandwidth (8 KiB in L1, 64 MiB in DRAM)


def measured_row(case, median_s, status="ok"):
    """A measurement-table row for ``case`` measured at ``median_s``."""
    return {"case_id": case.case_id, "kernel": case.kernel, "backend": case.backend, "device": case.device,
            "dtype": case.dtype, "split": case.split, "shape": json.dumps(case.shape), "flops": case.flops,
            "bytes_moved": case.bytes_moved, "median_s": median_s, "spread": 0.0, "inner": 1, "attempts": 1,
            "passes_ok": 1, "pass_spread": 0.0, "status": status, "note": "",
            "flop_s": case.flops / median_s, "bytes_s": case.bytes_moved / median_s}


def synthetic_frame(dram_status="ok"):
    """The launch, the GEMMs of ``GEMM_EFF`` and the copies of ``COPY_BW`` as measured rows;
    ``dram_status``: the status of the DRAM-sized copy (``refused`` as if too noisy)."""
    rows = [measured_row(make_case("launch", "fp64", n=1), LAUNCH)]
    for n, e in GEMM_EFF.items():
        case = make_case("gemm", "fp32", m=n, n=n, k=n)
        rows.append(measured_row(case, 2.0 * n**3 / (PEAK * e) + LAUNCH))
    for n, bw in COPY_BW.items():
        case = make_case("stream_copy", "fp64", n=n)
        rows.append(measured_row(case, case.bytes_moved / bw + LAUNCH, dram_status if n > 512 else "ok"))
    return pd.DataFrame(rows, columns=COLUMNS)
