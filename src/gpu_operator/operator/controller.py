"""The reconciler's thin shell: watches (ClusterPolicies, NVIDIADrivers when their CRD is served,
Nodes, owned DaemonSets, ConfigMaps, Services, RuntimeClasses) fill an in-memory view; a single
worker runs the pure ``plan`` when anything changed or a requeue is due, and carries the plan out
(label merge patches, server-side apply, deletes, status patches, Events). Only the lease holder
writes."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from lightkube import ApiError, AsyncClient, codecs
from lightkube.generic_resource import create_global_resource, create_namespaced_resource
from lightkube.resources.apps_v1 import DaemonSet
from lightkube.resources.core_v1 import ConfigMap, Node, Pod, Service
from lightkube.resources.node_v1 import RuntimeClass
from lightkube.resources.resource_v1 import DeviceClass
from lightkube.types import PatchType

from gpu_operator.driver.pools import is_driver_pool
from gpu_operator.driver.upgrade import UPGRADE_DONE, UpgradeStep
from gpu_operator.driver.upgrade_model import STATE_LABEL as UPGRADE_STATE_LABEL
from gpu_operator.driver.upgrade_model import UpgradePolicy
from gpu_operator.errors import GpuOperatorError, KubeError
from gpu_operator.kube import aapply, apost_event, aretry, awatch
from gpu_operator.kube.retry import RetryPolicy
from gpu_operator.kube.server_info import aget_path, served_versions
from gpu_operator.operator.cluster import NodeFacts, node_facts
from gpu_operator.operator.dra_refusals import ApiFacts, parse_version
from gpu_operator.operator.labeling import apply_patch
from gpu_operator.operator.leader import LeaderElector
from gpu_operator.operator.metrics import OperatorMetrics
from gpu_operator.operator.nvidiadriver import driver_crs
from gpu_operator.operator.nvidiadriver_policy import driver_upgrade_policies
from gpu_operator.operator.nvidiadriver_status import cr_events
from gpu_operator.operator.policy_v1 import enabled, parse_spec
from gpu_operator.operator.reconcile import Event, Observed, Plan, deprecation_events, plan
from gpu_operator.operator.render import HASH_ANNOTATION
from gpu_operator.operator.render.common import PART_OF
from gpu_operator.operator.status import ObjKey, daemonset_blocker, obj_key
from gpu_operator.operator.upgrade_policy import upgrade_policy

log = logging.getLogger(__name__)
ClusterPolicy = create_global_resource("nvidia.com", "v1", "ClusterPolicy", "clusterpolicies")
NVIDIADriver = create_global_resource("nvidia.com", "v1alpha1", "NVIDIADriver", "nvidiadrivers")
ServiceMonitor = create_namespaced_resource(
    "monitoring.coreos.com", "v1", "ServiceMonitor", "servicemonitors"
)
Upgrader = Callable[[UpgradePolicy | Mapping[str, UpgradePolicy]], UpgradeStep]
"""One pass of the driver upgrade controller for a policy, or for one policy per NVIDIADriver
CR (owner label value → policy) (blocking; run off the loop)."""

OWNED_KINDS: dict[str, Any] = {
    "DaemonSet": DaemonSet,
    "ConfigMap": ConfigMap,
    "Service": Service,
    "RuntimeClass": RuntimeClass,
    "ServiceMonitor": ServiceMonitor,
    "DeviceClass": DeviceClass,
}
WATCHED_OWNED = ("DaemonSet", "ConfigMap", "Service", "RuntimeClass", "DeviceClass")
CLUSTER_SCOPED = ("RuntimeClass", "DeviceClass")


@dataclass(frozen=True)
class ControllerSettings:
    """namespace: operands' namespace (``OPERATOR_NAMESPACE``). environ: the image env
    fallbacks (``*_IMAGE``). debounce_s: how long a burst of changes is gathered before a pass.
    retry: API retries for writes."""

    namespace: str = "gpu-operator"
    environ: Mapping[str, str] = field(default_factory=dict)
    debounce_s: float = 0.05
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    crd_poll_s: float = 10.0  # how often to look for the NVIDIADriver CRD (and RBAC) meanwhile


def _plain(obj: Any) -> dict[str, Any]:
    return obj if isinstance(obj, dict) else dict(obj.to_dict())


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Controller:
    """``await controller.run(stop)``; tests drive ``reconcile_once`` directly too."""

    def __init__(
        self,
        client: AsyncClient,
        settings: ControllerSettings,
        *,
        elector: LeaderElector | None = None,
        metrics: OperatorMetrics | None = None,
        now: Callable[[], str] = _now,
        upgrader: Upgrader | None = None,
    ):
        self.client = client
        self.upgrader = upgrader
        self.settings = settings
        self.elector = elector
        self.metrics = metrics or OperatorMetrics()
        self.now = now
        self.policies: dict[str, dict[str, Any]] = {}
        self.drivers: dict[str, dict[str, Any]] = {}
        self.drivers_served = True
        self.api = ApiFacts()
        """The server's version and whether it serves DRA, read at sync."""
        self.device_classes_listable = True
        """False where the operator may not list DeviceClasses (an older chart's RBAC)."""
        self.nodes: dict[str, NodeFacts] = {}
        self.owned: dict[ObjKey, dict[str, Any]] = {}
        self.applied_hashes: dict[ObjKey, str] = {}
        self.missing_kinds: dict[str, str] = {}
        self.warned: set[tuple[str, int]] = set()
        self.dirty = asyncio.Event()
        self.last_plan: Plan | None = None

    # -- the view the watches keep -------------------------------------------------------
    def _on_policy(self, kind: str, obj: Any) -> None:
        body = _plain(obj)
        name = body["metadata"]["name"]
        if kind == "DELETED":
            self.policies.pop(name, None)
        else:
            self.policies[name] = body

    def _on_driver(self, kind: str, obj: Any) -> None:
        body = _plain(obj)
        name = body["metadata"]["name"]
        if kind == "DELETED":
            self.drivers.pop(name, None)
        else:
            self.drivers[name] = body

    def _on_node(self, kind: str, obj: Any) -> None:
        facts = node_facts(_plain(obj))
        if kind == "DELETED":
            self.nodes.pop(facts.name, None)
        else:
            self.nodes[facts.name] = facts

    def _on_owned(self, kind: str, obj: Any) -> None:
        body = _plain(obj)
        key = obj_key(body)
        if kind == "DELETED":
            self.owned.pop(key, None)
        else:
            self.owned[key] = body

    async def _list_into(self, res: Any, sink: Callable[[str, Any], None], **args: Any) -> None:
        async for obj in self.client.list(res, **args):
            if (
                res not in (ClusterPolicy, NVIDIADriver)
                and hasattr(obj, "kind")
                and obj.kind is None
            ):
                obj.kind = res.__name__
            sink("ADDED", obj)

    def _sources(self) -> list[tuple[Any, Callable[[str, Any], None], dict[str, Any]]]:
        ns, labels = self.settings.namespace, {PART_OF: "gpu-operator"}
        sources: list[tuple[Any, Callable[[str, Any], None], dict[str, Any]]] = [
            (ClusterPolicy, self._on_policy, {}),
            (Node, self._on_node, {}),
        ]
        if self.drivers_served:
            sources.append((NVIDIADriver, self._on_driver, {}))
        for kind in WATCHED_OWNED:
            if kind == "DeviceClass" and not (self.api.dra_served and self.device_classes_listable):
                continue  # resource.k8s.io/v1 not served (or not ours to list): none to own
            args = (
                {"labels": labels}
                if kind in CLUSTER_SCOPED
                else {"labels": labels, "namespace": ns}
            )
            sources.append((OWNED_KINDS[kind], self._typed_sink(kind), args))
        return sources

    def _typed_sink(self, kind: str) -> Callable[[str, Any], None]:
        def sink(event: str, obj: Any) -> None:
            body = _plain(obj)
            body.setdefault("kind", kind)
            body["kind"] = body["kind"] or kind
            self._on_owned(event, body)

        return sink

    async def sync(self) -> None:
        """Fill the view from one list of everything (before the watches take over). Without
        the NVIDIADriver CRD or the right to list it (an install that predates them) its CRs
        are not listed; ``run`` looks for them every ``crd_poll_s`` (``_await_drivers``).
        The server's version and its DRA API are read once here too (``draDriver`` refusals)."""
        await self._read_api()
        for res, sink, args in self._sources():
            try:
                await self._list_into(res, sink, **args)
            except ApiError as error:
                if res is DeviceClass and error.status.code == 403:
                    log.warning("DeviceClasses not watched: no permission (the chart's RBAC)")
                    self.device_classes_listable = False
                    continue
                if res is not NVIDIADriver or error.status.code not in (403, 404):
                    raise
                log.warning(
                    "NVIDIADriver CRs not watched: %s (install the chart's CRD and RBAC)",
                    "the CRD is not installed" if error.status.code == 404 else "no permission",
                )
                self.drivers_served = False
        self.metrics.synced = True

    async def _read_api(self) -> None:
        """``/version`` and ``/apis/resource.k8s.io``; unreadable: unknown (no refusal)."""
        try:
            info = await aget_path(self.client, "/version")
            group = await aget_path(self.client, "/apis/resource.k8s.io")
        except KubeError as error:
            log.warning("the API server's version and DRA API unknown: %s", error)
            return
        self.api = ApiFacts(parse_version(info or {}), "v1" in served_versions(group))

    async def _await_drivers(self) -> None:
        """Until the NVIDIADriver CRD and the right to list it exist: try one list every
        ``crd_poll_s`` (a 404 or 403 is cheap); then take the CRs in, reconcile, and watch
        them, as if they had been there at start (no restart needed)."""
        while True:
            await asyncio.sleep(self.settings.crd_poll_s)
            try:
                await self._list_into(NVIDIADriver, self._on_driver)
            except ApiError as error:
                if error.status.code not in (403, 404):
                    log.warning("listing NVIDIADriver CRs: %s", error)
                continue
            except Exception as error:  # the transport's (connection refused): try again later
                log.warning("listing NVIDIADriver CRs: %s", error)
                continue
            break
        self.drivers_served = True
        log.info("NVIDIADriver CRs are served now: watching them")
        self.dirty.set()
        await self._watch(NVIDIADriver, self._on_driver, {})

    async def _watch(
        self, res: Any, sink: Callable[[str, Any], None], args: dict[str, Any]
    ) -> None:
        async for event in awatch(self.client, res, policy=self.settings.retry, **args):
            sink(event.type, event.obj)
            self.dirty.set()

    # -- one pass ------------------------------------------------------------------------
    async def _pod_problems(self) -> dict[str, list[str]]:
        """For each owned DaemonSet that is not ready: its pods' waiting reasons (reads only)."""
        problems: dict[str, list[str]] = {}
        for (kind, _, name), ds in self.owned.items():
            if kind != "DaemonSet" or daemonset_blocker(ds) is None:
                continue
            found = []
            async for pod in self.client.list(
                Pod, namespace=self.settings.namespace, labels={"app": name}
            ):
                found += _pod_waits(_plain(pod))
                if len(found) >= 5:
                    break
            if found:
                problems[name] = found[:5]
        return problems

    async def reconcile_once(self) -> Plan:
        started = time.process_time()
        observed = Observed(
            policies=list(self.policies.values()),
            nodes=list(self.nodes.values()),
            owned=dict(self.owned),
            namespace=self.settings.namespace,
            environ=self.settings.environ,
            pod_problems=await self._pod_problems(),
            now=self.now(),
            applied_hashes=dict(self.applied_hashes),
            missing_kinds=dict(self.missing_kinds),
            nvidia_drivers=list(self.drivers.values()),
            api=self.api,
        )
        result = plan(observed)
        self.metrics.reconcile_cpu_seconds_total += time.process_time() - started
        self.metrics.reconciliation_total += 1
        try:
            await self._execute(result)
        except Exception:
            self.metrics.reconciliation_failed_total += 1
            self.metrics.reconciliation_status = -1
            raise
        self._record(result)
        self.metrics.first_pass_done = True
        self.last_plan = result
        await self._upgrade(result)
        return result

    async def _upgrade(self, result: Plan) -> None:
        """One pass of the driver upgrade controller (reference §5) after each reconcile, off
        the event loop: it walks nodes whose driver pod runs an outdated spec through the
        upgrade states within ``driver.upgradePolicy``'s limits (and with autoUpgrade off,
        removes the state labels)."""
        body = self.policies.get(result.active or "")
        if self.upgrader is None or body is None:
            return
        try:
            spec = parse_spec(body.get("spec"), source=f"ClusterPolicy {result.active}")
            if not enabled(spec, "driver"):
                return
            policy: UpgradePolicy | dict[str, UpgradePolicy] = upgrade_policy(
                spec.driver.upgradePolicy
            )
            if spec.driver.useNvidiaDriverCRD:
                policy = driver_upgrade_policies(spec.driver, driver_crs(self.drivers.values()))
        except GpuOperatorError as error:  # the reconcile pass reports a bad policy already
            log.info("driver upgrades skipped: %s", error)
            return
        m = self.metrics
        autos = [
            p.auto_upgrade for p in (policy.values() if isinstance(policy, dict) else [policy])
        ]
        m.driver_auto_upgrade_enabled = int(any(autos))
        if not self._upgrade_due(any(autos)):
            return
        step = await asyncio.to_thread(self.upgrader, policy)
        for what in ("in_progress", "done", "failed", "available", "pending"):
            setattr(m, f"nodes_upgrades_{what}", getattr(step.metrics, what))
        if step.actions:
            self.dirty.set()

    def _record(self, result: Plan) -> None:
        m = self.metrics
        m.gpu_nodes_total = result.gpu_nodes
        m.reconciliation_has_nfd_labels = int(result.has_nfd)
        if result.failure:
            m.reconciliation_status = -1
            m.reconciliation_failed_total += 1
        elif result.ready is not None:
            m.reconciliation_status = int(result.ready)
            m.reconciliation_last_success_ts_seconds = time.time()
        policy = self.policies.get(result.active or "")
        upgrade = ((policy or {}).get("spec") or {}).get("driver", {}).get("upgradePolicy") or {}
        m.driver_auto_upgrade_enabled = int(bool(upgrade.get("autoUpgrade")))

    async def _patch_status(
        self, resource: Any, kind: str, name: str, status: dict[str, Any]
    ) -> None:
        """Merge-patch a custom resource's status subresource (retried), counted as a write."""
        patching = _later(
            self.client.patch, resource, name, {"status": status}, patch_type=PatchType.MERGE
        )
        await aretry(patching, f"patch status of {kind} {name}", self.settings.retry)
        self.metrics.api_writes_total += 1

    async def _execute(self, result: Plan) -> None:
        policy_retry = self.settings.retry
        for name, patch in sorted(result.node_patches.items()):
            body: dict[str, Any] = {"metadata": {}}
            if patch.labels:
                body["metadata"]["labels"] = dict(patch.labels)
            if patch.annotations:
                body["metadata"]["annotations"] = dict(patch.annotations)
            patching = _later(self.client.patch, Node, name, body, patch_type=PatchType.MERGE)
            await aretry(patching, f"patch labels of node {name}", policy_retry)
            self.metrics.api_writes_total += 1
            if name in self.nodes:
                node = self.nodes[name]
                self.nodes[name] = NodeFacts(
                    name=name,
                    labels=apply_patch(node.labels, patch.labels),
                    annotations=apply_patch(node.annotations, patch.annotations),
                    runtime_version=node.runtime_version,
                )
        for obj in result.applies:
            key = obj_key(obj)
            try:
                applied = await aapply(self.client, codecs.from_dict(obj), policy=policy_retry)
            except KubeError as error:
                if key[0] not in OPTIONAL_KINDS or not _not_served(error):
                    raise
                # Its state says what is missing; the rest of the pass goes on, and the
                # not-ready requeue tries again (the CRD may be installed later).
                self.missing_kinds[key[0]] = OPTIONAL_KINDS[key[0]]
                continue
            self.missing_kinds.pop(key[0], None)
            self.metrics.api_writes_total += 1
            self.applied_hashes[key] = obj["metadata"]["annotations"][HASH_ANNOTATION]
            if key[0] in WATCHED_OWNED:
                self._on_owned("MODIFIED", {**_plain(applied), "kind": key[0]})
        for kind, namespace, name in result.deletes:
            deleting = _later(
                self.client.delete, OWNED_KINDS[kind], name, namespace=namespace or None
            )
            await aretry(deleting, f"delete {kind} {name}", policy_retry)
            self.metrics.api_writes_total += 1
            self.owned.pop((kind, namespace, name), None)
            self.applied_hashes.pop((kind, namespace, name), None)
        for name, status in sorted(result.driver_statuses.items()):
            before = self.drivers.get(name, {}).get("status")  # the watch may update it meanwhile
            await self._patch_status(NVIDIADriver.Status, "nvidiadriver", name, status)
            if name in self.drivers:
                self.drivers[name] = {**self.drivers[name], "status": status}
                for kind, reason, message in cr_events(before, status):
                    await self._post_on_driver(self.drivers[name], kind, reason, message)
        for name, status in sorted(result.statuses.items()):
            await self._patch_status(ClusterPolicy.Status, "clusterpolicy", name, status)
            if name in self.policies:
                self.policies[name] = {**self.policies[name], "status": status}
        events = list(result.events)
        for policy in self.policies.values():
            mark = (
                str(policy["metadata"].get("uid")),
                int(policy["metadata"].get("generation") or 0),
            )
            if policy["metadata"]["name"] == result.active and mark not in self.warned:
                self.warned.add(mark)
                events += deprecation_events(policy)
        for event in events:
            await self._post(event)

    async def _post(self, event: Event) -> None:
        policy = self.policies.get(event.policy) or {"metadata": {"name": event.policy}}
        involved = ClusterPolicy.from_dict(
            {"apiVersion": "nvidia.com/v1", "kind": "ClusterPolicy", **policy}
        )
        kind: Literal["Normal", "Warning"] = "Warning" if event.type == "Warning" else "Normal"
        try:
            await apost_event(
                self.client,
                involved,
                event.reason,
                event.message[:1024],
                type=kind,
                policy=RetryPolicy(attempts=1),
            )
        except GpuOperatorError as error:  # an Event is best effort; never fail a pass for it
            log.warning("posting event %s failed: %s", event.reason, error)

    async def _post_on_driver(
        self, body: dict[str, Any], kind: str, reason: str, message: str
    ) -> None:
        """An Event on an NVIDIADriver (``kubectl describe nvd NAME``), best effort."""
        involved = NVIDIADriver.from_dict(
            {"apiVersion": "nvidia.com/v1alpha1", "kind": "NVIDIADriver", **body}
        )
        level: Literal["Normal", "Warning"] = "Warning" if kind == "Warning" else "Normal"
        try:
            await apost_event(
                self.client,
                involved,
                reason,
                message[:1024],
                type=level,
                policy=RetryPolicy(attempts=1),
            )
        except GpuOperatorError as error:
            log.warning("posting event %s on nvidiadriver failed: %s", reason, error)

    def _upgrade_due(self, auto_upgrade: bool) -> bool:
        """Whether the upgrade controller has anything to look at, from what the watches already
        hold: a GPU node not yet labelled ``upgrade-done``, or a driver DaemonSet whose pods do
        not all run its newest template. At steady state it is not called (no reads)."""
        states = [n.labels.get(UPGRADE_STATE_LABEL) for n in self.nodes.values() if n.gpu_present]
        if not auto_upgrade:
            return any(state is not None for state in states)
        if any(state != UPGRADE_DONE for state in states):
            return True
        for (kind, _, name), body in self.owned.items():
            if kind != "DaemonSet" or not is_driver_pool(name):
                continue
            status = body.get("status") or {}
            generation = int((body.get("metadata") or {}).get("generation") or 0)
            if int(status.get("observedGeneration") or 0) < generation or int(
                status.get("updatedNumberScheduled") or 0
            ) < int(status.get("desiredNumberScheduled") or 0):
                return True
        return False

    # -- the loop ------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event, *, renew_s: float = 5.0) -> None:
        await self.sync()
        tasks = [
            asyncio.create_task(self._watch(res, sink, args)) for res, sink, args in self._sources()
        ]
        if not self.drivers_served:
            tasks.append(asyncio.create_task(self._await_drivers()))
        if self.elector is not None:
            tasks.append(asyncio.create_task(self._lead(stop, renew_s)))
        self.dirty.set()
        try:
            await self._work(stop)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.elector is not None:
                await self.elector.release()

    async def _lead(self, stop: asyncio.Event, renew_s: float) -> None:
        assert self.elector is not None
        while not stop.is_set():
            was = self.elector.leading
            try:
                leading = await self.elector.try_acquire()
            except Exception as error:
                log.warning("leader election: %s", error)
                leading = False
                self.elector.leading = False
            self.metrics.leading = leading
            if leading and not was:
                self.dirty.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), renew_s)

    async def _work(self, stop: asyncio.Event) -> None:
        requeue: float | None = None
        while not stop.is_set():
            waiter = asyncio.create_task(self.dirty.wait())
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait(
                {waiter, stopper}, timeout=requeue, return_when=asyncio.FIRST_COMPLETED
            )
            waiter.cancel()
            stopper.cancel()
            if stop.is_set():
                return
            await asyncio.sleep(self.settings.debounce_s)
            self.dirty.clear()
            if self.elector is not None and not self.elector.leading:
                self.metrics.first_pass_done = True
                requeue = None
                continue
            try:
                requeue = (await self.reconcile_once()).requeue_after_s
            except Exception as error:
                log.error("reconcile failed: %s", error)
                requeue = 5.0


