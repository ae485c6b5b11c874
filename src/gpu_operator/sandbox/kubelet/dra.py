"""The stand-in kubelet's DRA manager: the plugin watcher for DRA drivers and the calls the
kubelet makes around a pod with ResourceClaims.

As the kubelet: a socket appearing in the plugins registry directory is dialled and asked
``GetInfo``; a plugin of type ``DRAPlugin`` whose ``supported_versions`` name ``v1.DRAPlugin``
is registered under its driver name at its endpoint (``NotifyRegistrationStatus`` tells it so),
anything else is refused with the kubelet's reason (told to the plugin the same way); a
registration socket that disappears deregisters the driver. Before a pod's containers start,
each claim it references must be reserved for the pod, and the claims are prepared with one
``NodePrepareResources`` per driver; a claim's error fails the pod's admission. As the kubelet's
claim info cache, a claim already prepared on the node (for another pod sharing it) is not
prepared again: the pod is added to the pods holding it. After a pod is gone,
``NodeUnprepareResources`` for the claims no other pod on the node holds. A container gets the
CDI device ids of the claims (and requests) its ``resources.claims`` name."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from gpu_operator.errors import GpuOperatorError
from gpu_operator.protos import dra_v1_pb2 as dra
from gpu_operator.protos import pluginregistration_v1_pb2 as reg
from gpu_operator.protos.grpc_api import DRAPluginStub, PluginRegistrationStub

log = logging.getLogger(__name__)
SERVICES_SUPPORTED = ("v1.DRAPlugin",)
"""``servicesSupportedByKubelet`` that this stand-in speaks (the kubelet also takes v1beta1)."""
CHANNEL_OPTIONS = [("grpc.use_local_subchannel_pool", 1)]
Obj = Mapping[str, Any]


def _go_quoted(words: Any) -> str:
    """A string slice as Go's ``%q`` prints it: ``["a" "b"]``."""
    return "[" + " ".join(f'"{w}"' for w in words) + "]"


class ClaimPreparationError(GpuOperatorError):
    """A pod's claims could not be prepared (the pod fails admission)."""


@dataclass
class DraPlugin:
    driver: str
    endpoint: str
    service: str
    registration_socket: Path
    channel: Any = None
    stub: Any = None


@dataclass(frozen=True)
class PreparedDevice:
    request_names: tuple[str, ...]
    pool: str
    device: str
    cdi_ids: tuple[str, ...]


@dataclass
class PodClaims:
    """What the kubelet prepared for one pod: per claim (pod claim name → the claim's
    namespace, name, UID, driver and devices), and which claims (and requests) each container
    names, for the PodResources API."""

    claims: dict[str, tuple[str, str, str, str, tuple[PreparedDevice, ...]]] = field(
        default_factory=dict
    )
    name: str = ""
    namespace: str = ""
    containers: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    """Container name → (pod claim name, request or ``""``) of its ``resources.claims``."""

    def devices_of(self, container: str) -> list[tuple[str, str, str, list[PreparedDevice]]]:
        """Per claim ``container`` names: (claim namespace, claim name, driver, its devices for
        the container's request)."""
        out = []
        for pod_claim, request in self.containers.get(container, []):
            entry = self.claims.get(pod_claim)
            if entry is None:
                continue
            namespace, name, _, driver, devices = entry
            mine = [
                d
                for d in devices
                if not request or not d.request_names or request in d.request_names
            ]
            out.append((namespace, name, driver, mine))
        return out

    def cdi_ids(self, container: Obj) -> list[str]:
        """The CDI device ids of the claims and requests ``container`` names."""
        ids: list[str] = []
        for ref in (container.get("resources") or {}).get("claims") or []:
            entry = self.claims.get(ref.get("name", ""))
            if entry is None:
                continue
            request = ref.get("request")
            for device in entry[4]:
                if not request or not device.request_names or request in device.request_names:
                    ids.extend(i for i in device.cdi_ids if i not in ids)
        return ids


