"""Device health for the DRA driver: the device plugin's rules and monitor, reused as they are
(``deviceplugin.health``: which XIDs are critical, the GPU-lost check, the optional recovery
quiet period; ``DP_DISABLE_HEALTHCHECKS`` and friends read the same). The monitor records which
XID made each device unusable, so its taint can carry it (``gpu.nvidia.com/xid=<xid>``); an
unhealthy device without an XID fell off the bus (``gpu.nvidia.com/gpu-lost``)."""

from __future__ import annotations

from collections.abc import Sequence

from gpu_operator.deviceplugin.health import HealthBoard, HealthMonitor, PhysicalDevice
from gpu_operator.deviceplugin.settings import HealthSettings
from gpu_operator.dra.slices import Taint, health_taints
from gpu_operator.gpu import HardwareSettings
from gpu_operator.gpu.records import GpuInfo


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
        self._monitor = HealthMonitor(hardware, devices, self.board, settings)

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
