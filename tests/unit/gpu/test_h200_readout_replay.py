"""The simulated H200 answers every call of the real H200 read-out the way the card did
(tests/data/h200_nvml_readout.json, typed in from shared/reference/h200-nvml-readout.txt)."""

from __future__ import annotations

import ctypes
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pynvml
import pytest

from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.gpu.backend import load_nvml

READOUT = json.loads((Path(__file__).parents[2] / "data" / "h200_nvml_readout.json").read_text())


@pytest.fixture
def fake_h200(tmp_path: Path) -> Any:
    nvml = load_nvml(HardwareSettings(sim="h200", sim_root=tmp_path))
    nvml.nvmlInit()
    yield nvml
    nvml.nvmlShutdown()


def test_device_facts_match_the_real_card(fake_h200: Any) -> None:
    n = fake_h200
    h = n.nvmlDeviceGetHandleByIndex(0)
    assert n.nvmlDeviceGetName(h) == READOUT["name"]
    assert f"0x{n.nvmlDeviceGetPciInfo(h).pciDeviceId:08X}" == READOUT["pciDeviceId"]
    assert f"0x{n.nvmlDeviceGetPciInfo(h).pciSubSystemId:08X}" == READOUT["pciSubsystemId"]
    assert n.nvmlDeviceGetMemoryInfo(h).total == READOUT["memoryTotalBytes"]
    assert list(n.nvmlDeviceGetCudaComputeCapability(h)) == READOUT["computeCapability"]
    assert n.nvmlDeviceGetArchitecture(h) == READOUT["architecture"]
    assert n.nvmlDeviceGetBrand(h) == READOUT["brand"]
    assert n.nvmlDeviceGetVbiosVersion(h) == READOUT["vbios"]
    assert n.nvmlDeviceGetMigMode(h) == READOUT["migMode"]
    assert n.nvmlDeviceGetMaxMigDeviceCount(h) == READOUT["maxMigDeviceCount"]
    assert n.nvmlSystemGetDriverVersion() == READOUT["driverVersion"]
    assert n.nvmlSystemGetCudaDriverVersion() == READOUT["cudaDriverVersion"]


@pytest.mark.parametrize(
    "profile", READOUT["profiles"], ids=lambda p: f"enum {p['enum']} is {p['name']}"
)
def test_each_profile_enum_gives_the_real_profile_info(
    fake_h200: Any, profile: dict[str, Any]
) -> None:
    n = fake_h200
    info = n.nvmlDeviceGetGpuInstanceProfileInfo(n.nvmlDeviceGetHandleByIndex(0), profile["enum"])
    got = {
        "id": info.id,
        "instances": info.instanceCount,
        "memoryMB": info.memorySizeMB,
        "sms": info.multiprocessorCount,
        "ce": info.copyEngineCount,
        "dec": info.decoderCount,
        "enc": info.encoderCount,
        "jpg": info.jpegCount,
        "ofa": info.ofaCount,
        "slices": info.sliceCount,
    }
    assert got == {k: profile[k] for k in got}


@pytest.mark.parametrize(
    "profile", READOUT["profiles"], ids=lambda p: f"placements of id {p['id']}"
)
def test_placements_match_nvidia_smi_lgipp(fake_h200: Any, profile: dict[str, Any]) -> None:
    n = fake_h200
    h = n.nvmlDeviceGetHandleByIndex(0)
    count = ctypes.c_uint(0)
    n.nvmlDeviceGetGpuInstancePossiblePlacements(h, profile["id"], None, ctypes.byref(count))
    array = (pynvml.c_nvmlGpuInstancePlacement_t * count.value)()
    n.nvmlDeviceGetGpuInstancePossiblePlacements(h, profile["id"], array, ctypes.byref(count))
    assert [[p.start, p.size] for p in array] == profile["placements"]


def test_the_gpu_is_a_3d_controller_as_the_real_card_in_sysfs(
    open_sim: Callable[..., Nvml],
) -> None:
    assert open_sim("h200").gpu(0).pci_class == 0x0302  # sysfs class 0x030200 on the real H200


def test_profile_enums_the_card_lacks_fail_like_the_real_driver(fake_h200: Any) -> None:
    n = fake_h200
    h = n.nvmlDeviceGetHandleByIndex(0)
    for enum in READOUT["unsupportedProfileEnums"]:
        with pytest.raises(pynvml.NVMLError_NotSupported):
            n.nvmlDeviceGetGpuInstanceProfileInfo(h, enum)
    for enum in READOUT["invalidProfileEnums"]:
        with pytest.raises(pynvml.NVMLError_InvalidArgument):
            n.nvmlDeviceGetGpuInstanceProfileInfo(h, enum)


def test_the_pynvml_two_argument_placement_call_fails_as_on_the_real_binding(
    fake_h200: Any,
) -> None:
    n = fake_h200
    with pytest.raises(TypeError, match="missing 2 required positional arguments"):
        n.nvmlDeviceGetGpuInstancePossiblePlacements(n.nvmlDeviceGetHandleByIndex(0), 19)


def test_gpus_json_gives_the_issue_table(open_sim: Callable[..., Nvml]) -> None:
    from gpu_operator.commands.gpus import inventory

    data = inventory(open_sim("h200"))
    gpu = data["gpus"][0]
    assert (data["driverVersion"], data["cudaDriverVersion"]) == ("580.159.04", 13000)
    assert (gpu["name"], gpu["pciDeviceId"], gpu["memoryMiB"], gpu["computeCapability"]) == (
        "NVIDIA H200",
        "0x233510DE",
        143771,
        "9.0",
    )
    assert gpu["migMode"] == {"current": "disabled", "pending": "disabled"}
    assert gpu["migDevices"] == []
    table = [
        (p["name"], p["id"], p["instances"], p["memoryMiB"], p["multiprocessors"])
        for p in gpu["migProfiles"]
    ]
    assert table == [
        ("1g.18gb", 19, 7, 16384, 16),
        ("1g.18gb+me", 20, 1, 16384, 16),
        ("1g.35gb", 15, 4, 33280, 26),
        ("2g.35gb", 14, 3, 33280, 32),
        ("3g.71gb", 9, 2, 71424, 60),
        ("4g.71gb", 5, 1, 71424, 64),
        ("7g.141gb", 0, 1, 143360, 132),
    ]
    by_id = {p["id"]: p for p in READOUT["profiles"]}
    for p in gpu["migProfiles"]:
        assert [[pl["start"], pl["size"]] for pl in p["placements"]] == by_id[p["id"]]["placements"]
        assert (p["copyEngines"], p["decoders"], p["encoders"], p["jpegs"], p["ofas"]) == tuple(
            by_id[p["id"]][k] for k in ("ce", "dec", "enc", "jpg", "ofa")
        )
