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
    "gddr": (0.91, "GDDR6 on an Ada part (L40, 864 GB/s) reaches 770-816 GB/s in gpu-stream's scale "
                   "and triad kernels at 25-100% occupancy, 787 GB/s on average: 0.91 (read-only "
                   "and write-only streams 0.98; te42kyfo/gpu-benches gpu-stream/l40.txt)"),
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


# --------------------------------------------------------------------------- power
# A GPU or NPU running any kernel draws far more than its idle power even when it does few
# useful FLOPs: clocks at boost, SM/MXU front-ends, schedulers, register files, the clock tree
# and the HBM PHY/controller are all busy. That "active baseline" is not in the sources, so it
# is one fraction of the span from idle to TDP, the same for every device:
#     active = static + ACTIVE_POWER_FRACTION x (tdp - static).
# Its value is FITTED by `python -m calibration.energy_fit`: the least squares of the relative
# mean-power errors of every public row of role `fit` that measured a mean power (the ML.ENERGY
# batch-8 run, 486.4 W over its steady state, and the fit `mean_power` rows of
# argonne-lcf/LLM-Inference-Bench); it also prints the energy and power errors on the held-out rows
# with a measured power and on TPU v4's measured mean power.
ACTIVE_POWER_FRACTION: tuple[float, str] = (
    0.21, "fitted by `python -m calibration.energy_fit` on the mean power of the fit rows that measured one "
          "(one free parameter; the per-FLOP and per-byte energies are fixed before the fit)")

# Kinds the fraction applies to by default. CPUs, FPGAs and memory expanders keep active =
# static unless their YAML sets `power.active`: their per-operation energies were derived
# independently (an FPGA's already assigns a fixed share of TDP - static to its DSP work), so a
# baseline on top would count the same watts twice.
ACTIVE_POWER_KINDS = ("gpu", "npu")


def active_power_w(kind: str, static_w: float, tdp_w: float) -> float:
    """Default baseline draw (W) of a device of ``kind`` while it executes work."""
    if kind not in ACTIVE_POWER_KINDS:
        return static_w
    return static_w + ACTIVE_POWER_FRACTION[0] * (tdp_w - static_w)


def flop_energy_at_tdp_j(tdp_w: float, active_w: float, peak_flops_s: float, efficiency: float) -> float:
    """Dynamic energy per FLOP (J) such that a large kernel at ``efficiency`` x ``peak_flops_s``
    draws exactly the TDP on top of the active baseline: (tdp - active) / (peak x efficiency).

    The rule behind the GPU/NPU catalog's ``power.energy_per_flop`` (a large bf16 GEMM at about
    80% of peak holds an H100 at its 700 W limit). It charges the whole span above the baseline
    to the FLOPs and is independent of the cost model, so a GEMM's own memory traffic lands on
    top: the cost model's 8192^3 bf16 GEMM on h100-sxm moves about 144 W worth of HBM, L2 and
    shared-memory bytes (0.19 pJ/FLOP; HBM at its measured 122 pJ/B) at 77% of peak and would draw
    about 823 W, so the simulator's power cap runs it at about 80% of the clock, at 700 W.
    """
    return (tdp_w - active_w) / (peak_flops_s * efficiency)


# Dtypes that no matrix engine runs (CUDA-core fp32/fp64, a TPU's VPU fp32): their energy per
# FLOP is the matrix bf16 value times the Horowitz (ISSCC 2014) ratio, because a vector unit at
# full rate is a small part of the chip and does not reach TDP, so the TDP rule would overstate
# it. fp32 FMA (3.7 + 0.9) / 2 = 2.3 pJ/FLOP vs bf16 (1.1 + 0.4) / 2 = 0.75 pJ/FLOP = 3.07x,
# times operand delivery x3 on the CUDA-core path vs x2 on the tensor path => 4.6x; fp64 = 4 x fp32.
NON_MATRIX_FLOP_ENERGY_RATIO: dict[str, float] = {"fp32": 4.6, "fp64": 18.4}


# --------------------------------------------------------------------------- graph replay
# A kernel's own minimum time inside a replayed CUDA graph, beyond what the cost model prices
# (its bytes at the memory's rate, one round trip of the memory's latency, its FLOPs): the grid's
# blocks dispatched to the SMs, a norm's block-wide reduction between its loads and its stores,
# the drain before the kernel counts as done. A profiler's kernel time (CUPTI, nsys) includes it;
# it excludes the gap between two kernels, which is the runtime profile's ``graph_launch`` (the
# graph's front end issuing the next node). Inside a graph a kernel pays both; an eager launch
# pays the device's ``launch_overhead``, which already covers it. FITTED by
# `python -m calibration.kernel_fit` on the public `fit` rows of kernel times (the `addnorm-h200-*`
# rows of role fit: a fused add + RMSNorm of one 4096-wide row, 1.791 and 2.944 us), least squares
# of the log errors over a grid of 0 to 5 us in 0.01 us (their model time without it: 0.49 us,
# the HBM latency and 16 KB at the H200's rate; a geometric mean of 2.30 us less that: 1.81 us).
GRAPH_KERNEL_FIXED_S = 1.81e-6
