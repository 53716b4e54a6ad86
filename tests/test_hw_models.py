"""The hardware model: catalog devices resolve to SI figures from their sources; derived peaks
match hand arithmetic; overrides and extends; systems and their graphs; host detection."""

from pathlib import Path

import pytest

import hwmodels
from calibration import power_split
from hwmodels.defaults import ENGINE_EFFICIENCY, MEMORY_EFFICIENCY
from hwmodels.device import Curve
from hwmodels.errors import InputError
from hwmodels.host import HostFacts, detect_facts, parse_cpuinfo, raw_from_facts
from hwmodels.loader import CATALOG_DIR, load_raw
from hwmodels.yamlio import loads

ISSUE_DEVICES = {"a100-sxm-80gb", "a100-sxm-40gb", "a100-pcie-80gb", "h100-sxm", "h100-pcie", "h200-sxm", "l4", "mi300x",
                 "tpu-v4", "tpu-v5e", "gaudi2", "gaudi3", "alveo-u280", "alveo-v80", "cz120-cxl",
                 "xeon-8480", "grace", "host",
                 # the serving issue's devices
                 "rtx-4090", "rtx-pro-6000-server", "l40s", "b200", "mi325x"}
ISSUE_SYSTEMS = {"dgx-a100", "hgx-h100", "hgx-h200", "tpu-v5e-8", "gaudi2-8", "h100-cxl", "hgx-b200"}


# ---------------------------------------------------------------- the catalog

def test_catalog_has_exactly_the_issue_ids():
    assert set(hwmodels.catalog_ids()) == ISSUE_DEVICES | ISSUE_SYSTEMS
    assert set(hwmodels.catalog_ids("system")) == ISSUE_SYSTEMS
    assert set(hwmodels.catalog_ids("npu")) == {"tpu-v4", "tpu-v5e", "gaudi2", "gaudi3"}
    assert set(hwmodels.catalog_ids("fpga")) == {"alveo-u280", "alveo-v80"}
    assert set(hwmodels.catalog_ids("memory")) == {"cz120-cxl"}
    assert set(hwmodels.catalog_ids("cpu")) == {"xeon-8480", "grace", "host"}
    # overlays (extends:) have the kind of what they extend
    assert set(hwmodels.catalog_ids("gpu")) == {"a100-sxm-80gb", "a100-sxm-40gb", "a100-pcie-80gb", "h100-sxm", "h100-pcie",
                                                "h200-sxm", "l4", "mi300x", "rtx-4090",
                                                "rtx-pro-6000-server", "l40s", "b200", "mi325x"}
    with pytest.raises(InputError, match="did you mean 'gpu'"):
        hwmodels.catalog_ids("gpus")


@pytest.mark.parametrize("ref", sorted(ISSUE_DEVICES - {"host"}))
def test_every_catalog_device_validates_and_cites_a_source(ref):
    d = hwmodels.load_device(ref)
    assert d.id == ref
    assert len(d.source) > 40
    assert d.kind in ("gpu", "npu", "fpga", "cpu", "memory")
    main = d.memory[d.main_memory]
    assert not main.on_chip and main.capacity_bytes > 0 and main.bandwidth_bytes_s > 0
    for engine in d.engines.values():
        assert 0 < engine.efficiency <= 1
        for dtype in engine.peak_flops:
            assert dtype in d.power.energy_j_per_flop
    # the memory hierarchy is ordered nearest to farthest: on-chip first, latency non-decreasing
    flags = [m.on_chip for m in d.memory.values()]
    assert flags == sorted(flags, reverse=True)
    latencies = [m.latency_s for m in d.memory.values()]
    assert latencies == sorted(latencies)
    # estimates are said to be estimates, and never cited as sources
    assert "estimate" in d.notes.lower() or "estimate" in (CATALOG_DIR / f"{ref}.yaml").read_text().lower()
    assert "estimate" not in d.source.lower()


def test_catalog_file_names_are_their_ids():
    for path in CATALOG_DIR.glob("*.yaml"):
        raw, _doc = load_raw(path)
        assert raw["id"] == path.stem


@pytest.mark.parametrize("ref", sorted(ISSUE_SYSTEMS))
def test_every_catalog_system_builds(ref):
    s = hwmodels.load_system(ref)
    assert s.id == ref
    assert s.accelerators and all(a in s.devices for a in s.accelerators)
    for _u, _v, data in s.graph.edges(data=True):
        assert data["link"].bandwidth_bytes_s > 0
    assert hwmodels.load_hardware(ref).id == ref


