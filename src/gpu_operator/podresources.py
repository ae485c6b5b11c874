"""The kubelet PodResources ``List`` call: which pod's container holds which device.

The one kubelet API client outside the device plugin that speaks gRPC; the exporter uses it to
attribute series to pods, the MIG manager to name the pods that hold a GPU it must change. A
missing socket means "no pods known", not an error, as upstream; a call that fails raises
``OSError`` so the caller keeps what it had and says why. gRPC is imported by the call only,
so the records, ``device_uuid`` and ``SOCKET`` cost nothing to import (the exporter's pure pod
attribution and its settings use them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gpu_operator.names import POD_RESOURCES_SOCKET

TIMEOUT_S = 10.0
SOCKET = POD_RESOURCES_SOCKET


def device_uuid(device_id: str) -> str:
    """The device behind a device plugin id: a time-sliced replica ``GPU-…::3`` is ``GPU-…``."""
    return device_id.split("::", 1)[0]


@dataclass(frozen=True)
class ContainerDevices:
    """One container's devices of one resource, as PodResources ``List`` reports them."""

    pod: str
    namespace: str
    container: str
    resource_name: str
    device_ids: tuple[str, ...]


def list_pod_devices(socket: Path, timeout_s: float = TIMEOUT_S) -> list[ContainerDevices]:
    if not socket.exists():
        return []
    import grpc

    from gpu_operator.protos import podresources_v1_pb2 as api
    from gpu_operator.protos.grpc_api import PodResourcesListerStub

    with grpc.insecure_channel(f"unix://{socket}") as channel:
        try:
            response = PodResourcesListerStub(channel).List(
                api.ListPodResourcesRequest(), timeout=timeout_s
            )
        except grpc.RpcError as error:
            raise OSError(
                f"PodResources List on {socket}: {error.code().name}: {error.details()}"
            ) from error
    return [
        ContainerDevices(
            pod.name,
            pod.namespace,
            container.name,
            devices.resource_name,
            tuple(devices.device_ids),
        )
        for pod in response.pod_resources
        for container in pod.containers
        for devices in container.devices
    ]


def pod_resources_source(socket: Path) -> Callable[[], list[ContainerDevices]]:
    return lambda: list_pod_devices(socket)
