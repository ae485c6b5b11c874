"""Health reaching the kubelet (XIDs, ignored XIDs, MIG-precise, GPU lost, opt-in recovery)
and the lifecycle (kubelet restart, plugin before kubelet, a vanished socket)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gpu_operator.deviceplugin.plugin import DevicePlugin
from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.gpu.fake import faults
from gpu_operator.gpu.fake.state import StateStore
from gpu_operator.sandbox.kubelet import Kubelet

pytestmark = pytest.mark.timeout(30)

StartPlugin = Callable[..., DevicePlugin]
GPU = "nvidia.com/gpu"


def healthy(kubelet: Kubelet, resource: str) -> dict[str, str]:
    """Device ID → health as the kubelet last heard it."""
    return {d.id: d.health for d in kubelet.state(resource).devices.values()}


def uuids(hardware: HardwareSettings) -> list[str]:
    with Nvml.open(hardware) as nvml:
        return [g.uuid for g in nvml.gpus()]


def started(kubelet: Kubelet, start_plugin: StartPlugin, preset: str, **kw: object) -> int:
    start_plugin(preset, **kw)
    assert kubelet.wait_until(lambda: kubelet.allocatable(GPU) == kubelet.capacity(GPU) > 0)
    return len(kubelet.state(GPU).messages)


def test_a_critical_xid_makes_the_gpu_unhealthy_in_the_next_message(
    kubelet: Kubelet,
    start_plugin: StartPlugin,
    hardware: Callable[[str], HardwareSettings],
    store: Callable[[str], StateStore],
) -> None:
    before = started(kubelet, start_plugin, "dgx-a100")
    gpus = uuids(hardware("dgx-a100"))
    faults.inject_xid(store("dgx-a100"), 3, 48)
    assert kubelet.wait_until(lambda: len(kubelet.state(GPU).messages) > before)
    _, message = kubelet.state(GPU).messages[before]
    health = {d.ID: d.health for d in message.devices}
    assert health == {u: "Unhealthy" if i == 3 else "Healthy" for i, u in enumerate(gpus)}
    assert (kubelet.capacity(GPU), kubelet.allocatable(GPU)) == (8, 7)


def test_ignored_xids_and_ecc_events_leave_devices_healthy(
    kubelet: Kubelet,
    start_plugin: StartPlugin,
    hardware: Callable[[str], HardwareSettings],
    store: Callable[[str], StateStore],
) -> None:
    before = started(kubelet, start_plugin, "dgx-a100", env={"DP_DISABLE_HEALTHCHECKS": "48"})
    gpus = uuids(hardware("dgx-a100"))
    for xid in (13, 31, 43, 45, 68, 109, 48):
        faults.inject_xid(store("dgx-a100"), 2, xid)
    faults.inject_ecc(store("dgx-a100"), 2, double_bit=True)  # logged and skipped, as upstream
    faults.inject_xid(store("dgx-a100"), 5, 94)  # the marker: the events before it were seen
    assert kubelet.wait_until(lambda: len(kubelet.state(GPU).messages) > before)
    _, message = kubelet.state(GPU).messages[before]
    unhealthy = [d.ID for d in message.devices if d.health == "Unhealthy"]
    assert unhealthy == [gpus[5]]


def test_an_xid_on_a_mig_device_marks_only_that_device(
    kubelet: Kubelet,
    start_plugin: StartPlugin,
    mig_layout: Callable[[str, str], None],
    hardware: Callable[[str], HardwareSettings],
    store: Callable[[str], StateStore],
) -> None:
    mig_layout("dgx-a100", "all-balanced")
    plugin = start_plugin("dgx-a100", mig_strategy="mixed")
    big, small, medium = "nvidia.com/mig-3g.20gb", "nvidia.com/mig-1g.5gb", "nvidia.com/mig-2g.10gb"
    assert kubelet.wait_until(
        lambda: [kubelet.allocatable(r) for r in (big, small, medium)] == [8, 16, 8]
    )
    with Nvml.open(hardware("dgx-a100")) as nvml:
        on_gpu0 = nvml.mig_devices(0)
    target = next(m for m in on_gpu0 if m.profile == "3g.20gb")
    faults.inject_xid(store("dgx-a100"), 0, 48, target.gpu_instance_id, target.compute_instance_id)
    assert kubelet.wait_until(lambda: healthy(kubelet, big)[target.uuid] == "Unhealthy")
    assert kubelet.allocatable(big) == 7
    assert plugin.board is not None
    assert [m.uuid for m in on_gpu0 if not plugin.board.healthy(m.uuid)] == [target.uuid]
    assert [kubelet.allocatable(small), kubelet.allocatable(medium)] == [16, 8]


def test_a_lost_gpu_goes_unhealthy_even_with_xid_79_ignored(
    kubelet: Kubelet,
    start_plugin: StartPlugin,
    hardware: Callable[[str], HardwareSettings],
    store: Callable[[str], StateStore],
) -> None:
    started(kubelet, start_plugin, "a30x4", env={"DP_DISABLE_HEALTHCHECKS": "79"})
    lost = uuids(hardware("a30x4"))[1]
    faults.lose_gpu(store("a30x4"), 1)
    assert kubelet.wait_until(lambda: healthy(kubelet, GPU)[lost] == "Unhealthy")
    assert kubelet.allocatable(GPU) == 3


def test_with_recovery_a_transient_xid_heals_but_a_lost_gpu_does_not(
    kubelet: Kubelet,
    start_plugin: StartPlugin,
    hardware: Callable[[str], HardwareSettings],
    store: Callable[[str], StateStore],
) -> None:
    started(kubelet, start_plugin, "a30x4", env={"DP_HEALTH_RECOVERY": "300ms"})
    gpus = uuids(hardware("a30x4"))
    faults.lose_gpu(store("a30x4"), 2)
    faults.inject_xid(store("a30x4"), 1, 48)
    assert kubelet.wait_until(lambda: kubelet.allocatable(GPU) == 2)
    assert kubelet.wait_until(lambda: healthy(kubelet, GPU)[gpus[1]] == "Healthy", 5)
    assert healthy(kubelet, GPU)[gpus[2]] == "Unhealthy"
    assert kubelet.allocatable(GPU) == 3


def test_without_recovery_an_unhealthy_gpu_stays_unhealthy(
    kubelet: Kubelet,
    start_plugin: StartPlugin,
    hardware: Callable[[str], HardwareSettings],
    store: Callable[[str], StateStore],
) -> None:
    started(kubelet, start_plugin, "t4")
    faults.inject_xid(store("t4"), 0, 48)
    assert kubelet.wait_until(lambda: kubelet.allocatable(GPU) == 0)
    assert not kubelet.wait_until(lambda: kubelet.allocatable(GPU) == 1, 1.0)


def test_after_a_kubelet_restart_the_plugin_registers_again(
    kubelet: Kubelet, start_plugin: StartPlugin
) -> None:
    plugin = start_plugin("dgx-a100")
    assert kubelet.wait_until(lambda: kubelet.allocatable(GPU) == 8)
    assert plugin.supervisor is not None
    before = plugin.supervisor.registrations
    kubelet.restart()  # removes nvidia-gpu.sock, re-creates kubelet.sock
    assert plugin.supervisor.wait_registered(before + 1, 30.0)
    assert kubelet.manager.registrations[-1].resource_name == GPU
    assert kubelet.wait_until(lambda: kubelet.allocatable(GPU) == 8)
    assert (kubelet.plugin_dir / "nvidia-gpu.sock").is_socket()


def test_a_plugin_started_before_the_kubelet_registers_once_it_appears(
    sockets_dir: Path, hardware: Callable[[str], HardwareSettings]
) -> None:
    from gpu_operator.deviceplugin.settings import resolve_settings

    late = Kubelet(sockets_dir / "late")
    settings = resolve_settings({"kubelet_socket": str(late.socket)})
    plugin = DevicePlugin(settings, hardware("t4"))
    plugin.start()
    try:
        assert plugin.supervisor is not None
        assert not plugin.supervisor.wait_registered(1, 0.4)  # retrying with backoff
        late.start()
        assert late.wait_until(lambda: late.allocatable(GPU) == 1, 2.0)
    finally:
        plugin.stop()
        late.stop()


def test_a_deleted_plugin_socket_is_recreated_and_registered_again(
    kubelet: Kubelet, start_plugin: StartPlugin
) -> None:
    plugin = start_plugin("t4")
    assert kubelet.wait_until(lambda: kubelet.allocatable(GPU) == 1)
    assert plugin.supervisor is not None
    before = plugin.supervisor.registrations
    (kubelet.plugin_dir / "nvidia-gpu.sock").unlink()
    assert plugin.supervisor.wait_registered(before + 1, 2.0)
    assert kubelet.wait_until(lambda: kubelet.allocatable(GPU) == 1)
    assert (kubelet.plugin_dir / "nvidia-gpu.sock").is_socket()