# ---------------------------------------------------------------- figures from the sources

def test_h100_figures_from_datasheet():
    d = hwmodels.load_device("h100-sxm")
    assert d.kind == "gpu"
    assert d.engines["tensor"].peak_flops["bf16"] == pytest.approx(989e12)
    assert d.engines["tensor"].peak_flops["fp8"] == pytest.approx(1979e12)
    assert d.memory["hbm"].bandwidth_bytes_s == pytest.approx(3.35e12)
    assert d.memory["hbm"].capacity_bytes == 85_045_477_376    # CUDA's total (deviceQuery)
    assert d.links["nvlink"].bandwidth_bytes_s == pytest.approx(450e9)
    assert d.power.tdp_w == 700.0
    assert d.main_memory == "hbm"
    assert list(d.memory) == ["smem", "l2", "hbm", "host"]
    assert [m.on_chip for m in d.memory.values()] == [True, True, False, False]
    assert d.launch_overhead_s == pytest.approx(4e-6)


def test_units_binary_and_decimal_are_kept_apart():
    assert hwmodels.load_device("tpu-v4").memory["hbm"].capacity_bytes == 32 * 2**30
    assert hwmodels.load_device("tpu-v5e").memory["hbm"].capacity_bytes == 16e9


def test_energy_per_flop_follows_the_stated_tdp_rule():
    # A large bf16 GEMM at 80% of peak draws the TDP on top of the active baseline
    # (static + 0.21 x (TDP - static) = 70 + 0.21 x 630 = 202.3 W): H100 (700 - 202.3) W / (989 TFLOP/s x 0.8).
    h100 = hwmodels.load_device("h100-sxm")
    assert h100.power.energy_j_per_flop["bf16"] == pytest.approx((700 - 202.3) / (989e12 * 0.8), rel=5e-3)
    # fp32 runs on A100's CUDA cores only: bf16 (400 - 123.5) W / (312 TFLOP/s x 0.8) x the
    # Horowitz fp32/bf16 ratio 4.6 ((3.7 + 0.9) / (1.1 + 0.4) x 3/2 operand delivery) = 5.10 pJ,
    # within 2% of the 5.19 pJ per fp32 FLOP the A100 40GB's power sweep measures.
    a100 = hwmodels.load_device("a100-sxm-80gb")
    assert a100.power.energy_j_per_flop["fp32"] == pytest.approx((400 - 123.5) / (312e12 * 0.8) * 4.6, rel=5e-3)
    sweeps = power_split.load_sweeps()
    a100_sweep = power_split.fit_split("a100-sxm-40gb", sweeps["a100-sxm-40gb"])
    assert a100.power.energy_j_per_flop["fp32"] == pytest.approx(a100_sweep.energy_per_flop_j, rel=0.02)
    # HBM: the energy per byte read that each generation's power sweep measures (A100 40GB: HBM2e,
    # 118 pJ/B; H200: HBM3e, 122 pJ/B, which the H100 takes), not Horowitz's 1.3 nJ per 8 B x 0.2
    h200_sweep = power_split.fit_split("h200-sxm", sweeps["h200-sxm"])
    assert h100.memory["hbm"].energy_j_per_byte == pytest.approx(h200_sweep.energy_per_byte_j, rel=0.01)
    assert a100.memory["hbm"].energy_j_per_byte == pytest.approx(a100_sweep.energy_per_byte_j, rel=0.01)


def test_default_efficiencies_come_from_one_place():
    d = hwmodels.load_device("h100-sxm")
    assert d.engines["tensor"].efficiency == ENGINE_EFFICIENCY["matrix"][0] == 0.8
    assert d.memory["hbm"].efficiency == MEMORY_EFFICIENCY["hbm"][0] == 0.9
    # an explicit efficiency wins: the Xeon's DDR is the Mess measurement over the JEDEC peak
    x = hwmodels.load_device("xeon-8480")
    assert x.memory["ddr"].efficiency == pytest.approx(0.78)
    assert x.memory["ddr"].bandwidth_bytes_s == pytest.approx(8 * 4800e6 * 8)
    assert x.memory["ddr"].bandwidth_bytes_s * x.memory["ddr"].efficiency == pytest.approx(240.6e9, rel=0.01)


