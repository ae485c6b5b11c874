"""Device health for the DRA driver: the device plugin's rules, reused as they are
(``deviceplugin.health``: which XIDs are critical, the GPU-lost check, the optional recovery
quiet period; ``DP_DISABLE_HEALTHCHECKS`` and friends read the same), plus which XID made each
device unusable, so its taint can carry it (``gpu.nvidia.com/xid=<xid>``); an unhealthy device
without an XID fell off the bus (``gpu.nvidia.com/gpu-lost``)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from gpu_operator.deviceplugin.health import (
    HealthBoard,
    HealthMonitor,
    PhysicalDevice,
    affected_by,
    is_critical,
)
from gpu_operator.deviceplugin.settings import HealthSettings
from gpu_operator.dra.slices import Taint, health_taints
from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.gpu.records import GpuEvent, GpuInfo


class XidMonitor(HealthMonitor):
    """The device plugin's monitor that also remembers the last critical XID per device and
    which GPUs are lost."""

    def __init__(
        self,
        hardware: HardwareSettings,
        devices: Sequence[PhysicalDevice],
        board: HealthBoard,
        settings: HealthSettings,
        *,
        check_interval_s: float = 0.5,
    ):
        super().__init__(hardware, devices, board, settings, check_interval_s=check_interval_s)
        self._physical = list(devices)
        self._settings_ = settings
        self._xids: dict[str, int] = {}
        self._lost: set[int] = set()
        self._xid_lock = threading.Lock()

    def _on_event(self, event: GpuEvent) -> None:
        if is_critical(event, self._settings_):
            with self._xid_lock:
                for device in affected_by(event, self._physical):
                    self._xids[device.uuid] = event.data
        super()._on_event(event)

    def _check(self, nvml: Nvml, gpus: list[int]) -> None:
        lost = {index for index in gpus if nvml.is_lost(index)}
        with self._xid_lock:
            self._lost = lost
        super()._check(nvml, gpus)

    def xid(self, uuid: str) -> int | None:
        with self._xid_lock:
            return self._xids.get(uuid)

    def lost(self, gpu_index: int) -> bool:
        with self._xid_lock:
            return gpu_index in self._lost


class DeviceHealth:
    """The board and monitor of the node's full GPUs; ``taints()`` by device name."""

    def __init__(
        self,
        hardware: HardwareSettings,
        gpus: Sequence[tuple[str, GpuInfo]],
        settings: HealthSettings,
    ):
        self._names = {g.uuid: name for name, g in gpus}
        self._index = {g.uuid: g.index for _, g in gpus}
        devices = [PhysicalDevice(uuid=g.uuid, gpu_index=g.index, gpu_uuid=g.uuid) for _, g in gpus]
        self.board = HealthBoard(d.uuid for d in devices)
        self._monitor = XidMonitor(hardware, devices, self.board, settings)

    def start(self) -> None:
        self._monitor.start()

    def stop(self) -> None:
        self._monitor.stop()
        self.board.wake()

    def taints(self) -> dict[str, list[Taint]]:
        return {
            self._names[uuid]: health_taints(
                self._monitor.xid(uuid), self._monitor.lost(self._index[uuid])
            )
            for uuid in self.board.unhealthy_since()
            if uuid in self._names
        }
