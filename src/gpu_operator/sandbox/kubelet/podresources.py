"""The stand-in kubelet's ``v1.PodResourcesLister`` server: ``List``, ``GetAllocatableResources``
and ``Get``, answered from the kubelet's allocations and device lists (what dcgm-exporter reads
for pod attribution)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from gpu_operator.protos import podresources_v1_pb2 as pr
from gpu_operator.protos.grpc_api import PodResourcesListerServicerBase
from gpu_operator.sandbox.kubelet.devicemanager import DeviceManager


@dataclass
class ContainerRecord:
    name: str
    devices: dict[str, list[str]] = field(default_factory=dict)
    """Resource name → device IDs allocated to the container."""
    responses: dict[str, Any] = field(default_factory=dict)
    """Resource name → the plugin's ``ContainerAllocateResponse``."""


@dataclass
class PodRecord:
    name: str
    namespace: str
    containers: list[ContainerRecord] = field(default_factory=list)


def _topology(numa: tuple[int, ...]) -> pr.TopologyInfo | None:
    return pr.TopologyInfo(nodes=[pr.NUMANode(ID=n) for n in numa]) if numa else None


class PodResourcesServer(PodResourcesListerServicerBase):
    def __init__(self, manager: DeviceManager, pods: Callable[[], list[PodRecord]]):
        self._manager = manager
        self._pods = pods

    def _numa(self, resource: str, device_id: str) -> tuple[int, ...]:
        state = self._manager.resources.get(resource)
        device = state.devices.get(device_id) if state else None
        return device.numa_nodes if device else ()

    def _pod(self, pod: PodRecord) -> pr.PodResources:
        containers = []
        for container in pod.containers:
            devices = []
            for resource, ids in container.devices.items():
                numa = sorted({n for i in ids for n in self._numa(resource, i)})
                devices.append(
                    pr.ContainerDevices(
                        resource_name=resource, device_ids=ids, topology=_topology(tuple(numa))
                    )
                )
            containers.append(pr.ContainerResources(name=container.name, devices=devices))
        return pr.PodResources(name=pod.name, namespace=pod.namespace, containers=containers)

    def List(self, request: Any, context: Any) -> pr.ListPodResourcesResponse:
        with self._manager.changed:
            return pr.ListPodResourcesResponse(pod_resources=[self._pod(p) for p in self._pods()])

    def Get(self, request: Any, context: Any) -> pr.GetPodResourcesResponse:
        with self._manager.changed:
            for pod in self._pods():
                if pod.name == request.pod_name and pod.namespace == request.pod_namespace:
                    return pr.GetPodResourcesResponse(pod_resources=self._pod(pod))
        context.abort(
            grpc.StatusCode.NOT_FOUND,
            f"pod {request.pod_namespace}/{request.pod_name} not found",
        )
        raise AssertionError("unreachable")

    def GetAllocatableResources(
        self, request: Any, context: Any
    ) -> pr.AllocatableResourcesResponse:
        with self._manager.changed:
            devices = [
                pr.ContainerDevices(
                    resource_name=state.name,
                    device_ids=[device_id],
                    topology=_topology(state.devices[device_id].numa_nodes),
                )
                for state in self._manager.resources.values()
                for device_id in state.healthy_ids()
            ]
        return pr.AllocatableResourcesResponse(devices=devices)
