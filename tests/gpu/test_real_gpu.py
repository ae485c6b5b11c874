"""The facade on real NVML: invariants, and the simulator of the same model compared with the
card. These tests only read; they never change MIG mode, clocks, power or anything else."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from gpu_operator.commands.gpus import inventory
from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.gpu.fake.catalogue import MODELS

UUID = re.compile(r"GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
BUS_ID = re.compile(r"[0-9A-F]{8}:[0-9A-F]{2}:[0-9A-F]{2}\.[0-7]")
PROFILE = re.compile(r"(\d+c\.)?\d+g\.\d+gb(\+me|\+me\.all|-me|\+gfx)?")


def test_gpus_have_well_formed_identities(real_nvml: Nvml) -> None:
    gpus = real_nvml.gpus()
    assert gpus, "a machine with a driver has at least one GPU"
    for g in gpus:
        assert UUID.fullmatch(g.uuid), g.uuid
        assert BUS_ID.fullmatch(g.pci_bus_id), g.pci_bus_id
        assert g.pci_device_id & 0xFFFF == 0x10DE
        assert g.memory_total_bytes > 1 << 30
        assert g.compute_capability[0] >= 3
        assert g.architecture != "undefined"
        assert g.pci_class in (0x0300, 0x0302), g.pci_class  # graphics or 3D controller
    system = real_nvml.system()
    assert re.fullmatch(r"\d+\.\d+(\.\d+)?", system.driver_version)
    assert system.cuda_driver_version >= 11000


def test_mig_profiles_are_sane(real_nvml: Nvml) -> None:
    for g in real_nvml.gpus():
        for p in real_nvml.gi_profiles(g.index):
            assert PROFILE.fullmatch(p.name), p.name
            assert p.placements, p.name
            sizes = {pl.size for pl in p.placements}
            assert len(sizes) == 1, f"{p.name}: one placement size per profile"
            assert all(pl.start >= 0 and pl.end <= 8 for pl in p.placements)
            assert p.instance_count <= len(p.placements)
            assert 0 < p.memory_mib <= g.memory_mib
        for d in real_nvml.mig_devices(g.index):
            assert d.uuid.startswith("MIG-")
            assert PROFILE.fullmatch(d.profile)


def test_telemetry_is_in_range(real_nvml: Nvml) -> None:
    for g in real_nvml.gpus():
        t = real_nvml.telemetry(g.index)
        assert t.gpu_temp_c is not None
        assert 5 <= t.gpu_temp_c <= 110
        assert t.power_mw is not None
        assert 0 < t.power_mw < 1_500_000
        assert t.sm_clock_mhz is not None
        assert 0 < t.sm_clock_mhz < 4000
        assert t.memory_total_bytes == g.memory_total_bytes
        assert t.memory_used_bytes is not None
        assert t.memory_used_bytes <= g.memory_total_bytes
        if t.gpu_util_pct is not None:
            assert 0 <= t.gpu_util_pct <= 100
        if t.energy_mj is not None:
            later = real_nvml.telemetry(g.index)
            assert later.energy_mj is not None
            assert later.energy_mj >= t.energy_mj
        assert not t.errors, t.errors


def test_gpm_metrics_are_percentages_where_supported(real_nvml: Nvml) -> None:
    for g in real_nvml.gpus():
        if not real_nvml.gpm_supported(g.index):
            continue
        sample = real_nvml.gpm_sample(g.index, [1, 2, 5, 10], interval_s=0.05)
        # A metric with no data in the interval is left out (NVML's NaN: DRAM bandwidth, 10,
        # on an idle H100 in about half the samples); the utilisations are always there.
        assert {1, 2, 5} <= set(sample.values) <= {1, 2, 5, 10}, sample.values
        assert all(0.0 <= v <= 100.0 for v in sample.values.values()), sample.values


def test_an_xid_watch_can_be_registered_and_times_out_quietly(real_nvml: Nvml) -> None:
    with real_nvml.watch_events() as watcher:
        event = watcher.wait(10)
    assert event is None or event.gpu_uuid


def vbios_family(version: str | None) -> str | None:
    """``96.00.DA.00.0C`` → ``96.00``: the chip generation; the rest is the board's build (H100
    SXM5 boards showed ``96.00.30.00.01``, ``96.00.DA.00.0C`` and ``96.00.99.00.0D``)."""
    return None if version is None else ".".join(version.upper().split(".")[:2])


def _masked(data: dict[str, Any]) -> dict[str, Any]:
    """Only what identifies the model: not identities, placement in the box, the board's VBIOS
    build (its family is kept) or the exact driver build (the simulator answers as 580.159.04)."""
    for key in ("driverVersion", "nvmlVersion"):
        data.pop(key)
    for g in data["gpus"]:
        for key in (
            "uuid",
            "serial",
            "pciBusId",
            "minorNumber",
            "numaNode",
            "pciSubsystemId",
            "index",
        ):
            g.pop(key, None)
        if "vbiosVersion" in g:
            g["vbiosVersion"] = vbios_family(g["vbiosVersion"])
    return data


def test_the_simulator_of_this_model_matches_the_card(real_nvml: Nvml, tmp_path: Path) -> None:
    real = real_nvml.gpus()[0]
    model = next((m for m in MODELS.values() if m.pci_device_id == real.pci_device_id), None)
    if model is None:
        pytest.skip(f"{real.name} ({real.pci_device_id_hex}) is not in the catalogue")
    if real.mig_mode is not None and real.mig_mode.enabled:
        pytest.skip("MIG is enabled on the card; the comparison needs the factory state")
    with Nvml.open(HardwareSettings(sim=model.key, sim_root=tmp_path)) as sim:
        simulated = inventory(sim)
    observed = inventory(real_nvml)
    observed["gpus"] = observed["gpus"][:1]
    print("real subsystem id", real.pci_subsystem_id_hex, "numa", real.numa_node)
    assert _masked(observed) == _masked(simulated)


def test_memory_is_accounted_as_the_simulator_accounts_it(real_nvml: Nvml, tmp_path: Path) -> None:
    """Memory v2 on the card: free + used + reserved = total; the v1 call counts the reserved
    memory as used. Where the simulator has this model, its reserved amount is the card's (same
    driver build) and its idle SM clock is the card's idle clock."""
    real = real_nvml.gpus()[0]
    t = real_nvml.telemetry(0)
    assert t.memory_total_bytes == real.memory_total_bytes
    used, free, reserved = t.memory_used_bytes, t.memory_free_bytes, t.memory_reserved_bytes
    assert used is not None
    assert free is not None
    assert reserved is not None
    print(
        f"{real.name}: reserved {reserved} B ({reserved / 2**20:.1f} MiB), used {used} B, "
        f"free {free} B, SM clock {t.sm_clock_mhz} MHz, VBIOS {real.vbios_version}"
    )
    assert free + used + reserved == real.memory_total_bytes
    n = real_nvml.nvml
    v1 = n.nvmlDeviceGetMemoryInfo(real_nvml.handle(0))
    assert v1.total == real.memory_total_bytes
    assert v1.used + v1.free == v1.total
    assert v1.used >= reserved
    model = next((m for m in MODELS.values() if m.pci_device_id == real.pci_device_id), None)
    if model is None or real_nvml.system().driver_version != "580.159.04":
        pytest.skip("the simulator's figures are of driver 580.159.04 on a catalogued model")
    with Nvml.open(HardwareSettings(sim=model.key, sim_root=tmp_path)) as sim:
        simulated = sim.telemetry(0)
    assert simulated.memory_reserved_bytes == reserved
    assert vbios_family(model.vbios) == vbios_family(real.vbios_version), model.vbios
