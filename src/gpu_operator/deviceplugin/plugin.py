"""The device plugin assembled: read the node through the NVML facade, build the resource
plan, and run one servicer per resource under the supervisor, with the health monitor.

``DevicePlugin(settings, hardware).start()`` / ``.stop()``; SIGHUP (in the command) builds a
new one from a fresh read of the node. Everything that decides lives in the pure modules.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from gpu_operator.deviceplugin.devnodes import device_node_table
from gpu_operator.deviceplugin.health import HealthBoard, HealthMonitor, PhysicalDevice
from gpu_operator.deviceplugin.preferred import ScoreFn, pair_score
from gpu_operator.deviceplugin.resources import ResourcePlan, build_resources
from gpu_operator.deviceplugin.servicer import DevicePluginServicer
from gpu_operator.deviceplugin.settings import DEVICE_PLUGIN_PATH, PluginSettings
from gpu_operator.deviceplugin.supervisor import Endpoint, PluginSupervisor
from gpu_operator.errors import GpuError
from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.gpu.records import GpuInfo, MigDevice

log = logging.getLogger(__name__)


class NoDevicesError(GpuError):
    """The node has no GPU to advertise (with ``FAIL_ON_INIT_ERROR=false``: wait, don't exit)."""


@dataclass(frozen=True)
class NodeView:
    """What the plugin read from NVML at start."""

    gpus: tuple[GpuInfo, ...]
    migs: dict[int, list[MigDevice]]
    scores: dict[tuple[int, int], int]

    def score(self) -> ScoreFn:
        return lambda a, b: self.scores.get((min(a, b), max(a, b)), 0)


def read_node(hardware: HardwareSettings) -> NodeView:
    with Nvml.open(hardware) as nvml:
        gpus = tuple(nvml.gpus())
        migs = {g.index: nvml.mig_devices(g.index) for g in gpus}
        scores = {}
        for a in gpus:
            for b in gpus:
                if a.index < b.index:
                    scores[(a.index, b.index)] = pair_score(nvml.topology(a.index, b.index))
    return NodeView(gpus=gpus, migs=migs, scores=scores)


def physical_devices(plan: ResourcePlan, view: NodeView) -> list[PhysicalDevice]:
    by_index = {g.index: g for g in view.gpus}
    out: dict[str, PhysicalDevice] = {}
    for resource in plan.resources:
        for d in resource.devices:
            out.setdefault(
                d.uuid,
                PhysicalDevice(
                    uuid=d.uuid,
                    gpu_index=d.gpu_index,
                    gpu_uuid=by_index[d.gpu_index].uuid,
                    gpu_instance_id=d.gpu_instance_id,
                    compute_instance_id=d.compute_instance_id,
                ),
            )
    return list(out.values())


class DevicePlugin:
    def __init__(
        self,
        settings: PluginSettings,
        hardware: HardwareSettings,
        *,
        proc_root: str = "/proc",
        poll_s: float = 0.05,
    ):
        self.settings = settings
        self.hardware = hardware
        self._proc_root = proc_root
        self._poll_s = poll_s
        self.plan: ResourcePlan | None = None
        self.board: HealthBoard | None = None
        self.supervisor: PluginSupervisor | None = None
        self._monitor: HealthMonitor | None = None
        self._lock = threading.Lock()

    @property
    def plugin_dir(self) -> Path:
        socket = self.settings.kubelet_socket
        return Path(socket).parent if socket else Path(DEVICE_PLUGIN_PATH)

    def start(self) -> None:
        """Read the node and start serving; ``ConfigError``/``GpuError`` when it can't."""
        with self._lock:
            self._start()

    def _start(self) -> None:
        view = read_node(self.hardware)
        if not view.gpus:
            raise NoDevicesError("no NVIDIA GPUs found on this node")
        plan = build_resources(view.gpus, view.migs, self.settings)
        for warning in plan.warnings:
            log.warning("%s", warning)
        if not plan.resources:
            raise NoDevicesError("no devices to advertise with this configuration")
        devices = physical_devices(plan, view)
        board = HealthBoard(d.uuid for d in devices)
        nodes = device_node_table(
            (d for r in plan.resources for d in r.devices),
            dev_root=self.settings.dev_root,
            proc_root=self._proc_root,
        )
        score = view.score()
        settings = self.settings

        def endpoint(resource_index: int) -> Endpoint:
            resource = plan.resources[resource_index]
            return Endpoint(
                resource_name=resource.name,
                socket_name=resource.socket_name,
                make_servicer=lambda stopping: DevicePluginServicer(
                    resource, board, settings, nodes=nodes, score=score, stopping=stopping
                ),
            )

        endpoints = [endpoint(i) for i in range(len(plan.resources))]
        kubelet = Path(settings.kubelet_socket) if settings.kubelet_socket else None
        supervisor = PluginSupervisor(
            endpoints, self.plugin_dir, kubelet, poll_s=self._poll_s, wake=board.wake
        )
        monitor = HealthMonitor(self.hardware, devices, board, settings.health)
        monitor.start()
        supervisor.start()
        self.plan, self.board, self.supervisor, self._monitor = plan, board, supervisor, monitor
        log.info(
            "advertising %s", ", ".join(f"{r.name} ({len(r.devices)})" for r in plan.resources)
        )

    def stop(self) -> None:
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        if self.supervisor is not None:
            self.supervisor.stop()
        if self._monitor is not None:
            self._monitor.stop()
        if self.board is not None:
            self.board.wake()
        self.supervisor = self._monitor = None
