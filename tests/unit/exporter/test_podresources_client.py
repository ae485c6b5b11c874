"""The PodResources ``List`` client without grpcio (issue 15: the exporter with ``-k``): against
a real grpcio server on a unix socket, it reads what the server sends (big replies past
HTTP/2's 64 KiB window, fields it does not know), and a failed call is one ``OSError`` naming
the gRPC status; the response parser agrees with the protobuf runtime's own encoding."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest

from gpu_operator.podresources import ContainerDevices, list_pod_devices, parse_list_response
from gpu_operator.protos import podresources_v1_pb2 as api
from gpu_operator.protos.grpc_api import PodResourcesListerServicerBase, add_pod_resources_servicer

Reply = Callable[[Any], api.ListPodResourcesResponse]


def response(pods: int, devices_each: int = 1) -> api.ListPodResourcesResponse:
    """``pods`` pods of two containers; fields the client skips set too (cpu ids, memory,
    topology, dynamic resources)."""
    out = api.ListPodResourcesResponse()
    for p in range(pods):
        pod = out.pod_resources.add(name=f"pod-{p}", namespace=f"ns-{p % 3}")
        for c in ("main", "sidecar"):
            container = pod.containers.add(name=c, cpu_ids=[1, 2, 300])
            container.memory.add(memory_type="memory", size=1 << 33)
            devices = container.devices.add(
                resource_name="nvidia.com/gpu",
                device_ids=[f"GPU-{p}-{c}-{d}" for d in range(devices_each)],
            )
            devices.topology.nodes.add(ID=1)
    return out


def expected(reply: api.ListPodResourcesResponse) -> list[ContainerDevices]:
    return [
        ContainerDevices(p.name, p.namespace, c.name, d.resource_name, tuple(d.device_ids))
        for p in reply.pod_resources
        for c in p.containers
        for d in c.devices
    ]


class Lister(PodResourcesListerServicerBase):
    def __init__(self) -> None:
        self.reply: Reply = lambda context: api.ListPodResourcesResponse()

    def List(self, request: Any, context: Any) -> api.ListPodResourcesResponse:
        return self.reply(context)


@pytest.fixture
def kubelet(tmp_path: Path) -> Iterator[tuple[Lister, Path]]:
    socket = tmp_path / "kubelet.sock"
    lister = Lister()
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    add_pod_resources_servicer(lister, server)
    server.add_insecure_port(f"unix://{socket}")
    server.start()
    yield lister, socket
    server.stop(grace=None).wait(5)


def test_a_small_reply_is_every_container_s_devices(kubelet: tuple[Lister, Path]) -> None:
    lister, socket = kubelet
    reply = response(3, devices_each=2)
    lister.reply = lambda context: reply
    assert list_pod_devices(socket) == expected(reply)
    assert len(expected(reply)) == 6


def test_an_empty_node_is_no_devices(kubelet: tuple[Lister, Path]) -> None:
    assert list_pod_devices(kubelet[1]) == []


def test_a_reply_past_the_flow_control_window_arrives_whole(
    kubelet: tuple[Lister, Path],
) -> None:
    lister, socket = kubelet
    reply = response(1000, devices_each=8)
    assert reply.ByteSize() > 4 * 65535  # several windows' worth: WINDOW_UPDATEs must flow
    lister.reply = lambda context: reply
    assert list_pod_devices(socket) == expected(reply)


def test_an_error_status_is_one_oserror_with_its_name_and_message(
    kubelet: tuple[Lister, Path],
) -> None:
    lister, socket = kubelet

    def refuse(context: Any) -> api.ListPodResourcesResponse:
        context.abort(grpc.StatusCode.PERMISSION_DENIED, "no access for you: 100% sure")
        raise AssertionError("abort raises")

    lister.reply = refuse
    with pytest.raises(OSError, match="PERMISSION_DENIED: no access for you: 100% sure") as info:
        list_pod_devices(socket)
    assert str(socket) in str(info.value)


def test_a_socket_nobody_listens_on_is_an_oserror(tmp_path: Path) -> None:
    import socket as sockets

    path = tmp_path / "dead.sock"
    with sockets.socket(sockets.AF_UNIX) as s:
        s.bind(str(path))  # the file exists, nothing accepts
    with pytest.raises(OSError, match=f"PodResources List on {path}"):
        list_pod_devices(path)


def test_a_missing_socket_is_no_pods_not_an_error(tmp_path: Path) -> None:
    assert list_pod_devices(tmp_path / "absent.sock") == []


def test_the_parser_reads_what_the_protobuf_runtime_writes() -> None:
    reply = response(5, devices_each=3)
    assert parse_list_response(reply.SerializeToString()) == expected(reply)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\x0a\x05ab", id="length past the end"),
        pytest.param(b"\x08", id="truncated varint"),
        pytest.param(b"\x0b", id="group wire type"),
    ],
)
def test_a_malformed_reply_is_a_value_error(data: bytes) -> None:
    with pytest.raises(ValueError, match="protobuf"):
        parse_list_response(data)
