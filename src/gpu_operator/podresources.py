"""The kubelet PodResources ``List`` call: which pod's container holds which device.

The one kubelet API client outside the device plugin; the exporter uses it to attribute
series to pods, the MIG manager to name the pods that hold a GPU it must change. A missing
socket means "no pods known", not an error, as upstream; a call that fails raises ``OSError``
so the caller keeps what it had and says why.

The call is one unary gRPC request over the kubelet's unix socket, spoken with ``h2`` (HTTP/2,
pure Python: ``grpc_h2.client``) and the response's protobuf read field by field: grpcio and
the protobuf runtime would cost an exporter started with ``-k`` ~20 MiB (issue 15) for this one
call. The wire format is gRPC's (``PROTOCOL-HTTP2.md``): a POST to
``/v1.PodResourcesLister/List``, a 5-byte length prefix on the message, the status in the
``grpc-status`` trailer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from gpu_operator.grpc_h2.client import unary_call
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


LIST = "/v1.PodResourcesLister/List"


def list_pod_devices(socket: Path, timeout_s: float = TIMEOUT_S) -> list[ContainerDevices]:
    if not socket.exists():
        return []
    try:
        body = unary_call(socket, LIST, b"", timeout_s)
        return parse_list_response(body)
    except TimeoutError as error:
        raise OSError(f"PodResources List on {socket}: DEADLINE_EXCEEDED: {error}") from error
    except (OSError, ValueError) as error:
        raise OSError(f"PodResources List on {socket}: {error}") from error


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(data):
            raise ValueError("truncated protobuf varint")
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i
        shift += 7


def fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """A protobuf message's fields in wire order: (number, varint value or bytes)."""
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, i = _varint(data, i)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, i = data[i : i + size], i + size
        elif wire == 2:
            size, i = _varint(data, i)
            value, i = data[i : i + size], i + size
        else:
            raise ValueError(f"protobuf wire type {wire} (field {number}) is not supported")
        if i > len(data):
            raise ValueError(f"truncated protobuf field {number}")
        yield number, value


def _texts(data: bytes, number: int) -> list[str]:
    return [v.decode() for n, v in fields(data) if n == number and isinstance(v, bytes)]


def _messages(data: bytes, number: int) -> list[bytes]:
    return [v for n, v in fields(data) if n == number and isinstance(v, bytes)]


DRA_RESOURCE_PREFIX = "dra:"
"""Ours: a DRA claim's device is listed as resource ``dra:<driver>``, device id its name."""


def parse_list_response(data: bytes) -> list[ContainerDevices]:
    """``ListPodResourcesResponse`` (podresources/v1): pod_resources = 1 {name = 1,
    namespace = 2, containers = 3 {name = 1, devices = 2 {resource_name = 1,
    device_ids = 2}, dynamic_resources = 5 {claim_resources = 4 {driver_name = 2,
    device_name = 4}}}}; other fields are skipped."""
    out = []
    for pod in _messages(data, 1):
        name, namespace = "".join(_texts(pod, 1)), "".join(_texts(pod, 2))
        for container in _messages(pod, 3):
            container_name = "".join(_texts(container, 1))
            for devices in _messages(container, 2):
                out.append(
                    ContainerDevices(
                        name,
                        namespace,
                        container_name,
                        "".join(_texts(devices, 1)),
                        tuple(_texts(devices, 2)),
                    )
                )
            for dynamic in _messages(container, 5):
                for claimed in _messages(dynamic, 4):
                    driver = DRA_RESOURCE_PREFIX + "".join(_texts(claimed, 2))
                    device = ("".join(_texts(claimed, 4)),)
                    out.append(ContainerDevices(name, namespace, container_name, driver, device))
    return out


def pod_resources_source(socket: Path) -> Callable[[], list[ContainerDevices]]:
    return lambda: list_pod_devices(socket)
