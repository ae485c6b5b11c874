"""A kubelet stand-in that speaks the real kubelet gRPC APIs over unix sockets: device-plugin
registration and ``ListAndWatch``, pod admission through ``GetPreferredAllocation`` and
``Allocate``, the ``PodResources`` API, DRA drivers registered through the plugins registry
directory and their ``NodePrepareResources``/``NodeUnprepareResources`` around a pod with
ResourceClaims (``kubelet.dra``), and a simulated kubelet restart.

    kubelet = Kubelet(tmp / "device-plugins", tmp / "pod-resources", tmp / "plugins_registry")
    kubelet.start()
    kubelet.wait_until(lambda: kubelet.allocatable("nvidia.com/gpu") == 8, 5)
    pod = kubelet.admit_pod("train", [("main", {"nvidia.com/gpu": 2})])
    claims = kubelet.prepare_claims(pod_object, {"gpu": resource_claim})  # DRA
    kubelet.restart()            # sockets removed, kubelet.sock re-created
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc

from gpu_operator.errors import GpuOperatorError
from gpu_operator.protos import deviceplugin_v1beta1_pb2 as pb
from gpu_operator.protos.grpc_api import add_pod_resources_servicer, add_registration_servicer
from gpu_operator.sandbox.kubelet.devicemanager import DeviceManager, ResourceState
from gpu_operator.sandbox.kubelet.dra import ClaimPreparationError, DraManager, PodClaims
from gpu_operator.sandbox.kubelet.podresources import (
    ContainerRecord,
    PodRecord,
    PodResourcesServer,
)

CHECKPOINT = "kubelet_internal_checkpoint"

__all__ = [
    "AdmissionError",
    "ClaimPreparationError",
    "ContainerRecord",
    "Kubelet",
    "PodClaims",
    "PodRecord",
    "ResourceState",
]


class AdmissionError(GpuOperatorError):
    """The pod can't be admitted (``UnexpectedAdmissionError`` on a real node)."""