# ---------------------------------------------------------------- derived peaks (hand arithmetic)

def test_tpu_v4_peak_from_its_systolic_arrays():
    d = hwmodels.load_device("tpu-v4")
    expected = 2 * 4 * 128 * 128 * 2 * 1050e6          # cores x MXUs x cells x FLOP/MAC x clock
    assert expected == pytest.approx(275e12, rel=0.001)
    assert d.engines["mxu"].peak_flops["bf16"] == pytest.approx(expected)
    assert d.engines["mxu"].peak_flops["int8"] == pytest.approx(expected)
    assert d.engines["mxu"].units == 8


def test_tpu_v5e_int8_runs_at_twice_bf16():
    d = hwmodels.load_device("tpu-v5e")
    assert d.engines["mxu"].peak_flops["bf16"] == pytest.approx(4 * 128 * 128 * 2 * 1.5e9)
    assert d.engines["mxu"].peak_flops["int8"] == pytest.approx(2 * 4 * 128 * 128 * 2 * 1.5e9)


def test_gaudi_mme_peaks():
    g2 = hwmodels.load_device("gaudi2")
    assert g2.engines["mme"].peak_flops["bf16"] == pytest.approx(1650e6 * 256**2 * 2 * 2)
    assert g2.engines["mme"].peak_flops["fp8"] == pytest.approx(2 * 1650e6 * 256**2 * 2 * 2)
    g3 = hwmodels.load_device("gaudi3")
    assert g3.engines["mme"].peak_flops["bf16"] == pytest.approx(8 * 256**2 * 2 * 1750e6)
    # the documented 1677 TFLOP/s at a 1600 MHz MME clock: override the clock, drop the stated peak
    slow = g3.with_overrides({"engines.mme.systolic.clock": "1600 MHz", "engines.mme.peak": None})
    assert slow.engines["mme"].peak_flops["bf16"] == pytest.approx(1677e12, rel=0.001)
    # keeping the stated 1835 TFLOP/s beside a 1600 MHz clock is a contradiction, reported
    with pytest.raises(InputError, match="disagrees with the derived"):
        g3.with_overrides({"engines.mme.systolic.clock": "1600 MHz"})


def test_fpga_peaks_from_dsp_slices():
    u280 = hwmodels.load_device("alveo-u280").engines["dsp"]
    assert u280.peak_flops["int8"] == pytest.approx(9024 * 300e6 * 4)
    assert u280.peak_flops["fp16"] == pytest.approx(9024 * 300e6 * 1)
    assert u280.peak_flops["fp32"] == pytest.approx(9024 * 300e6 * 0.5)
    v80 = hwmodels.load_device("alveo-v80").engines["dsp"]
    assert v80.peak_flops["fp32"] == pytest.approx(10848 * 400e6 * 2)
    assert v80.peak_flops["int8"] == pytest.approx(10848 * 400e6 * 4)
    # the FPGA energy per op is the assumed fabric power over the peak rate
    u = hwmodels.load_device("alveo-u280")
    assert u.power.energy_j_per_flop["int8"] == pytest.approx(0.6 * (225 - 30) / (9024 * 300e6 * 4), rel=0.01)


def test_fpga_clock_override_scales_the_peak():
    u = hwmodels.load_device("alveo-u280").with_overrides({"engines.dsp.dsp.clock": "450 MHz"})
    assert u.engines["dsp"].peak_flops["int8"] == pytest.approx(9024 * 450e6 * 4)


# ---------------------------------------------------------------- overrides and extends

def test_with_overrides_changes_only_the_path():
    d = hwmodels.load_device("h100-sxm")
    fast = d.with_overrides({"memory.hbm.bandwidth": "4.8 TB/s"})
    assert fast.memory["hbm"].bandwidth_bytes_s == pytest.approx(4.8e12)
    assert d.memory["hbm"].bandwidth_bytes_s == pytest.approx(3.35e12)
    assert fast.engines == d.engines
    assert fast.memory["l2"] == d.memory["l2"]
    assert hwmodels.load_device("h100-sxm", {"power.tdp": "1 kW"}).power.tdp_w == 1000.0


def test_override_adds_a_memory_level_at_the_end():
    d = hwmodels.load_device("h100-sxm").with_overrides({"memory.cxl": {
        "kind": "cxl", "capacity": "256 GB", "bandwidth": "36 GB/s", "latency": "250 ns",
        "energy_per_byte": "105 pJ/B"}})
    assert list(d.memory)[-1] == "cxl"
    assert d.memory["cxl"].capacity_bytes == 256e9


