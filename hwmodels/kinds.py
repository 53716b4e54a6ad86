"""The words of the hardware schema, each list written once.

Each kind is a ``Literal`` type (used in the schema's and the resolved models' fields) and the
tuple of its words (``typing.get_args``; CLI ``choices=``, validation messages, docs). This
module imports nothing heavy, so the CLI can offer the choices without loading pydantic.
"""

from __future__ import annotations

from typing import Literal, get_args

DeviceKind = Literal["gpu", "npu", "fpga", "cpu", "memory"]
EngineKind = Literal["matrix", "vector", "scalar", "dsp"]
MemoryKind = Literal["sram", "l2", "hbm", "gddr", "ddr", "lpddr", "host", "cxl"]
LinkKind = Literal["nvlink", "pcie", "cxl", "ici", "infinity_fabric", "ethernet"]
Topology = Literal["switch", "torus", "mesh", "ring", "all_to_all"]
CurveAxis = Literal["log10_flops", "log10_bytes"]    # x of an efficiency curve

DEVICE_KINDS: tuple[str, ...] = get_args(DeviceKind)
ENGINE_KINDS: tuple[str, ...] = get_args(EngineKind)
MEMORY_KINDS: tuple[str, ...] = get_args(MemoryKind)
LINK_KINDS: tuple[str, ...] = get_args(LinkKind)
TOPOLOGIES: tuple[str, ...] = get_args(Topology)

COMPUTE_KINDS = ("gpu", "npu", "fpga", "cpu")          # device kinds that run operators
ACCELERATOR_KINDS = ("gpu", "npu", "fpga")             # device kinds a system ranks
ON_CHIP_MEMORY = ("sram", "l2")                        # memory kinds on the die by default
HARDWARE_KINDS = (*DEVICE_KINDS, "system")             # what a hardware YAML file describes
