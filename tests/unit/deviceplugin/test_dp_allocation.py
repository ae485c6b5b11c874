"""Allocation as a pure function: ID validation, sharing checks, each device-list strategy,
the index device-id strategy, and PASS_DEVICE_SPECS device nodes (MIG capability nodes too)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gpu_operator.deviceplugin.allocation import (
    AllocationError,
    DeviceNode,
    MountSpec,
    allocate,
)
from gpu_operator.deviceplugin.config_v1 import load_config
from gpu_operator.deviceplugin.devnodes import device_node_table, parse_mig_minors
from gpu_operator.deviceplugin.resources import Resource, build_resources
from gpu_operator.deviceplugin.settings import PluginSettings, resolve_settings
from gpu_operator.gpu import Nvml

pytestmark = pytest.mark.timeout(20)


def resource_of(nvml: Nvml, name: str, settings: PluginSettings) -> Resource:
    gpus = nvml.gpus()
    migs = {g.index: nvml.mig_devices(g.index) for g in gpus}
    return build_resources(gpus, migs, settings).by_name(name)


@pytest.fixture
def t4x2(open_sim: Callable[..., Nvml]) -> Nvml:
    return open_sim("t4x2")


def test_envvar_lists_the_uuids_in_request_order(t4x2: Nvml) -> None:
    settings = resolve_settings()
    gpu = resource_of(t4x2, "nvidia.com/gpu", settings)
    uuids = [g.uuid for g in t4x2.gpus()]
    got = allocate(gpu, [uuids[1], uuids[0]], settings)
    assert got.envs == {"NVIDIA_VISIBLE_DEVICES": f"{uuids[1]},{uuids[0]}"}
    assert (got.mounts, got.devices, got.annotations, got.cdi_devices) == ((), (), {}, ())


def test_index_strategy_puts_indexes_in_the_env_but_kubelet_ids_stay_uuids(t4x2: Nvml) -> None:
    settings = resolve_settings({"device_id_strategy": "index"})
    gpu = resource_of(t4x2, "nvidia.com/gpu", settings)
    got = allocate(gpu, [t4x2.gpus()[1].uuid], settings)
    assert got.envs == {"NVIDIA_VISIBLE_DEVICES": "1"}


def test_volume_mounts_hide_the_ids_from_the_environment(t4x2: Nvml) -> None:
    settings = resolve_settings({"device_list_strategy": "volume-mounts"})
    uuid = t4x2.gpus()[0].uuid
    got = allocate(resource_of(t4x2, "nvidia.com/gpu", settings), [uuid], settings)
    assert got.envs == {"NVIDIA_VISIBLE_DEVICES": "/var/run/nvidia-container-devices"}
    assert got.mounts == (MountSpec(f"/var/run/nvidia-container-devices/{uuid}", "/dev/null"),)


def test_cdi_annotations_carry_qualified_cdi_names_and_no_env(t4x2: Nvml) -> None:
    settings = resolve_settings({"device_list_strategy": "cdi-annotations"})
    uuid = t4x2.gpus()[0].uuid
    got = allocate(
        resource_of(t4x2, "nvidia.com/gpu", settings), [uuid], settings, annotation_id="abc"
    )
    assert got.envs == {}
    assert got.annotations == {
        "cdi.k8s.io/nvidia-device-plugin_abc": f"k8s.device-plugin.nvidia.com/gpu={uuid}"
    }


def test_cdi_cri_fills_cdi_devices_and_can_be_combined_with_envvar(t4x2: Nvml) -> None:
    settings = resolve_settings(
        {"device_list_strategy": "envvar,cdi-cri", "gds_enabled": "true", "imex_channel_ids": "0"}
    )
    uuid = t4x2.gpus()[1].uuid
    got = allocate(resource_of(t4x2, "nvidia.com/gpu", settings), [uuid], settings)
    assert got.cdi_devices == (
        f"k8s.device-plugin.nvidia.com/gpu={uuid}",
        "k8s.device-plugin.nvidia.com/imex-channel=0",
        "k8s.device-plugin.nvidia.com/gds=all",
    )
    assert got.envs == {
        "NVIDIA_VISIBLE_DEVICES": uuid,
        "NVIDIA_IMEX_CHANNELS": "0",
        "NVIDIA_GDS": "enabled",
    }


def test_unknown_ids_are_refused(t4x2: Nvml) -> None:
    settings = resolve_settings()
    with pytest.raises(AllocationError, match="unknown device: GPU-nope"):
        allocate(resource_of(t4x2, "nvidia.com/gpu", settings), ["GPU-nope"], settings)


SHARED = "sharing:\n  timeSlicing:\n{extra}    resources:\n    - name: gpu\n      replicas: 3\n"


def test_replicas_of_one_gpu_collapse_into_one_visible_device(t4x2: Nvml) -> None:
    settings = resolve_settings(config=load_config(SHARED.format(extra="")))
    gpu = resource_of(t4x2, "nvidia.com/gpu", settings)
    uuid = t4x2.gpus()[0].uuid
    got = allocate(gpu, [f"{uuid}::0", f"{uuid}::2"], settings)
    assert got.envs["NVIDIA_VISIBLE_DEVICES"] == uuid


def test_fail_requests_greater_than_one_refuses_two_replicas(t4x2: Nvml) -> None:
    config = load_config(SHARED.format(extra="    failRequestsGreaterThanOne: true\n"))
    settings = resolve_settings(config=config)
    gpu = resource_of(t4x2, "nvidia.com/gpu", settings)
    uuid = t4x2.gpus()[0].uuid
    assert allocate(gpu, [f"{uuid}::1"], settings).envs["NVIDIA_VISIBLE_DEVICES"] == uuid
    with pytest.raises(AllocationError, match="maximum request size for shared resources is 1"):
        allocate(gpu, [f"{uuid}::0", f"{uuid}::1"], settings)


def test_mps_adds_the_pipe_directory_and_its_mounts(open_sim: Callable[..., Nvml]) -> None:
    nvml = open_sim("h200")
    config = load_config(SHARED.format(extra="").replace("timeSlicing", "mps"))
    settings = resolve_settings({"mps_root": "/run/nvidia/mps"}, {}, config)
    got = allocate(
        resource_of(nvml, "nvidia.com/gpu", settings), [f"{nvml.gpus()[0].uuid}::0"], settings
    )
    assert got.envs["CUDA_MPS_PIPE_DIRECTORY"] == "/mps/nvidia.com/gpu/pipe"
    assert MountSpec("/mps/nvidia.com/gpu/pipe", "/run/nvidia/mps/nvidia.com/gpu/pipe") in (
        got.mounts
    )
    assert MountSpec("/dev/shm", "/run/nvidia/mps/shm") in got.mounts


def fake_host(root: Path, minors: list[int], mig_minors: str = "") -> tuple[Path, Path]:
    dev = root / "host"
    for name in ["nvidiactl", "nvidia-uvm", *(f"nvidia{m}" for m in minors)]:
        (dev / "dev" / name).parent.mkdir(parents=True, exist_ok=True)
        (dev / "dev" / name).touch()
    proc = root / "proc"
    (proc / "driver/nvidia-caps").mkdir(parents=True)
    (proc / "driver/nvidia-caps/mig-minors").write_text(mig_minors)
    for line in mig_minors.splitlines():
        cap = dev / "dev/nvidia-caps" / f"nvidia-cap{line.split()[1]}"
        cap.parent.mkdir(parents=True, exist_ok=True)
        cap.touch()
    return dev, proc


def test_pass_device_specs_gives_control_nodes_and_the_gpu_node(t4x2: Nvml, tmp_path: Path) -> None:
    dev, proc = fake_host(tmp_path, [0, 1])
    settings = resolve_settings({"pass_device_specs": "true", "dev_root": str(dev)})
    gpu = resource_of(t4x2, "nvidia.com/gpu", settings)
    nodes = device_node_table(gpu.devices, dev_root=str(dev), proc_root=str(proc))
    minor = t4x2.gpus()[1].minor_number
    got = allocate(gpu, [t4x2.gpus()[1].uuid], settings, nodes)
    assert got.devices == (
        DeviceNode("/dev/nvidiactl", f"{dev}/dev/nvidiactl"),
        DeviceNode("/dev/nvidia-uvm", f"{dev}/dev/nvidia-uvm"),
        DeviceNode(f"/dev/nvidia{minor}", f"{dev}/dev/nvidia{minor}"),
    )
    assert allocate(gpu, [t4x2.gpus()[1].uuid], resolve_settings(), nodes).devices == ()


def test_pass_device_specs_for_a_mig_device_adds_its_gi_and_ci_capability_nodes(
    node: Callable[..., Nvml], tmp_path: Path
) -> None:
    nvml = node("dgx-a100", "all-balanced")
    settings = resolve_settings({"pass_device_specs": "true", "mig_strategy": "mixed"})
    big = resource_of(nvml, "nvidia.com/mig-3g.20gb", settings)
    device = big.devices[0]
    minor, gi, ci = device.minor, device.gpu_instance_id, device.compute_instance_id
    mig_minors = f"gpu{minor}/gi{gi}/access 21\ngpu{minor}/gi{gi}/ci{ci}/access 22\n"
    dev, proc = fake_host(tmp_path, [minor], mig_minors)
    nodes = device_node_table(big.devices, dev_root=str(dev), proc_root=str(proc))
    got = allocate(big, [device.id], settings, nodes)
    assert [n.container_path for n in got.devices] == [
        "/dev/nvidiactl",
        "/dev/nvidia-uvm",
        f"/dev/nvidia{minor}",
        "/dev/nvidia-caps/nvidia-cap21",
        "/dev/nvidia-caps/nvidia-cap22",
    ]
    assert got.envs == {"NVIDIA_VISIBLE_DEVICES": device.id}


def test_mig_minors_lines_parse_and_junk_is_skipped() -> None:
    assert parse_mig_minors("config 1\ngpu0/gi1/access 12\nbroken\ngpu0/gi1/ci0/access x\n") == {
        "config": 1,
        "gpu0/gi1/access": 12,
    }