def test_extends_in_the_catalog_inherits_everything_else():
    a40, a80 = hwmodels.load_device("a100-sxm-40gb"), hwmodels.load_device("a100-sxm-80gb")
    assert a40.memory["hbm"].bandwidth_bytes_s == pytest.approx(1555e9)
    assert a40.memory["hbm"].capacity_bytes == pytest.approx(40e9)
    assert a40.memory["hbm"].latency_s == a80.memory["hbm"].latency_s
    assert a40.engines == a80.engines and a40.links == a80.links
    h200 = hwmodels.load_device("h200-sxm")
    assert h200.memory["hbm"].capacity_bytes == pytest.approx(141e9)
    assert h200.peak_flops("bf16") == hwmodels.load_device("h100-sxm").peak_flops("bf16")


def test_user_overlay_file(tmp_path):
    f = tmp_path / "h100-fast-hbm.yaml"
    f.write_text("extends: h100-sxm\nmemory:\n  hbm:\n    bandwidth: 4.8 TB/s\n")
    d = hwmodels.load_device(f)
    assert d.id == "h100-fast-hbm"
    assert "H100" in d.name
    assert d.memory["hbm"].bandwidth_bytes_s == pytest.approx(4.8e12)
    assert d.memory["hbm"].capacity_bytes == 85_045_477_376
    # an overlay of an overlay, by relative file name
    g = tmp_path / "faster.yaml"
    g.write_text("id: faster\nextends: h100-fast-hbm.yaml\npower:\n  tdp: 1000 W\n")
    d2 = hwmodels.load_device(g)
    assert d2.power.tdp_w == 1000.0 and d2.memory["hbm"].bandwidth_bytes_s == pytest.approx(4.8e12)


def test_describe_is_valid_yaml_form_again():
    import yaml

    from hwmodels.device import device_from_raw
    for ref in ("tpu-v4", "alveo-u280", "h200-sxm"):
        d = hwmodels.load_device(ref)
        text = yaml.safe_dump(d.describe(), sort_keys=False)
        again = device_from_raw(loads(text).data, loads(text))
        assert again.engines.keys() == d.engines.keys()
        for name in d.engines:
            for dtype, peak in d.engines[name].peak_flops.items():
                assert again.engines[name].peak_flops[dtype] == pytest.approx(peak)


# ---------------------------------------------------------------- curves

def test_curve_is_piecewise_linear_and_clamped():
    c = Curve(x="log10_flops", points=[(6.0, 0.2), (9.0, 0.8), (12.0, 0.9)])
    assert c.at(3.0) == 0.2 and c.at(20.0) == 0.9
    assert c.at(7.5) == pytest.approx(0.5)
    assert c.efficiency(1e10) == pytest.approx(0.8 + 0.1 / 3)


def test_curve_in_yaml(tmp_path):
    f = tmp_path / "cal.yaml"
    f.write_text("extends: h100-sxm\nengines:\n  tensor:\n    efficiency_curve:\n      bf16:\n"
                 "        x: log10_flops\n        points: [[9, 0.3], [12, 0.85]]\n"
                 "memory:\n  hbm:\n    efficiency_curve: {x: log10_bytes, points: [[6, 0.5], [9, 0.92]]}\n")
    d = hwmodels.load_device(f)
    assert d.engines["tensor"].efficiency_curve["bf16"].at(10.5) == pytest.approx(0.575)
    assert d.memory["hbm"].efficiency_curve.efficiency(1e12) == pytest.approx(0.92)


# ---------------------------------------------------------------- systems

def test_hgx_h100_is_eight_gpus_on_an_nvls_switch():
    s = hwmodels.load_system("hgx-h100")
    assert s.accelerators == [f"gpu{i}" for i in range(8)]
    assert s.graph.nodes["nvswitch"]["kind"] == "switch"
    assert s.graph.nodes["nvswitch"]["in_network_reduction"] is True
    assert s.graph.edges["gpu3", "nvswitch"]["link"].bandwidth_bytes_s == pytest.approx(450e9)
    assert hwmodels.load_system("dgx-a100").graph.nodes["nvswitch"]["in_network_reduction"] is False
    assert hwmodels.load_system("hgx-h200").graph.nodes["nvswitch"]["in_network_reduction"] is True