def claim_name(pod: Obj, pod_claim: Obj) -> str | None:
    """The ResourceClaim a pod's claim entry names, directly or through the pod's status (for
    a claim made from a template); ``None`` when not made yet."""
    if pod_claim.get("resourceClaimName"):
        return str(pod_claim["resourceClaimName"])
    for status in (pod.get("status") or {}).get("resourceClaimStatuses") or []:
        if status.get("name") == pod_claim.get("name"):
            name = status.get("resourceClaimName")
            return str(name) if name else None
    return None


class DraManager:
    def __init__(
        self, registry_dir: Path, *, poll_s: float = 0.05, call_timeout_s: float = 10.0
    ) -> None:
        self.registry_dir = registry_dir
        self.plugins: dict[str, DraPlugin] = {}
        self.registrations: list[tuple[Any, str]] = []
        """Every ``PluginInfo`` read and the refusal (``""``: registered), in order."""
        self.prepared: dict[str, PodClaims] = {}
        """Pod UID → what was prepared for it."""
        self.claim_pods: dict[str, set[str]] = {}
        """Claim UID → the pods on this node holding the prepared claim (the claim info
        cache's pod set)."""
        self._claim_devices: dict[str, tuple[PreparedDevice, ...]] = {}
        self.prepare_calls: list[list[str]] = []
        """The claim UIDs of every ``NodePrepareResources`` sent, in order."""
        self._pod_calls = threading.Lock()
        """One pod's prepare or unprepare at a time, so two pods sharing a claim never both
        find it unprepared (the kubelet's driver calls may overlap; its drivers are idempotent
        either way)."""
        self.changed = threading.Condition()
        self._poll_s = poll_s
        self._timeout = call_timeout_s
        self._seen: dict[Path, tuple[int, int]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the plugin watcher -------------------------------------------------------------

    def start(self) -> None:
        self.registry_dir.mkdir(parents=True, exist_ok=True)
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="kubelet-pluginwatcher")
        self._thread.daemon = True
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        with self.changed:
            for plugin in self.plugins.values():
                if plugin.channel is not None:
                    plugin.channel.close()
            self.plugins.clear()
            self._seen.clear()
            self.changed.notify_all()

    def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(predicate, timeout)

    def _watch(self) -> None:
        while not self._stop.is_set():
            current = {}
            for path in sorted(self.registry_dir.glob("*.sock")):
                try:
                    st = path.stat()
                except OSError:
                    continue
                current[path] = (st.st_ino, st.st_ctime_ns)
            for path in [p for p in self._seen if p not in current]:
                self._deregister(path)
                del self._seen[path]
            for path, identity in current.items():
                if self._seen.get(path) != identity:
                    self._seen[path] = identity
                    self._register(path)
            self._stop.wait(self._poll_s)

    def _register(self, socket: Path) -> None:
        with grpc.insecure_channel(f"unix://{socket}", CHANNEL_OPTIONS) as channel:
            stub = PluginRegistrationStub(channel)
            try:
                info = stub.GetInfo(reg.InfoRequest(), timeout=self._timeout, wait_for_ready=True)
            except grpc.RpcError as error:
                log.warning("%s: GetInfo failed: %s", socket, error)
                return
            if not info.endpoint:  # the kubelet's default: the registration socket itself
                info.endpoint = str(socket)
            problem = self._validate(info, socket)
            if not problem:
                plugin_channel = grpc.insecure_channel(f"unix://{info.endpoint}", CHANNEL_OPTIONS)
                service = next(s for s in info.supported_versions if s in SERVICES_SUPPORTED)
                plugin = DraPlugin(
                    info.name, info.endpoint, service, socket, plugin_channel,
                    DRAPluginStub(plugin_channel),
                )  # fmt: skip
            with self.changed:
                self.registrations.append((info, problem))
                if not problem:
                    old = self.plugins.get(info.name)
                    if old is not None and old.channel is not None:
                        old.channel.close()
                    self.plugins[info.name] = plugin
                self.changed.notify_all()
            try:
                stub.NotifyRegistrationStatus(
                    reg.RegistrationStatus(plugin_registered=not problem, error=problem),
                    timeout=self._timeout,
                )
            except grpc.RpcError as error:
                log.warning("%s: NotifyRegistrationStatus failed: %s", socket, error)

    @staticmethod
    def _validate(info: Any, socket: Path) -> str:
        """The plugin watcher's refusal, worded as the kubelet words it (``""``: accepted)."""
        if info.type != "DRAPlugin":
            return (
                f"RegisterPlugin error -- no handler registered for plugin type: {info.type} "
                f"at socket {socket}"
            )
        problem = ""
        if not info.name:
            problem = "DRA driver name is empty"
        elif not info.supported_versions:
            problem = "empty list of supported gRPC services (aka supported versions)"
        elif not any(s in SERVICES_SUPPORTED for s in info.supported_versions):
            problem = (
                f"none of services supported by the plugin ({_go_quoted(info.supported_versions)}) "
                f"are supported by the kubelet ({_go_quoted(SERVICES_SUPPORTED)})"
            )
        if not problem:
            return ""
        return (
            "RegisterPlugin error -- plugin validation failed with err: invalid supported gRPC "
            f"versions of DRA driver plugin {info.name} at endpoint {info.endpoint}: {problem}"
        )

    def _deregister(self, socket: Path) -> None:
        with self.changed:
            for name, plugin in list(self.plugins.items()):
                if plugin.registration_socket == socket:
                    if plugin.channel is not None:
                        plugin.channel.close()
                    del self.plugins[name]
            self.changed.notify_all()

    # --- pods ---------------------------------------------------------------------------

    def prepare_pod(self, pod: Obj, claims: Mapping[str, Obj]) -> PodClaims:
        """Prepare the claims of ``pod`` (``claims``: pod claim name → the ResourceClaim);
        ``ClaimPreparationError`` with the kubelet's reason when one can't be."""
        with self._pod_calls:
            return self._prepare_pod(pod, claims)

    def _prepare_pod(self, pod: Obj, claims: Mapping[str, Obj]) -> PodClaims:
        meta = pod["metadata"]
        pod_uid = meta["uid"]
        what = f"pod {meta['namespace']}/{meta['name']}"
        by_driver: dict[str, list[tuple[str, Obj]]] = {}
        for pod_claim in (pod.get("spec") or {}).get("resourceClaims") or []:
            name = pod_claim["name"]
            claim = claims.get(name)
            if claim is None:
                raise ClaimPreparationError(f"{what}: ResourceClaim for {name!r} not found")
            cmeta = claim["metadata"]
            reserved = (claim.get("status") or {}).get("reservedFor") or []
            if not any(r.get("uid") == pod_uid for r in reserved):
                raise ClaimPreparationError(
                    f"{what}: not allowed to use ResourceClaim {cmeta['name']} "
                    f"({cmeta.get('uid')}): not reserved for the pod"
                )
            allocation = (claim.get("status") or {}).get("allocation") or {}
            results = (allocation.get("devices") or {}).get("results") or []
            for driver in dict.fromkeys(r["driver"] for r in results):
                by_driver.setdefault(driver, []).append((name, claim))
        prepared = PodClaims(name=meta["name"], namespace=meta["namespace"])
        spec = pod.get("spec") or {}
        for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
            refs = (container.get("resources") or {}).get("claims") or []
            if refs:
                prepared.containers[container["name"]] = [
                    (r.get("name", ""), r.get("request") or "") for r in refs
                ]
        for driver, entries in by_driver.items():
            with self.changed:
                plugin = self.plugins.get(driver)
                cached = {c["metadata"]["uid"] for _, c in entries} & set(self._claim_devices)
            for pod_claim_name, c in entries:
                uid = c["metadata"]["uid"]
                if uid in cached:  # prepared for another pod: not asked again
                    meta = c["metadata"]
                    devices = self._claim_devices[uid]
                    prepared.claims[pod_claim_name] = (
                        meta["namespace"], meta["name"], uid, driver, devices,
                    )  # fmt: skip
            entries = [(n, c) for n, c in entries if c["metadata"]["uid"] not in cached]
            if not entries:
                continue
            if plugin is None:
                raise ClaimPreparationError(f"{what}: DRA driver {driver} is not registered")
            request = dra.NodePrepareResourcesRequest(
                claims=[
                    dra.Claim(
                        namespace=c["metadata"]["namespace"],
                        name=c["metadata"]["name"],
                        uid=c["metadata"]["uid"],
                    )
                    for _, c in entries
                ]
            )
            with self.changed:
                self.prepare_calls.append([c["metadata"]["uid"] for _, c in entries])
            try:
                response = plugin.stub.NodePrepareResources(request, timeout=self._timeout)
            except grpc.RpcError as error:
                raise ClaimPreparationError(
                    f"{what}: NodePrepareResources of DRA driver {driver} failed: "
                    f"{error.details() if hasattr(error, 'details') else error}"
                ) from error
            for pod_claim_name, c in entries:
                uid = c["metadata"]["uid"]
                if uid not in response.claims:
                    raise ClaimPreparationError(
                        f"{what}: NodePrepareResources left out claim {uid} ({driver})"
                    )
                answer = response.claims[uid]
                if answer.error:
                    raise ClaimPreparationError(
                        f"{what}: NodePrepareResources failed for ResourceClaim "
                        f"{c['metadata']['name']}: {answer.error}"
                    )
                prepared.claims[pod_claim_name] = (
                    c["metadata"]["namespace"],
                    c["metadata"]["name"],
                    uid,
                    driver,
                    tuple(
                        PreparedDevice(
                            tuple(d.request_names), d.pool_name, d.device_name,
                            tuple(d.cdi_device_ids),
                        )
                        for d in answer.devices
                    ),
                )  # fmt: skip
        with self.changed:
            self.prepared[pod_uid] = prepared
            for _, _, uid, _, devices in prepared.claims.values():
                self._claim_devices[uid] = devices
                self.claim_pods.setdefault(uid, set()).add(pod_uid)
            self.changed.notify_all()
        return prepared

    def unprepare_pod(self, pod_uid: str) -> list[str]:
        """Unprepare what was prepared for the pod; the errors (empty: all done)."""
        with self._pod_calls:
            return self._unprepare_pod(pod_uid)

    def _unprepare_pod(self, pod_uid: str) -> list[str]:
        with self.changed:
            prepared = self.prepared.get(pod_uid)
        if prepared is None:
            return []
        errors = []
        by_driver: dict[str, list[dra.Claim]] = {}
        for namespace, name, uid, driver, _ in prepared.claims.values():
            with self.changed:
                holders = self.claim_pods.get(uid, set())
                if holders - {pod_uid}:  # another pod still holds it: only let go of it
                    holders.discard(pod_uid)
                    continue
            by_driver.setdefault(driver, []).append(
                dra.Claim(namespace=namespace, name=name, uid=uid)
            )
        for driver, claims in by_driver.items():
            with self.changed:
                plugin = self.plugins.get(driver)
            if plugin is None:
                errors.append(f"DRA driver {driver} is not registered")
                continue
            try:
                response = plugin.stub.NodeUnprepareResources(
                    dra.NodeUnprepareResourcesRequest(claims=claims), timeout=self._timeout
                )
            except grpc.RpcError as error:
                errors.append(f"NodeUnprepareResources of {driver} failed: {error}")
                continue
            errors += [
                f"{c.namespace}/{c.name}: {response.claims[c.uid].error}"
                for c in claims
                if c.uid in response.claims and response.claims[c.uid].error
            ]
            with self.changed:
                for c in claims:
                    if c.uid in response.claims and not response.claims[c.uid].error:
                        self.claim_pods.pop(c.uid, None)
                        self._claim_devices.pop(c.uid, None)
        if not errors:
            with self.changed:
                self.prepared.pop(pod_uid, None)
                self.changed.notify_all()
        return errors
