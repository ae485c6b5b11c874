"""Object semantics controllers depend on: uid, creationTimestamp, resourceVersion, generation,
generateName, optimistic concurrency, status subresources, finalizers and deletionTimestamp,
ownerReference garbage collection, namespaces, CRDs becoming served resources.

Every write goes through ``_write``, so the rules hold for create, update, patch and apply alike.
"""

from __future__ import annotations

import copy
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

from gpu_operator.sandbox.apiserver import apply as ssa
from gpu_operator.sandbox.apiserver import crds, resource_v1
from gpu_operator.sandbox.apiserver.defaulting import default
from gpu_operator.sandbox.apiserver.deletion import DeletionRules
from gpu_operator.sandbox.apiserver.resources import (
    CRD_KEY,
    NAMESPACE_KEY,
    RESOURCE_CLAIM_KEY,
    Registry,
    ResourceType,
)
from gpu_operator.sandbox.apiserver.selectors import Selector
from gpu_operator.sandbox.apiserver.status import (
    ApiStatus,
    already_exists,
    bad_request,
    conflict,
    invalid,
    not_found,
)
from gpu_operator.sandbox.apiserver.storage import Obj, Store
from gpu_operator.sandbox.apiserver.validation import (
    check_metadata,
    check_name,
    check_schema,
    prune,
)
from gpu_operator.sandbox.timestamps import rfc3339

_SUFFIX_CHARS = "bcdfghjklmnpqrstvwxz2456789"
_INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_IGNORED_FOR_NOOP = ("resourceVersion", "managedFields")


def _ownership(obj: Obj) -> list[Obj]:
    """managedFields without timestamps: who owns what, which a no-op check must still see."""
    return [
        {k: v for k, v in entry.items() if k != "time"}
        for entry in obj["metadata"].get("managedFields") or []
    ]


def _name_rule(rtype: ResourceType) -> str:
    if rtype.group == "rbac.authorization.k8s.io":
        return "segment"
    return "label" if rtype.plural in ("namespaces", "services") else "subdomain"


