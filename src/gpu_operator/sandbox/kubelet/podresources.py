"""The stand-in kubelet's ``v1.PodResourcesLister`` server: ``List``, ``GetAllocatableResources``
and ``Get``, answered from the kubelet's allocations and device lists (what dcgm-exporter reads
for pod attribution), and each container's DRA claims (``dynamic_resources``: claim, driver,
pool, device and CDI ids) from what the DRA manager prepared."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from gpu_operator.protos import podresources_v1_pb2 as pr
from gpu_operator.protos.grpc_api import PodResourcesListerServicerBase
from gpu_operator.sandbox.kubelet.devicemanager import DeviceManager
from gpu_operator.sandbox.kubelet.dra import DraManager, PodClaims


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


def _dynamic(claims: PodClaims | None, container: str) -> list[pr.DynamicResource]:
    if claims is None:
        return []
    return [
        pr.DynamicResource(
            claim_name=name,
            claim_namespace=namespace,
            claim_resources=[
                pr.ClaimResource(
                    cdi_devices=[pr.CDIDevice(name=i) for i in d.cdi_ids],
                    driver_name=driver,
                    pool_name=d.pool,
                    device_name=d.device,
                )
                for d in devices
            ],
        )
        for namespace, name, driver, devices in claims.devices_of(container)
    ]


class PodResourcesServer(PodResourcesListerServicerBase):
    def __init__(
        self,
        manager: DeviceManager,
        pods: Callable[[], list[PodRecord]],
        dra: DraManager | None = None,
    ):
        self._manager = manager
        self._pods = pods
        self._dra = dra

    def _claims(self) -> dict[tuple[str, str], PodClaims]:
        if self._dra is None:
            return {}
        with self._dra.changed:
            return {(c.namespace, c.name): c for c in self._dra.prepared.values()}

    def _all(self) -> list[PodRecord]:
        """The pods with devices, and those with only DRA claims."""
        pods = list(self._pods())
        known = {(p.namespace, p.name) for p in pods}
        for (namespace, name), claims in self._claims().items():
            if (namespace, name) not in known:
                pods.append(
                    PodRecord(name, namespace, [ContainerRecord(c) for c in claims.containers])
                )
        return pods

    def _numa(self, resource: str, device_id: str) -> tuple[int, ...]:
        state = self._manager.resources.get(resource)
        device = state.devices.get(device_id) if state else None
        return device.numa_nodes if device else ()

    def _pod(self, pod: PodRecord) -> pr.PodResources:
        claims = self._claims().get((pod.namespace, pod.name))
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
            containers.append(
                pr.ContainerResources(
                    name=container.name,
                    devices=devices,
                    dynamic_resources=_dynamic(claims, container.name),
                )
            )
        return pr.PodResources(name=pod.name, namespace=pod.namespace, containers=containers)

    def List(self, request: Any, context: Any) -> pr.ListPodResourcesResponse:
        with self._manager.changed:
            return pr.ListPodResourcesResponse(pod_resources=[self._pod(p) for p in self._all()])

    def Get(self, request: Any, context: Any) -> pr.GetPodResourcesResponse:
        with self._manager.changed:
            for pod in self._all():
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
