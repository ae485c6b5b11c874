"""The device plugin on the real GPUs of this machine, through the kubelet stand-in: strategy
``none`` (and ``mixed`` when a GPU already has MIG devices), read only — no MIG change, no
fault injection. Skipped where no driver is loaded."""

from __future__ import annotations

import functools
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpu_operator.deviceplugin.plugin import DevicePlugin
from gpu_operator.deviceplugin.resources import mig_resource_profile
from gpu_operator.deviceplugin.settings import resolve_settings
from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.sandbox.kubelet import Kubelet

pytestmark = pytest.mark.timeout(60)
GPU = "nvidia.com/gpu"


def has_capacity(kubelet: Kubelet, resource: str) -> bool:
    return kubelet.capacity(resource) > 0


@pytest.fixture
def kubelet() -> Iterator[Kubelet]:
    root = Path(tempfile.mkdtemp(prefix="dp-gpu-", dir="/tmp"))
    stand_in = Kubelet(root / "device-plugins", root / "pod-resources", dial_timeout_s=5)
    stand_in.start()
    yield stand_in
    stand_in.stop()
    shutil.rmtree(root, ignore_errors=True)


def run_plugin(kubelet: Kubelet, **flags: str) -> DevicePlugin:
    settings = resolve_settings({"kubelet_socket": str(kubelet.socket), **flags}, {})
    plugin = DevicePlugin(settings, HardwareSettings(sim=None))
    plugin.start()
    return plugin


def test_strategy_none_advertises_every_real_gpu_healthy_by_uuid(
    real_nvml: Nvml, kubelet: Kubelet
) -> None:
    gpus = real_nvml.gpus()
    plugin = run_plugin(kubelet)
    try:
        assert kubelet.wait_until(lambda: kubelet.allocatable(GPU) == len(gpus), 15)
        state = kubelet.state(GPU)
        assert sorted(state.devices) == sorted(g.uuid for g in gpus)
        assert {d.health for d in state.devices.values()} == {"Healthy"}
        for gpu in gpus:
            expected = (gpu.numa_node,) if gpu.numa_node is not None else ()
            assert state.devices[gpu.uuid].numa_nodes == expected
        [request] = kubelet.manager.registrations
        assert (request.version, request.endpoint) == ("v1beta1", "nvidia-gpu.sock")
    finally:
        plugin.stop()


def test_allocate_on_a_real_gpu_returns_its_uuid_and_device_nodes(
    real_nvml: Nvml, kubelet: Kubelet
) -> None:
    plugin = run_plugin(kubelet, pass_device_specs="true")
    try:
        assert kubelet.wait_until(lambda: kubelet.allocatable(GPU) > 0, 15)
        pod = kubelet.admit_pod("real", [("main", {GPU: 1})])
        [uuid] = pod.containers[0].devices[GPU]
        response = pod.containers[0].responses[GPU]
        assert dict(response.envs) == {"NVIDIA_VISIBLE_DEVICES": uuid}
        gpu = next(g for g in real_nvml.gpus() if g.uuid == uuid)
        paths = [d.container_path for d in response.devices]
        if Path("/dev/nvidiactl").exists():
            assert "/dev/nvidiactl" in paths
        if Path(f"/dev/nvidia{gpu.minor_number}").exists():
            assert f"/dev/nvidia{gpu.minor_number}" in paths
    finally:
        plugin.stop()


def test_the_health_watch_keeps_idle_real_gpus_healthy(real_nvml: Nvml, kubelet: Kubelet) -> None:
    plugin = run_plugin(kubelet)
    try:
        count = len(real_nvml.gpus())
        assert kubelet.wait_until(lambda: kubelet.allocatable(GPU) == count, 15)
        # Two seconds of real NVML event waits and lost-GPU checks change nothing.
        assert not kubelet.wait_until(lambda: kubelet.allocatable(GPU) != count, 2.0)
    finally:
        plugin.stop()


def test_mixed_strategy_advertises_existing_mig_devices(real_nvml: Nvml, kubelet: Kubelet) -> None:
    migs = [m for g in real_nvml.gpus() for m in real_nvml.mig_devices(g.index)]
    if not migs:
        pytest.skip("no MIG devices on this machine (the gpu suite never creates any)")
    plugin = run_plugin(kubelet, mig_strategy="mixed")
    try:
        for mig in migs:
            profile = mig_resource_profile(mig.profile)
            if profile is None:
                continue  # a CI smaller than its GI: never advertised, as upstream
            resource = f"nvidia.com/mig-{profile}"
            assert kubelet.wait_until(functools.partial(has_capacity, kubelet, resource), 15)
            assert mig.uuid in kubelet.state(resource).devices
    finally:
        plugin.stop()