# Kinds whose CRD a cluster may lack: applying one there is a clear not-ready reason for its
# state, not a failed pass.
OPTIONAL_KINDS = {
    "ServiceMonitor": (
        "the ServiceMonitor CRD (monitoring.coreos.com/v1, from the Prometheus Operator) is not "
        "installed: install it, or set dcgmExporter.serviceMonitor.enabled=false"
    ),
}


def _not_served(error: KubeError) -> bool:
    """The API server has no such resource (404 on the kind itself, not on an object)."""
    cause = error.__cause__
    return isinstance(cause, ApiError) and cause.status.code == 404


def _later(
    fn: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any
) -> Callable[[], Awaitable[Any]]:
    """A retryable attempt: calls ``fn(*args, **kwargs)`` afresh each time."""

    async def attempt() -> Any:
        return await fn(*args, **kwargs)

    return attempt


def _pod_waits(pod: Mapping[str, Any]) -> list[str]:
    """``node gpu-2 pod X: ImagePullBackOff <image>`` lines for a pod that is stuck."""
    node = (pod.get("spec") or {}).get("nodeName") or "?"
    name = (pod.get("metadata") or {}).get("name")
    status = pod.get("status") or {}
    lines = []
    for key, what in (("initContainerStatuses", "init container "), ("containerStatuses", "")):
        for c in status.get(key) or ():
            waiting = (c.get("state") or {}).get("waiting")
            running = (c.get("state") or {}).get("running")
            if waiting:
                reason = waiting.get("reason", "waiting")
                text = (
                    f"node {node} pod {name}: {what}{c.get('name')} {reason} {c.get('image', '')}"
                )
                lines.append(text.rstrip())
            elif running and what and not c.get("ready"):
                lines.append(
                    f"node {node} pod {name}: init container {c.get('name')} still running"
                )
    return lines