def test_tpu_v5e_8_is_a_2x4_torus():
    s = hwmodels.load_system("tpu-v5e-8")
    # rows of 4 are rings (4 edges each), columns of 2 one edge each: 2 x 4 + 4 = 12
    assert s.graph.number_of_edges() == 12
    assert all(deg == 3 for _n, deg in s.graph.degree())
    assert s.graph.has_edge("tpu0", "tpu3") and s.graph.has_edge("tpu0", "tpu4")
    assert s.link("tpu0", "tpu1").bandwidth_bytes_s == pytest.approx(400e9 / 2 / 4)


def test_gaudi2_8_is_all_to_all_with_three_ports_per_peer():
    s = hwmodels.load_system("gaudi2-8")
    assert s.graph.number_of_edges() == 8 * 7 // 2
    assert s.link("hpu0", "hpu7").bandwidth_bytes_s == pytest.approx(3 * 100e9 / 8)


def test_h100_cxl_takes_the_slower_endpoint():
    s = hwmodels.load_system("h100-cxl")
    assert s.accelerators == ["gpu0"]
    assert set(s.graph.nodes) == {"host", "gpu0", "cxl0", "cxl1"}
    assert s.graph.nodes["cxl1"]["kind"] == "memory"
    assert s.link("host", "gpu0").bandwidth_bytes_s == pytest.approx(64e9)
    assert s.link("host", "cxl0").bandwidth_bytes_s == pytest.approx(32e9)
    assert not s.graph.has_edge("gpu0", "cxl0")


def test_system_from_device_switch():
    s = hwmodels.system_from_device(hwmodels.load_device("h100-sxm"), 4)
    assert s.accelerators == ["gpu0", "gpu1", "gpu2", "gpu3"]
    assert s.switches == ["nvswitch"]
    assert s.graph.nodes["nvswitch"]["in_network_reduction"] is True
    assert s.graph.number_of_edges() == 4
    a = hwmodels.system_from_device(hwmodels.load_device("a100-sxm-80gb"), 8)
    assert a.graph.nodes["nvswitch"]["in_network_reduction"] is False


def test_system_from_device_torus_and_all_to_all():
    t = hwmodels.system_from_device(hwmodels.load_device("tpu-v5e"), 8)
    assert t.graph.number_of_edges() == 12 and not t.switches
    assert t.link("npu0", "npu1").bandwidth_bytes_s == pytest.approx(50e9)
    m = hwmodels.system_from_device(hwmodels.load_device("mi300x"), 8)
    assert m.graph.number_of_edges() == 28
    assert m.link("gpu2", "gpu5").bandwidth_bytes_s == pytest.approx(64e9)     # one of 7 links
    # four Ethernet ports cannot reach seven peers directly: the V80s go through a switch
    v80 = hwmodels.system_from_device(hwmodels.load_device("alveo-v80"), 8)
    assert v80.switches == ["ethernet-switch"] and v80.graph.number_of_edges() == 8
    assert v80.link("fpga0", "ethernet-switch").bandwidth_bytes_s == pytest.approx(100e9)
    one = hwmodels.system_from_device(hwmodels.load_device("l4"), 1)
    assert list(one.graph.nodes) == ["gpu0"] and one.graph.number_of_edges() == 0
    pcie = hwmodels.system_from_device(hwmodels.load_device("l4"), 2)
    assert pcie.switches == ["pcie-switch"] and not pcie.graph.nodes["pcie-switch"]["in_network_reduction"]


@pytest.mark.parametrize("count", [0, -1, 2.5, True])
def test_system_from_device_rejects_bad_counts(count):
    with pytest.raises(InputError):
        hwmodels.system_from_device(hwmodels.load_device("h100-sxm"), count)


def test_system_from_device_needs_a_link():
    with pytest.raises(InputError, match="no link"):
        hwmodels.system_from_device(hwmodels.load_device("cz120-cxl"), 2)


# ---------------------------------------------------------------- host detection

