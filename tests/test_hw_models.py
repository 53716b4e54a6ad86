"""The hardware model: catalog devices resolve to SI figures from their sources; overrides; systems."""

import pytest

import hwmodels
from hwmodels.errors import InputError


def test_h100_figures_from_datasheet():
    d = hwmodels.load_device("h100-sxm")
    assert d.kind == "gpu"
    assert d.engines["tensor"].peak_flops["bf16"] == pytest.approx(989e12)
    assert d.engines["tensor"].peak_flops["fp8"] == pytest.approx(1979e12)
    assert d.memory["hbm"].bandwidth_bytes_s == pytest.approx(3.35e12)
    assert d.memory["hbm"].capacity_bytes == pytest.approx(80e9)
    assert d.links["nvlink"].bandwidth_bytes_s == pytest.approx(450e9)
    assert d.power.tdp_w == 700.0
    assert d.main_memory == "hbm"
    assert list(d.memory) == ["smem", "l2", "hbm", "host"]
    assert [m.on_chip for m in d.memory.values()] == [True, True, False, False]


def test_with_overrides_changes_only_the_path():
    d = hwmodels.load_device("h100-sxm")
    fast = d.with_overrides({"memory.hbm.bandwidth": "4.8 TB/s"})
    assert fast.memory["hbm"].bandwidth_bytes_s == pytest.approx(4.8e12)
    assert d.memory["hbm"].bandwidth_bytes_s == pytest.approx(3.35e12)
    assert fast.engines == d.engines


def test_override_with_wrong_unit_is_an_input_error():
    d = hwmodels.load_device("h100-sxm")
    with pytest.raises(InputError, match="memory.hbm.bandwidth"):
        d.with_overrides({"memory.hbm.bandwidth": "4.8 TB"})


def test_hgx_h100_is_eight_gpus_on_an_nvls_switch():
    s = hwmodels.load_system("hgx-h100")
    assert s.accelerators == [f"gpu{i}" for i in range(8)]
    assert s.graph.nodes["nvswitch"]["kind"] == "switch"
    assert s.graph.nodes["nvswitch"]["in_network_reduction"] is True
    assert s.graph.edges["gpu3", "nvswitch"]["link"].bandwidth_bytes_s == pytest.approx(450e9)