class Kubelet:
    def __init__(
        self,
        plugin_dir: Path,
        pod_resources_dir: Path | None = None,
        plugins_registry_dir: Path | None = None,
        *,
        dial_timeout_s: float = 10.0,
    ):
        self.plugin_dir = plugin_dir
        self.pod_resources_dir = pod_resources_dir
        self.manager = DeviceManager(plugin_dir, dial_timeout_s=dial_timeout_s)
        self.dra = (
            DraManager(plugins_registry_dir, call_timeout_s=dial_timeout_s)
            if plugins_registry_dir is not None
            else None
        )
        """The DRA drivers' plugin watcher and prepare/unprepare (with a registry dir)."""
        self.pods: list[PodRecord] = []
        self._server: Any = None
        self._pr_server: Any = None

    @property
    def socket(self) -> Path:
        return self.plugin_dir / "kubelet.sock"

    @property
    def pod_resources_socket(self) -> Path | None:
        return self.pod_resources_dir / "kubelet.sock" if self.pod_resources_dir else None

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        self.plugin_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
        self._serve_registration()
        if self.pod_resources_dir is not None:
            self.pod_resources_dir.mkdir(parents=True, exist_ok=True)
            socket = self.pod_resources_dir / "kubelet.sock"
            socket.unlink(missing_ok=True)
            self._pr_server = grpc.server(ThreadPoolExecutor(max_workers=2))
            add_pod_resources_servicer(
                PodResourcesServer(self.manager, lambda: self.pods, self.dra), self._pr_server
            )
            self._pr_server.add_insecure_port(f"unix://{socket}")
            self._pr_server.start()
        if self.dra is not None:
            self.dra.start()

    def _serve_registration(self) -> None:
        self.socket.unlink(missing_ok=True)
        self._server = grpc.server(ThreadPoolExecutor(max_workers=4))
        add_registration_servicer(self.manager, self._server)
        self._server.add_insecure_port(f"unix://{self.socket}")
        self._server.start()

    def stop(self) -> None:
        if self.dra is not None:
            self.dra.stop()
        self.manager.disconnect_all()
        for server in (self._server, self._pr_server):
            if server is not None:
                server.stop(grace=None).wait(2)
        self._server = self._pr_server = None
        self.socket.unlink(missing_ok=True)

    def restart(self, *, down_s: float = 0.0) -> None:
        """What a kubelet restart does to the directory: the old process goes (streams end),
        the new one removes every socket but the checkpoint and listens on a new
        ``kubelet.sock``. Allocations survive (they are in the checkpoint)."""
        self.manager.disconnect_all()
        if self._server is not None:
            self._server.stop(grace=None).wait(2)
        # As the kubelet's CleanupPluginDirectory: read the directory once, then remove.
        for entry in list(self.plugin_dir.iterdir()):
            if entry.name != CHECKPOINT and entry.is_socket():
                entry.unlink(missing_ok=True)
        if self.dra is not None:
            self.dra.stop()
        if down_s:
            self.manager.wait_until(lambda: False, down_s)
        self._serve_registration()
        if self.dra is not None:  # the new kubelet's plugin watcher finds every socket again
            self.dra.start()

    # --- device manager view ------------------------------------------------------------

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        return self.manager.wait_until(predicate, timeout)

    def capacity(self, resource: str) -> int:
        state = self.manager.resources.get(resource)
        return state.capacity if state else 0

    def allocatable(self, resource: str) -> int:
        state = self.manager.resources.get(resource)
        return state.allocatable if state else 0

    def resource_names(self) -> list[str]:
        return sorted(self.manager.resources)

    def state(self, resource: str) -> ResourceState:
        return self.manager.state(resource)

    def allocated(self, resource: str) -> set[str]:
        return {i for p in self.pods for c in p.containers for i in c.devices.get(resource, [])}

    # --- pods ---------------------------------------------------------------------------

    def admit_pod(
        self,
        name: str,
        containers: Sequence[tuple[str, dict[str, int]]],
        *,
        namespace: str = "default",
    ) -> PodRecord:
        """Admit a pod: per container and resource, ask the plugin for its preferred devices
        among the free healthy ones, then ``Allocate``; recorded for ``PodResources``."""
        pod = PodRecord(name=name, namespace=namespace)
        try:
            for container_name, requests in containers:
                record = ContainerRecord(container_name)
                pod.containers.append(record)
                for resource, count in requests.items():
                    ids, response = self._allocate(resource, count, pod)
                    record.devices[resource] = ids
                    record.responses[resource] = response
        except grpc.RpcError as error:
            raise AdmissionError(
                f"pod {namespace}/{name}: UnexpectedAdmissionError: {error.details()}"
            ) from error
        with self.manager.changed:
            self.pods.append(pod)
        return pod

    def _allocate(self, resource: str, count: int, pending: PodRecord) -> tuple[list[str], Any]:
        state = self.manager.resources.get(resource)
        if state is None or state.stub is None:
            raise AdmissionError(f"resource {resource} is not registered")
        taken = self.allocated(resource) | {
            i for c in pending.containers for i in c.devices.get(resource, [])
        }
        free = [i for i in state.healthy_ids() if i not in taken]
        if len(free) < count:
            raise AdmissionError(
                f"UnexpectedAdmissionError: requested {count} {resource}, {len(free)} available"
            )
        chosen = free[:count]
        if state.options is not None and state.options.get_preferred_allocation_available:
            preferred = state.stub.GetPreferredAllocation(
                pb.PreferredAllocationRequest(
                    container_requests=[
                        pb.ContainerPreferredAllocationRequest(
                            available_deviceIDs=free, allocation_size=count
                        )
                    ]
                ),
                timeout=10,
            )
            ids = list(preferred.container_responses[0].deviceIDs)
            if len(ids) == count and set(ids) <= set(free):
                chosen = ids
        response = state.stub.Allocate(
            pb.AllocateRequest(
                container_requests=[pb.ContainerAllocateRequest(devices_ids=chosen)]
            ),
            timeout=10,
        )
        return chosen, response.container_responses[0]

    def remove_pod(self, name: str, namespace: str = "default") -> None:
        with self.manager.changed:
            self.pods = [p for p in self.pods if (p.name, p.namespace) != (name, namespace)]
            self.manager.changed.notify_all()

    # --- DRA ----------------------------------------------------------------------------

    def prepare_claims(self, pod: dict[str, Any], claims: dict[str, Any]) -> PodClaims:
        """``NodePrepareResources`` for ``pod``'s claims (pod claim name → ResourceClaim);
        ``AdmissionError`` with the kubelet's reason when they can't be prepared."""
        if self.dra is None:
            raise AdmissionError("this kubelet has no DRA plugin registry")
        try:
            return self.dra.prepare_pod(pod, claims)
        except ClaimPreparationError as error:
            raise AdmissionError(str(error)) from error

    def unprepare_claims(self, pod_uid: str) -> list[str]:
        """``NodeUnprepareResources`` for what was prepared for the pod; the errors."""
        return self.dra.unprepare_pod(pod_uid) if self.dra is not None else []
