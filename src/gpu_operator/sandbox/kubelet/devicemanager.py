"""The stand-in kubelet's device manager: the ``v1beta1.Registration`` server on
``kubelet.sock``, one client per registered plugin (dial back, ``GetDevicePluginOptions``, a
``ListAndWatch`` stream), and capacity/allocatable per resource as the kubelet keeps them.

As the kubelet: Register is refused for a version other than ``v1beta1``, a resource name that
is not an extended resource name, or a plugin that can't be dialled back; capacity is the
number of devices listed, allocatable the number ``Healthy``; when a plugin's stream breaks,
its devices become unhealthy (allocatable 0, capacity kept).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from gpu_operator.protos import deviceplugin_v1beta1_pb2 as pb
from gpu_operator.protos.grpc_api import DevicePluginStub, RegistrationServicerBase

SUPPORTED_VERSIONS = ("v1beta1",)
CHANNEL_OPTIONS = [("grpc.use_local_subchannel_pool", 1)]
"""A connection of its own per plugin, as a separate kubelet process would have."""
_EXTENDED = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def is_extended_resource_name(name: str) -> bool:
    """``domain/name`` outside the ``kubernetes.io`` namespace (``v1helper``)."""
    if not _EXTENDED.match(name):
        return False
    domain = name.split("/", 1)[0]
    return not (domain == "kubernetes.io" or domain.endswith(".kubernetes.io"))


@dataclass
class DeviceState:
    id: str
    health: str
    numa_nodes: tuple[int, ...] = ()


@dataclass
class ResourceState:
    """What the kubelet knows of one resource."""

    name: str
    endpoint: str = ""
    options: Any = None
    devices: dict[str, DeviceState] = field(default_factory=dict)
    connected: bool = False
    messages: list[tuple[float, Any]] = field(default_factory=list)
    """Every ``ListAndWatch`` message with its arrival time (``time.monotonic``)."""
    stub: Any = None
    channel: Any = None
    stream: Any = None

    @property
    def capacity(self) -> int:
        return len(self.devices)

    @property
    def allocatable(self) -> int:
        if not self.connected:
            return 0
        return sum(1 for d in self.devices.values() if d.health == "Healthy")

    def healthy_ids(self) -> list[str]:
        if not self.connected:
            return []
        return [d.id for d in self.devices.values() if d.health == "Healthy"]


class DeviceManager(RegistrationServicerBase):
    """Registration server + plugin clients; every state change notifies ``changed``."""

    def __init__(self, plugin_dir: Path, *, dial_timeout_s: float = 10.0):
        self.plugin_dir = plugin_dir
        self.resources: dict[str, ResourceState] = {}
        self.registrations: list[Any] = []
        """Every RegisterRequest received, accepted or not, in order."""
        self.changed = threading.Condition()
        self._dial_timeout_s = dial_timeout_s

    # --- Registration service -----------------------------------------------------------

    def Register(self, request: Any, context: Any) -> pb.Empty:
        with self.changed:
            self.registrations.append(request)
            self.changed.notify_all()
        if request.version not in SUPPORTED_VERSIONS:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Requested version {request.version!r} is not supported: "
                f"supported versions are {list(SUPPORTED_VERSIONS)}",
            )
        if not is_extended_resource_name(request.resource_name):
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"invalid resource name {request.resource_name!r}: "
                "must be an extended resource name",
            )
        try:
            self._connect(request)
        except grpc.RpcError as error:
            context.abort(
                grpc.StatusCode.UNAVAILABLE,
                f"failed to dial device plugin {request.endpoint}: {error}",
            )
        return pb.Empty()

    def _connect(self, request: Any) -> None:
        path = self.plugin_dir / request.endpoint
        channel = grpc.insecure_channel(f"unix://{path}", CHANNEL_OPTIONS)
        try:
            stub = DevicePluginStub(channel)
            options = stub.GetDevicePluginOptions(
                pb.Empty(), timeout=self._dial_timeout_s, wait_for_ready=True
            )
        except grpc.RpcError as error:
            channel.close()
            raise grpc.RpcError(str(error)) from error
        with self.changed:
            state = self.resources.get(request.resource_name)
            if state is None:
                state = self.resources[request.resource_name] = ResourceState(request.resource_name)
            self._close(state)
            state.endpoint, state.options, state.stub, state.channel = (
                request.endpoint,
                options,
                stub,
                channel,
            )
            state.stream = stub.ListAndWatch(pb.Empty())
            state.connected = True
            self.changed.notify_all()
        threading.Thread(
            target=self._consume, args=(state, state.stream), daemon=True, name="kubelet-lw"
        ).start()

    def _consume(self, state: ResourceState, stream: Any) -> None:
        try:
            for response in stream:
                with self.changed:
                    if state.stream is not stream:
                        return
                    state.devices = {
                        d.ID: DeviceState(d.ID, d.health, tuple(n.ID for n in d.topology.nodes))
                        for d in response.devices
                    }
                    state.messages.append((time.monotonic(), response))
                    self.changed.notify_all()
        except grpc.RpcError:
            pass
        with self.changed:
            if state.stream is stream:
                # PluginDisconnected: every device unhealthy, capacity kept.
                state.connected = False
                state.stream = None
                self.changed.notify_all()

    @staticmethod
    def _close(state: ResourceState) -> None:
        if state.stream is not None:
            state.stream.cancel()
        if state.channel is not None:
            state.channel.close()
        state.stream = state.channel = state.stub = None
        state.connected = False

    def disconnect_all(self) -> None:
        with self.changed:
            for state in self.resources.values():
                self._close(state)
            self.changed.notify_all()

    # --- queries ------------------------------------------------------------------------

    def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(predicate, timeout)

    def state(self, resource: str) -> ResourceState:
        return self.resources[resource]
