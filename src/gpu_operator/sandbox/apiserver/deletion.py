"""Deletion rules: finalizers and ``deletionTimestamp``, graceful pod deletion, ownerReference
garbage collection (background, orphan), namespace termination, and a CRD's objects going with
it.

Graceful pod deletion (on when a kubelet will finish it — the sandbox turns it on; the bare
emulator has no kubelets and deletes pods at once): deleting a pod bound to a node and still
running only marks it (``deletionTimestamp`` = now + grace, ``deletionGracePeriodSeconds``);
the grace is the request's ``gracePeriodSeconds``, else the pod's
``terminationGracePeriodSeconds``, else 30. The node's kubelet stops the containers and deletes
the pod again with grace 0, which removes it. Pods that never ran (unbound, or finished) go at
once, as on a cluster."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from gpu_operator.sandbox.apiserver.resources import (
    CRD_KEY,
    NAMESPACE_KEY,
    POD_KEY,
    Registry,
    ResourceType,
)
from gpu_operator.sandbox.apiserver.status import ApiStatus, conflict
from gpu_operator.sandbox.apiserver.storage import Obj, Store
from gpu_operator.sandbox.timestamps import rfc3339

PROTECTED_NAMESPACES = frozenset({"default", "kube-system", "kube-public"})


class DeletionRules:
    """How objects leave the cluster; mixed into ``Cluster``, which provides the reading side."""

    store: Store
    registry: Registry
    graceful_pods: bool = False
    clock: Callable[[], float]

    def now(self) -> str:
        raise NotImplementedError

    def type_of(self, key: str) -> ResourceType:
        raise NotImplementedError

    def get(self, rtype: ResourceType, namespace: str, name: str) -> Obj:
        raise NotImplementedError

    def delete(
        self,
        rtype: ResourceType,
        namespace: str,
        name: str,
        *,
        propagation: str = "Background",
        uid: str | None = None,
        resource_version: str | None = None,
        dry_run: bool = False,
        grace_period: int | None = None,
    ) -> Obj:
        obj = self.get(rtype, namespace, name)
        meta = obj["metadata"]
        if uid and uid != meta["uid"]:
            raise conflict(
                rtype,
                name,
                f"Precondition failed: UID in precondition: {uid}, "
                f"UID in object meta: {meta['uid']}",
            )
        if resource_version and resource_version != meta["resourceVersion"]:
            raise conflict(
                rtype,
                name,
                "Precondition failed: ResourceVersion in precondition: "
                f"{resource_version}, ResourceVersion in object meta: "
                f"{meta['resourceVersion']}",
            )
        if dry_run:
            return obj
        if rtype.key == POD_KEY and self.graceful_pods:
            marked = self._mark_terminating(obj, grace_period)
            if marked is not None:
                return marked
        if propagation == "Orphan":
            self._orphan(meta["uid"])
        if rtype.key == NAMESPACE_KEY:
            if name in PROTECTED_NAMESPACES:
                raise ApiStatus(
                    403,
                    f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                    reason="Forbidden",
                )
            return self._terminate_namespace(obj)
        if meta.get("finalizers"):
            if meta.get("deletionTimestamp"):
                return obj
            marked = {
                **obj,
                "metadata": {
                    **meta,
                    "deletionTimestamp": self.now(),
                    "deletionGracePeriodSeconds": 0,
                    "resourceVersion": str(self.store.next_rv()),
                    "generation": int(meta.get("generation", 1)) + 1,
                },
            }
            self.store.put(rtype.key, marked, obj)
            return marked
        return self._remove(rtype, obj)

    def _mark_terminating(self, pod: Obj, grace_period: int | None) -> Obj | None:
        """The pod marked for its kubelet to stop, or ``None`` when it is to go at once."""
        spec, meta = pod.get("spec") or {}, pod["metadata"]
        if not spec.get("nodeName") or (pod.get("status") or {}).get("phase") in (
            "Succeeded",
            "Failed",
        ):
            return None
        grace = (
            spec.get("terminationGracePeriodSeconds", 30) if grace_period is None else grace_period
        )
        if int(grace) <= 0:
            return None
        if meta.get("deletionTimestamp"):
            return pod  # already terminating: a second delete changes nothing
        deadline = rfc3339(self.clock() + int(grace))
        marked = {
            **pod,
            "metadata": {
                **meta,
                "deletionTimestamp": deadline,
                "deletionGracePeriodSeconds": int(grace),
                "resourceVersion": str(self.store.next_rv()),
            },
        }
        self.store.put(POD_KEY, marked, pod)
        return marked

    def _remove(self, rtype: ResourceType, obj: Obj) -> Obj:
        gone = self.store.remove(rtype.key, obj)
        if rtype.key == CRD_KEY:
            for dropped in self.registry.drop_crd(obj["metadata"]["name"]):
                for cr in self.store.list_objects(dropped.key):
                    self.store.remove(dropped.key, cr)
                self.store.objects.pop(dropped.key, None)
        if self.store.dependents:
            self._later(self._collect_garbage)
        return gone

    def _later(self, job: Callable[[], None]) -> None:
        try:
            asyncio.get_running_loop().call_soon(job)
        except RuntimeError:
            job()

    def _dependents(self) -> list[tuple[str, Obj]]:
        out = []
        for key, namespace, name in list(self.store.dependents):
            obj = self.store.get(key, namespace, name)
            if obj is not None:
                out.append((key, obj))
        return out

    def _collect_garbage(self) -> None:
        """Background deletion: delete every dependent whose owners are all gone."""
        uids = self.store.uids
        for key, obj in self._dependents():
            owners = obj["metadata"]["ownerReferences"]
            if not any(o.get("uid") in uids for o in owners):
                meta = obj["metadata"]
                if self.store.get(key, meta.get("namespace", ""), meta["name"]) is obj:
                    self.delete(self.type_of(key), meta.get("namespace", ""), meta["name"])

    def _orphan(self, owner_uid: str) -> None:
        for key, obj in self._dependents():
            owners = obj["metadata"]["ownerReferences"]
            if any(o.get("uid") == owner_uid for o in owners):
                kept = [o for o in owners if o.get("uid") != owner_uid]
                meta = {**obj["metadata"], "ownerReferences": kept}
                if not kept:
                    meta.pop("ownerReferences")
                meta["resourceVersion"] = str(self.store.next_rv())
                self.store.put(key, {**obj, "metadata": meta}, obj)

    def _terminate_namespace(self, ns: Obj) -> Obj:
        name = ns["metadata"]["name"]
        marked = {
            **ns,
            "metadata": {
                **ns["metadata"],
                "deletionTimestamp": self.now(),
                "resourceVersion": str(self.store.next_rv()),
            },
            "status": {"phase": "Terminating"},
        }
        self.store.put(NAMESPACE_KEY, marked, ns)

        def finish() -> None:
            for key, bucket in list(self.store.objects.items()):
                for (namespace, _), obj in list(bucket.items()):
                    if namespace == name:
                        self.store.remove(key, obj)
            current = self.store.get(NAMESPACE_KEY, "", name)
            if current is not None:
                self._remove(self.type_of(NAMESPACE_KEY), current)

        self._later(finish)
        return marked
