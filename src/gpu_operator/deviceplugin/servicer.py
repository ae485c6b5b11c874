"""The ``v1beta1.DevicePlugin`` gRPC servicer of one resource: it only translates between
protobuf and the pure core (``allocation``, ``preferred``) and the health board.
``device_plugin_methods`` gives its methods to the ``grpc_h2`` server (no grpcio here)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

from gpu_operator.deviceplugin.allocation import (
    AllocationError,
    ContainerAllocation,
    DeviceNodeTable,
    allocate,
)
from gpu_operator.deviceplugin.health import HealthBoard
from gpu_operator.deviceplugin.preferred import ScoreFn, preferred_full_gpus, preferred_shared
from gpu_operator.deviceplugin.resources import Resource
from gpu_operator.deviceplugin.settings import PluginSettings
from gpu_operator.grpc_h2.server import Method
from gpu_operator.grpc_h2.status import StatusCode
from gpu_operator.protos import deviceplugin_v1beta1_pb2 as pb

HEALTHY = "Healthy"
UNHEALTHY = "Unhealthy"


def device_list(resource: Resource, board: HealthBoard) -> pb.ListAndWatchResponse:
    """The full list, as every ``ListAndWatch`` message carries it."""
    return pb.ListAndWatchResponse(
        devices=[
            pb.Device(
                ID=d.id,
                health=HEALTHY if board.healthy(d.uuid) else UNHEALTHY,
                topology=None
                if d.numa_node is None
                else pb.TopologyInfo(nodes=[pb.NUMANode(ID=d.numa_node)]),
            )
            for d in resource.devices
        ]
    )


def to_proto(allocation: ContainerAllocation) -> pb.ContainerAllocateResponse:
    return pb.ContainerAllocateResponse(
        envs=allocation.envs,
        mounts=[
            pb.Mount(container_path=m.container_path, host_path=m.host_path, read_only=m.read_only)
            for m in allocation.mounts
        ],
        devices=[
            pb.DeviceSpec(
                container_path=n.container_path, host_path=n.host_path, permissions=n.permissions
            )
            for n in allocation.devices
        ],
        annotations=allocation.annotations,
        cdi_devices=[pb.CDIDevice(name=name) for name in allocation.cdi_devices],
    )


class DevicePluginServicer:
    def __init__(
        self,
        resource: Resource,
        board: HealthBoard,
        settings: PluginSettings,
        *,
        nodes: DeviceNodeTable | None = None,
        score: ScoreFn | None = None,
        stopping: threading.Event | None = None,
    ):
        self.resource = resource
        self._board = board
        self._settings = settings
        self._nodes = nodes
        self._score = score or (lambda a, b: 0)
        self._stopping = stopping or threading.Event()

    def GetDevicePluginOptions(self, request: pb.Empty, context: Any) -> pb.DevicePluginOptions:
        return pb.DevicePluginOptions(
            pre_start_required=False, get_preferred_allocation_available=True
        )

    def ListAndWatch(self, request: pb.Empty, context: Any) -> Iterator[pb.ListAndWatchResponse]:
        seen, last = -1, None
        while not self._stopping.is_set() and context.is_active():
            generation = self._board.generation
            if generation != seen:
                seen = generation
                current = device_list(self.resource, self._board)
                if current != last:  # a change elsewhere on the node is no news here
                    last = current
                    yield current
            self._board.wait_change(seen, 0.25)

    def Allocate(self, request: pb.AllocateRequest, context: Any) -> pb.AllocateResponse:
        responses = []
        for container in request.container_requests:
            try:
                allocation = allocate(
                    self.resource,
                    list(container.devices_ids),
                    self._settings,
                    self._nodes,
                    annotation_id=str(uuid.uuid4()),
                )
            except AllocationError as error:
                context.abort(StatusCode.INVALID_ARGUMENT, str(error))
                raise  # abort raises; this keeps type checkers honest
            responses.append(to_proto(allocation))
        return pb.AllocateResponse(container_responses=responses)

    def GetPreferredAllocation(
        self, request: pb.PreferredAllocationRequest, context: Any
    ) -> pb.PreferredAllocationResponse:
        responses = []
        shared = self.resource.replicas > 1 or self.resource.is_mig
        for container in request.container_requests:
            available = list(container.available_deviceIDs)
            required = list(container.must_include_deviceIDs)
            size = int(container.allocation_size)
            try:
                if shared:
                    ids = preferred_shared(
                        self.resource,
                        available,
                        required,
                        size,
                        self._settings.shared_devices_allocation_policy,
                    )
                else:
                    ids = preferred_full_gpus(self.resource, available, required, size, self._score)
            except AllocationError as error:
                context.abort(StatusCode.INVALID_ARGUMENT, str(error))
                raise
            responses.append(pb.ContainerPreferredAllocationResponse(deviceIDs=ids))
        return pb.PreferredAllocationResponse(container_responses=responses)

    def PreStartContainer(
        self, request: pb.PreStartContainerRequest, context: Any
    ) -> pb.PreStartContainerResponse:
        return pb.PreStartContainerResponse()


SERVICE = "/v1beta1.DevicePlugin/"


def device_plugin_methods(servicer: DevicePluginServicer) -> dict[str, Method]:
    """The ``v1beta1.DevicePlugin`` service's five methods, by their gRPC path."""

    def to_bytes(message: Any) -> bytes:
        return bytes(message.SerializeToString())

    return {
        SERVICE + "GetDevicePluginOptions": Method(
            servicer.GetDevicePluginOptions, pb.Empty.FromString, to_bytes
        ),
        SERVICE + "ListAndWatch": Method(
            servicer.ListAndWatch, pb.Empty.FromString, to_bytes, streaming=True
        ),
        SERVICE + "GetPreferredAllocation": Method(
            servicer.GetPreferredAllocation, pb.PreferredAllocationRequest.FromString, to_bytes
        ),
        SERVICE + "Allocate": Method(servicer.Allocate, pb.AllocateRequest.FromString, to_bytes),
        SERVICE + "PreStartContainer": Method(
            servicer.PreStartContainer, pb.PreStartContainerRequest.FromString, to_bytes
        ),
    }