def test_host_peak_is_cores_clock_simd_fma():
    facts = HostFacts(model="Test CPU", physical_cores=4, logical_cpus=8, clock_hz=3.0e9,
                      flags={"avx2", "avx512f", "fma", "amx_bf16", "amx_int8"},
                      caches={1: (48 * 1024, 4), 2: (2 * 2**20, 4), 3: (30 * 2**20, 1)}, dram_bytes=64 * 2**30)
    raw = raw_from_facts(facts)
    from hwmodels.device import device_from_raw
    d = device_from_raw(raw, loads("{}"))
    assert d.engines["vector"].peak_flops["fp32"] == pytest.approx(4 * 3.0e9 * 16 * 2 * 2)
    assert d.engines["vector"].peak_flops["fp64"] == pytest.approx(4 * 3.0e9 * 8 * 2 * 2)
    assert d.engines["amx"].peak_flops["bf16"] == pytest.approx(4 * 3.0e9 * 1024)
    assert d.memory["l3"].capacity_bytes == 30 * 2**20
    assert d.memory["l2"].capacity_bytes == 4 * 2 * 2**20
    assert d.memory["dram"].capacity_bytes == 64 * 2**30
    assert d.main_memory == "dram"
    assert "ridgeline calibrate" in d.notes


def test_host_defaults_when_nothing_is_detected():
    d_raw = raw_from_facts(HostFacts())
    from hwmodels.device import device_from_raw
    d = device_from_raw(d_raw, loads("{}"))
    # scalar 64-bit, one pipe, 2 GHz assumed: 1 core x 2e9 x 2 lanes x 2 x 1
    assert d.engines["vector"].peak_flops["fp32"] == pytest.approx(2e9 * 2 * 2)
    assert "not detected" in d.notes


def test_detect_facts_from_a_fake_tree(tmp_path: Path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cpuinfo").write_text(
        "processor\t: 0\nmodel name\t: Fake Xeon\ncpu MHz\t\t: 2500.000\nphysical id\t: 0\ncore id\t\t: 0\n"
        "flags\t\t: fpu sse2 avx avx2 fma avx512f\n\n"
        "processor\t: 1\nmodel name\t: Fake Xeon\ncpu MHz\t\t: 2500.000\nphysical id\t: 0\ncore id\t\t: 1\n"
        "flags\t\t: fpu sse2 avx avx2 fma avx512f\n\n")
    (tmp_path / "proc/meminfo").write_text("MemTotal:       16384 kB\nMemFree: 1 kB\n")
    for cpu in (0, 1):
        for idx, (level, kind, size, shared) in enumerate([(1, "Data", "48K", str(cpu)),
                                                           (1, "Instruction", "32K", str(cpu)),
                                                           (3, "Unified", "32768K", "0-1")]):
            d = tmp_path / f"sys/devices/system/cpu/cpu{cpu}/cache/index{idx}"
            d.mkdir(parents=True)
            for name, value in (("level", level), ("type", kind), ("size", size), ("shared_cpu_list", shared)):
                (d / name).write_text(f"{value}\n")
    facts = detect_facts(tmp_path)
    assert facts.model == "Fake Xeon"
    assert facts.clock_hz == 2.5e9
    assert "avx512f" in facts.flags
    assert facts.caches[1] == (48 * 1024, 2) and facts.caches[3] == (32 * 2**20, 1)
    assert facts.dram_bytes == 16384 * 1024
    assert facts.physical_cores <= 2


def test_parse_cpuinfo_counts_physical_cores():
    text = "".join(f"processor: {i}\nphysical id: {i // 4}\ncore id: {i % 2}\nflags: sse2\n\n" for i in range(8))
    _model, flags, _mhz, cores = parse_cpuinfo(text)
    assert cores == 4 and flags == {"sse2"}


def test_host_loads_on_this_machine():
    d = hwmodels.load_device("host")
    assert d.kind == "cpu" and d.engines["vector"].peak_flops["fp32"] > 0
    assert "calibrate" in d.notes


def test_system_file_with_relative_device_file_and_overrides(tmp_path):
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "fast.yaml").write_text("extends: h100-sxm\nmemory:\n  hbm:\n    bandwidth: 4 TB/s\n")
    (tmp_path / "sys.yaml").write_text(
        "id: mine\nname: Mine\nkind: system\nsource: test\n"
        "devices:\n"
        "  - {name: fast, device: parts/fast.yaml, count: 2}\n"
        "  - {name: slow, device: h100-sxm, overrides: {memory.hbm.bandwidth: 1 TB/s}}\n"
        "switches: [{name: sw, in_network_reduction: true}]\n"
        "edges:\n  - {from: [fast, slow], to: sw, link: nvlink}\n")
    s = hwmodels.load_system(tmp_path / "sys.yaml")
    assert s.accelerators == ["fast0", "fast1", "slow"]
    assert s.devices["fast1"].memory["hbm"].bandwidth_bytes_s == 4e12
    assert s.devices["slow"].memory["hbm"].bandwidth_bytes_s == 1e12
    assert s.graph.degree("sw") == 3


