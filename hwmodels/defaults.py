"""Default achievable fractions of peak, in one place, each with its reason.

A device YAML may set ``efficiency`` on an engine or memory level; where it does not,
these apply. Calibration (``ridgeline calibrate``) replaces them with measured curves.
"""

from __future__ import annotations

# Engine kind -> (fraction of peak reached by a large, well-shaped kernel, why)
ENGINE_EFFICIENCY: dict[str, tuple[float, str]] = {
    "matrix": (0.80, "tensor cores / MXUs reach about 75-85% of peak on large GEMMs "
                     "(cuBLAS and XLA large-GEMM benchmarks); the rest is tile edges, "
                     "epilogues and clock throttling under load"),
    "vector": (0.70, "vector FMA pipelines need perfectly unrolled, dependency-free code; "
                     "compiled elementwise/reduction kernels usually reach 60-80%"),
    "scalar": (0.50, "special-function and scalar units are issue-limited and rarely fed "
                     "every cycle"),
    "dsp": (0.70, "FPGA designs rarely place, route and close timing with every DSP slice "
                  "busy; about 70% utilisation is a typical ceiling for large accelerators"),
}

# Memory-level kind -> (fraction of peak bandwidth reached by a streaming kernel, why)
MEMORY_EFFICIENCY: dict[str, tuple[float, str]] = {
    "sram": (0.80, "shared memory / SRAM bank conflicts and issue limits keep "
                   "microbenchmarks at about 80% of the theoretical bank bandwidth"),
    "l2": (0.75, "L2 slices are shared across a crossbar; microbenchmarks reach about 70-80% of "
                 "the per-clock figure (bytes/clk x clock) the catalog states, so a measured L2 "
                 "bandwidth given as a level's bandwidth needs efficiency 1"),
    "hbm": (0.90, "HBM reaches about 90% of peak in STREAM/BabelStream on A100/H100/MI300X"),
    "gddr": (0.85, "GDDR6 reaches about 85% of peak in STREAM-like kernels (refresh, "
                   "read/write turnarounds)"),
    "ddr": (0.80, "8-channel DDR5 servers measure about 78% of the JEDEC peak "
                  "(Xeon 8480+: 240.6 of 307.2 GB/s, Mess benchmark)"),
    "lpddr": (0.85, "LPDDR5X on Grace measures close to its nominal rate in Mess"),
    "host": (0.85, "PCIe DMA reaches about 80-90% of the link rate (TLP headers, flow control)"),
    "cxl": (0.85, "CXL.mem reads pay flit and protocol overhead like PCIe DMA"),
}


def engine_efficiency(kind: str) -> float:
    """Default achievable fraction of peak for an engine of ``kind``."""
    return ENGINE_EFFICIENCY[kind][0]


def memory_efficiency(kind: str) -> float:
    """Default achievable fraction of peak bandwidth for a memory level of ``kind``."""
    return MEMORY_EFFICIENCY[kind][0]
