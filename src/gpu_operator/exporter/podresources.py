"""The kubelet PodResources ``List`` call, as the exporter's pod source.

The one place outside the device plugin that speaks gRPC (the exporter is a kubelet API client
too). A missing socket means "no pods to attribute", not an error, as upstream; a call that
fails raises ``OSError`` so the exporter keeps its previous attribution and says why.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import grpc

from gpu_operator.exporter.pods import ContainerDevices
from gpu_operator.protos import podresources_v1_pb2 as api
from gpu_operator.protos.grpc_api import PodResourcesListerStub

TIMEOUT_S = 10.0


def list_pod_devices(socket: Path, timeout_s: float = TIMEOUT_S) -> list[ContainerDevices]:
    if not socket.exists():
        return []
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