def test_overlay_of_the_detected_host(tmp_path):
    f = tmp_path / "host-cal.yaml"
    f.write_text("extends: host\nmemory:\n  dram:\n    bandwidth: 20 GB/s\n    efficiency: 1.0\n")
    d = hwmodels.load_device(f)
    assert d.kind == "cpu" and d.memory["dram"].bandwidth_bytes_s == 20e9
    assert d.engines == hwmodels.load_device("host").engines
    assert "host-cal" in hwmodels.load_hardware(f).id


def test_editing_a_base_file_is_seen_through_its_overlay(tmp_path):
    import os
    base = tmp_path / "base.yaml"
    base.write_text("extends: h100-sxm\nid: base\npower:\n  tdp: 600 W\n")
    top = tmp_path / "top.yaml"
    top.write_text("extends: base.yaml\nmemory:\n  hbm:\n    bandwidth: 4 TB/s\n")
    assert hwmodels.load_device(top).power.tdp_w == 600.0
    base.write_text("extends: h100-sxm\nid: base\npower:\n  tdp: 650 W\n")
    stat = base.stat()
    os.utime(base, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))   # a later modification time
    assert hwmodels.load_device(top).power.tdp_w == 650.0


def test_same_relative_name_in_two_folders_and_a_rewrite_within_one_clock_tick(tmp_path, monkeypatch):
    import os
    stamp = 1_700_000_000 * 10**9
    for folder, tdp in (("a", 600), ("b", 650)):
        (tmp_path / folder).mkdir()
        f = tmp_path / folder / "x.yaml"
        f.write_text(f"extends: h100-sxm\npower:\n  tdp: {tdp} W\n")
        os.utime(f, ns=(stamp, stamp))                       # one modification time for both files
    monkeypatch.chdir(tmp_path / "a")
    assert hwmodels.load_device("x.yaml").power.tdp_w == 600.0
    monkeypatch.chdir(tmp_path / "b")
    assert hwmodels.load_device("x.yaml").power.tdp_w == 650.0
    (tmp_path / "b" / "x.yaml").write_text("extends: h100-sxm\npower:\n  tdp: 690.5 W\n")
    os.utime(tmp_path / "b" / "x.yaml", ns=(stamp, stamp))   # rewritten, same mtime (a coarse clock)
    assert hwmodels.load_device("x.yaml").power.tdp_w == 690.5


def test_host_sfu_prices_a_transcendental_as_simd_instruction_slots():
    # 2 cores x 2.5 GHz x AVX2 (8 fp32 lanes) x 2 FMA pipes: 80e9 FMA lane-slots per second (fp32),
    # 40e9 at fp64; one tanh/exp takes 16 slots in fp32, 21 in fp64
    facts = HostFacts(physical_cores=2, logical_cpus=2, clock_hz=2.5e9, flags={"avx2", "fma"})
    from hwmodels.device import device_from_raw
    d = device_from_raw(raw_from_facts(facts), loads("{}"))
    sfu = d.engines["sfu"]
    assert sfu.kind == "scalar" and sfu.units == 2
    assert sfu.peak_flops["fp32"] == pytest.approx(80e9 / 16)
    assert sfu.peak_flops["fp64"] == pytest.approx(40e9 / 21)
    assert "FMA-pipe slots" in d.raw["engines"]["sfu"]["notes"]


def test_host_transcendentals_run_on_the_sfu_not_as_one_fma():
    from roofline.costs import cost
    from workloads.operators import Elementwise

    facts = HostFacts(physical_cores=2, logical_cpus=2, clock_hz=2.5e9, flags={"avx2", "fma"})
    from hwmodels.device import device_from_raw
    d = device_from_raw(raw_from_facts(facts), loads("{}"))
    op = Elementwise(name="tanh", numel=10**6, flops_per_element=0.0, special=True, dtype="fp32")
    dem = cost(op, d)
    assert dem.work["compute:sfu"] == 10**6
    eff = d.engines["sfu"].efficiency
    assert dem.times()["compute:sfu"] == pytest.approx(10**6 / (80e9 / 16 * eff))