def _spec_part(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _same(a: Obj, b: Obj) -> bool:
    def strip(o: Obj) -> Obj:
        meta = {k: v for k, v in o["metadata"].items() if k not in _IGNORED_FOR_NOOP}
        return {**o, "metadata": meta}

    return strip(a) == strip(b) and _ownership(a) == _ownership(b)


class Cluster(DeletionRules):
    """The emulated cluster's objects and the rules for changing them."""

    def __init__(self, store: Store | None = None, clock: Callable[[], float] = time.time):
        self.store = store or Store()
        self.registry = Registry()
        self.clock = clock
        for name in _INITIAL_NAMESPACES:
            self.create(self.type_of(NAMESPACE_KEY), "", {"metadata": {"name": name}}, "sandbox")

    # -- reading ---------------------------------------------------------------------------------

    def type_of(self, key: str) -> ResourceType:
        return self.registry.by_key(key)[0]

    def get(self, rtype: ResourceType, namespace: str, name: str) -> Obj:
        obj = self.store.get(rtype.key, namespace, name)
        if obj is None:
            raise not_found(rtype, name)
        return obj

    def list_objects(
        self, rtype: ResourceType, namespace: str | None, selector: Selector
    ) -> list[Obj]:
        return [o for o in self.store.list_objects(rtype.key, namespace) if selector.matches(o)]

    def now(self) -> str:
        return rfc3339(self.clock())

    # -- writing ---------------------------------------------------------------------------------

    def create(
        self,
        rtype: ResourceType,
        namespace: str,
        body: Any,
        manager: str,
        *,
        managed: list[Obj] | None = None,
        dry_run: bool = False,
    ) -> Obj:
        obj = self.shape(rtype, namespace, body)
        meta = obj["metadata"]
        if meta.get("resourceVersion"):
            raise bad_request("resourceVersion should not be set on objects to be created")
        if not meta.get("name") and meta.get("generateName"):
            for _ in range(16):
                suffix = "".join(random.choices(_SUFFIX_CHARS, k=5))
                meta["name"] = meta["generateName"] + suffix
                if self.store.get(rtype.key, namespace, meta["name"]) is None:
                    break
        if rtype.namespaced:
            self._check_namespace(namespace)
        name = meta.get("name", "")
        if self.store.get(rtype.key, namespace, name) is not None:
            raise already_exists(rtype, name)
        for server_field in ("deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(server_field, None)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=self.now(), generation=1)
        if rtype.plural == "pods":
            obj["status"] = {"phase": "Pending", **(obj.get("status") or {})}
        elif rtype.plural == "namespaces":
            obj["status"] = {"phase": "Active"}
        elif rtype.key == "/secrets" and not obj.get("type"):
            obj["type"] = "Opaque"
        elif (rtype.custom and rtype.status) or rtype.key == RESOURCE_CLAIM_KEY:
            obj.pop("status", None)
        return self._write(rtype, None, obj, manager, "", managed=managed, dry_run=dry_run)

    def update(
        self,
        rtype: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        manager: str,
        subresource: str = "",
        *,
        dry_run: bool = False,
    ) -> Obj:
        old = self.get(rtype, namespace, name)
        new = self.shape(rtype, namespace, body)
        if new["metadata"].get("name") != name:
            raise bad_request(
                f"the name of the object ({new['metadata'].get('name')}) does not match the name "
                f"on the URL ({name})"
            )
        wanted = new["metadata"].get("resourceVersion")
        if wanted and wanted != old["metadata"]["resourceVersion"]:
            raise conflict(
                rtype,
                name,
                "the object has been modified; please apply your changes to the "
                "latest version and try again",
            )
        return self._write(rtype, old, new, manager, subresource, dry_run=dry_run)

    def replace(
        self,
        rtype: ResourceType,
        old: Obj,
        new: Obj,
        manager: str,
        subresource: str,
        *,
        managed: list[Obj] | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """Write ``new`` over ``old`` (a patch result), refusing a stale resourceVersion."""
        wanted = new.get("metadata", {}).get("resourceVersion")
        if wanted and wanted != old["metadata"]["resourceVersion"]:
            raise conflict(
                rtype,
                old["metadata"]["name"],
                "the object has been modified; please apply your "
                "changes to the latest version and try again",
            )
        return self._write(rtype, old, new, manager, subresource, managed=managed, dry_run=dry_run)

    def apply(
        self,
        rtype: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        manager: str,
        force: bool,
        subresource: str = "",
        *,
        dry_run: bool = False,
    ) -> Obj:
        applied = self.shape(rtype, namespace, body)
        if applied["metadata"].get("name") != name:
            raise bad_request(
                f"the name of the object ({applied['metadata'].get('name')}) does not match the "
                f"name on the URL ({name})"
            )
        if rtype.status and subresource == "":
            applied.pop("status", None)
        live = self.store.get(rtype.key, namespace, name)
        merged, managed = ssa.apply(
            live,
            applied,
            manager=manager,
            force=force,
            subresource=subresource,
            api_version=rtype.api_version,
            now=self.now(),
        )
        merged["metadata"]["name"] = name
        if live is None:
            return self.create(rtype, namespace, merged, manager, managed=managed, dry_run=dry_run)
        return self.replace(
            rtype, live, merged, manager, subresource, managed=managed, dry_run=dry_run
        )

    def shape(self, rtype: ResourceType, namespace: str, body: Any) -> Obj:
        """Check the envelope of a request body and return a private copy to fill in."""
        if not isinstance(body, dict):
            raise bad_request(f"the body of a {rtype.kind} request must be a JSON object")
        obj = copy.deepcopy(body)
        kind, api_version = obj.get("kind"), obj.get("apiVersion")
        if kind not in (None, "", rtype.kind):
            raise bad_request(f"the kind {kind!r} of the object does not match {rtype.kind!r}")
        if api_version not in (None, "", rtype.api_version):
            raise bad_request(
                f"the apiVersion {api_version!r} of the object does not match {rtype.api_version!r}"
            )
        obj.pop("kind", None)
        obj.pop("apiVersion", None)
        obj = {"apiVersion": rtype.api_version, "kind": rtype.kind, **obj}
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        if rtype.namespaced:
            if meta.get("namespace") not in (None, "", namespace):
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        return obj

    def _check_namespace(self, namespace: str) -> None:
        ns_type = self.type_of(NAMESPACE_KEY)
        ns = self.store.get(NAMESPACE_KEY, "", namespace)
        if ns is None:
            raise not_found(ns_type, namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise ApiStatus(
                403,
                f"unable to create new content in namespace {namespace} because it is being "
                "terminated",
                reason="Forbidden",
            )

    def _structural(self, rtype: ResourceType, obj: Obj) -> Obj:
        """A structural schema's pruning, then its defaults (absent fields of present objects)."""
        if rtype.schema is None:
            return obj
        obj = prune(obj, rtype.schema, root=True)
        return default(obj, rtype.schema, root=True) if rtype.defaults else obj

    def default_stored(self, crd: Obj) -> None:
        """Defaults apply on read from storage too (a CRD that gains a default shows it on the
        objects already stored): kept as the stored copy, with no new resourceVersion and no
        watch event, as a real API server does not write read-time defaults back."""
        spec = crd["spec"]
        storage = next((v["name"] for v in spec["versions"] if v.get("storage")), None)
        for rtype in crds.crd_types(crd):
            if rtype.version != storage or not rtype.defaults or rtype.schema is None:
                continue
            for obj in self.store.list_objects(rtype.key):
                filled = default(obj, rtype.schema, root=True)
                if filled is not obj:
                    self.store.refill(rtype.key, filled)

    def _validate(self, rtype: ResourceType, obj: Obj) -> Obj:
        meta = obj["metadata"]
        name = meta.get("name", "")
        causes = check_name(name, _name_rule(rtype)) + check_metadata(meta)
        if rtype.plural == "pods":
            containers = (obj.get("spec") or {}).get("containers")
            if not isinstance(containers, list) or not containers:
                causes.append(("spec.containers", "Required value"))
            else:
                for n, c in enumerate(containers):
                    for field in ("name", "image"):
                        if not isinstance(c, dict) or not c.get(field):
                            causes.append((f"spec.containers[{n}].{field}", "Required value"))
            causes += resource_v1.check_pod(obj.get("spec"))
        if rtype.plural == "customresourcedefinitions":
            causes += crds.check_crd(obj)
        if rtype.schema is not None:
            obj = self._structural(rtype, obj)
            if rtype.group == resource_v1.GROUP:
                resource_v1.apply_defaults(rtype.plural, obj)
            causes += check_schema(obj, rtype.schema)
        if rtype.group == resource_v1.GROUP:
            causes += resource_v1.check(rtype.plural, obj)
        if causes:
            raise invalid(rtype, name, causes)
        return obj

    def _write(
        self,
        rtype: ResourceType,
        old: Obj | None,
        new: Obj,
        manager: str,
        subresource: str,
        *,
        managed: list[Obj] | None = None,
        dry_run: bool = False,
    ) -> Obj:
        if rtype.group == resource_v1.GROUP:  # defaulted first: a default is not a spec change
            resource_v1.apply_defaults(rtype.plural, new)
        elif rtype.schema is not None and subresource != "status":  # pruned, defaulted first too
            new = self._structural(rtype, new)
        meta = new["metadata"]
        if old is not None:
            old_meta = old["metadata"]
            if subresource == "status":
                new = {**old, "status": new.get("status")}
                if new["status"] is None:
                    new.pop("status")
                meta = new["metadata"] = dict(old_meta)
            else:
                for fixed in (
                    "uid",
                    "creationTimestamp",
                    "generation",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "namespace",
                    "name",
                ):
                    if fixed in old_meta:
                        meta[fixed] = old_meta[fixed]
                    else:
                        meta.pop(fixed, None)
                if rtype.status:
                    if "status" in old:
                        new["status"] = old["status"]
                    else:
                        new.pop("status", None)
                if _spec_part(new) != _spec_part(old):
                    meta["generation"] = int(old_meta.get("generation", 1)) + 1
            if old_meta.get("deletionTimestamp"):
                added = set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
                if added:
                    raise invalid(
                        rtype,
                        meta["name"],
                        [
                            (
                                "metadata.finalizers",
                                f"Forbidden: no new finalizers can be added if the object is being "
                                f"deleted, found new finalizers {sorted(added)}",
                            )
                        ],
                    )
        new = self._validate(rtype, new)
        if old is not None and rtype.group == resource_v1.GROUP and subresource != "status":
            immutable = resource_v1.check_update(rtype.plural, old, new)
            if immutable:
                raise invalid(rtype, new["metadata"]["name"], immutable)
        meta = new["metadata"]
        meta["resourceVersion"] = old["metadata"]["resourceVersion"] if old else "0"
        meta["managedFields"] = (
            managed
            if managed is not None
            else ssa.record_update(old, new, manager, subresource, rtype.api_version, self.now())
        )
        if old is not None and _same(old, new):
            return old
        if rtype.key == CRD_KEY:
            new = self._establish(new, dry_run)
        if dry_run:
            return new
        meta["resourceVersion"] = str(self.store.next_rv())
        if old is not None and meta.get("deletionTimestamp") and not meta.get("finalizers"):
            return self._remove(rtype, new)
        self.store.put(rtype.key, new, old)
        return new

    def _establish(self, crd: Obj, dry_run: bool) -> Obj:
        types = crds.crd_types(crd)
        if not dry_run:
            self.registry.set_crd(crd["metadata"]["name"], types)
            self.default_stored(crd)
        return {**crd, "status": crds.established_status(crd, self.now())}
