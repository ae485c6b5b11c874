"""The resource types the emulator serves: the built-in table and the ones CRDs add at run time."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gpu_operator.sandbox.apiserver.resource_v1 import SCHEMAS as RESOURCE_V1_SCHEMAS

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
BASE_FIELD_LABELS = frozenset({"metadata.name", "metadata.namespace"})
POD_FIELD_LABELS = BASE_FIELD_LABELS | {
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
}
EVENT_FIELD_LABELS = BASE_FIELD_LABELS | {
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
}


@dataclass(frozen=True)
class PrinterColumn:
    """One column of ``kubectl get`` output (a CRD's ``additionalPrinterColumns`` entry)."""

    name: str
    type: str
    json_path: str
    priority: int = 0


@dataclass(frozen=True)
class ResourceType:
    """One served group/version/plural and the facts discovery and the handlers need."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    status: bool = False
    eviction: bool = False
    categories: tuple[str, ...] = ()
    field_labels: frozenset[str] = BASE_FIELD_LABELS
    custom: bool = False
    schema: Mapping[str, Any] | None = field(default=None, compare=False, hash=False)
    printer_columns: tuple[PrinterColumn, ...] = ()
    defaults: bool = False  # the schema has a ``default`` somewhere (structural defaulting)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def key(self) -> str:
        """Storage key: objects are shared by every version of one group and plural."""
        return f"{self.group}/{self.plural}"

    @property
    def qualified(self) -> str:
        """``plural.group`` as messages name a resource (``pods``, ``widgets.x.io``)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


def _core(plural: str, kind: str, namespaced: bool, *short: str, **kw: Any) -> ResourceType:
    return ResourceType("", "v1", plural, kind, namespaced, tuple(short), **kw)


def _grouped(
    gv: str, plural: str, kind: str, namespaced: bool, *short: str, **kw: Any
) -> ResourceType:
    group, version = gv.split("/")
    return ResourceType(group, version, plural, kind, namespaced, tuple(short), **kw)


BUILTINS: tuple[ResourceType, ...] = (
    _core("namespaces", "Namespace", False, "ns", status=True),
    _core(
        "nodes",
        "Node",
        False,
        "no",
        status=True,
        field_labels=BASE_FIELD_LABELS | {"spec.unschedulable"},
    ),
    _core(
        "pods",
        "Pod",
        True,
        "po",
        status=True,
        eviction=True,
        categories=("all",),
        field_labels=POD_FIELD_LABELS,
    ),
    _core("services", "Service", True, "svc", status=True, categories=("all",)),
    _core("configmaps", "ConfigMap", True, "cm"),
    _core("secrets", "Secret", True, field_labels=BASE_FIELD_LABELS | {"type"}),
    _core("serviceaccounts", "ServiceAccount", True, "sa"),
    _core("events", "Event", True, "ev", field_labels=EVENT_FIELD_LABELS),
    _grouped("events.k8s.io/v1", "events", "Event", True, "ev"),
    _grouped("apps/v1", "daemonsets", "DaemonSet", True, "ds", status=True, categories=("all",)),
    _grouped(
        "apps/v1", "deployments", "Deployment", True, "deploy", status=True, categories=("all",)
    ),
    _grouped("apps/v1", "replicasets", "ReplicaSet", True, "rs", status=True, categories=("all",)),
    _grouped("apps/v1", "controllerrevisions", "ControllerRevision", True),
    _grouped("rbac.authorization.k8s.io/v1", "roles", "Role", True),
    _grouped("rbac.authorization.k8s.io/v1", "rolebindings", "RoleBinding", True),
    _grouped("rbac.authorization.k8s.io/v1", "clusterroles", "ClusterRole", False),
    _grouped("rbac.authorization.k8s.io/v1", "clusterrolebindings", "ClusterRoleBinding", False),
    _grouped("node.k8s.io/v1", "runtimeclasses", "RuntimeClass", False),
    _grouped("coordination.k8s.io/v1", "leases", "Lease", True),
    _grouped("policy/v1", "poddisruptionbudgets", "PodDisruptionBudget", True, "pdb", status=True),
    _grouped(
        "resource.k8s.io/v1",
        "deviceclasses",
        "DeviceClass",
        False,
        schema=RESOURCE_V1_SCHEMAS["deviceclasses"],
    ),
    _grouped(
        "resource.k8s.io/v1",
        "resourceclaims",
        "ResourceClaim",
        True,
        status=True,
        schema=RESOURCE_V1_SCHEMAS["resourceclaims"],
    ),
    _grouped(
        "resource.k8s.io/v1",
        "resourceclaimtemplates",
        "ResourceClaimTemplate",
        True,
        schema=RESOURCE_V1_SCHEMAS["resourceclaimtemplates"],
    ),
    _grouped(
        "resource.k8s.io/v1",
        "resourceslices",
        "ResourceSlice",
        False,
        field_labels=BASE_FIELD_LABELS | {"spec.nodeName", "spec.driver"},
        schema=RESOURCE_V1_SCHEMAS["resourceslices"],
        printer_columns=(  # upstream's printResourceSlice: NAME, NODE, DRIVER, POOL, AGE
            PrinterColumn("Node", "string", ".spec.nodeName"),
            PrinterColumn("Driver", "string", ".spec.driver"),
            PrinterColumn("Pool", "string", ".spec.pool.name"),
        ),
    ),
    _grouped(
        "apiextensions.k8s.io/v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        False,
        "crd",
        "crds",
        status=True,
    ),
)

CRD_KEY = "apiextensions.k8s.io/customresourcedefinitions"
RESOURCE_CLAIM_KEY = "resource.k8s.io/resourceclaims"
NAMESPACE_KEY = "/namespaces"
POD_KEY = "/pods"


class Registry:
    """Every served resource type, looked up by path parts; CRDs add and remove theirs."""

    def __init__(self, builtins: Iterable[ResourceType] = BUILTINS):
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        self._by_crd: dict[str, list[ResourceType]] = {}
        for rtype in builtins:
            self._types[(rtype.group, rtype.version, rtype.plural)] = rtype

    def find(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._types.get((group, version, plural))

    def all(self) -> list[ResourceType]:
        return list(self._types.values())

    def by_key(self, key: str) -> list[ResourceType]:
        return [t for t in self._types.values() if t.key == key]

    def group_versions(self) -> dict[str, list[str]]:
        """Group name → its served versions, preferred first (core is the ``""`` group)."""
        out: dict[str, list[str]] = {}
        for group, version, _ in self._types:
            versions = out.setdefault(group, [])
            if version not in versions:
                versions.append(version)
        return out

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [t for (g, v, _), t in self._types.items() if g == group and v == version]

    def set_crd(self, crd_name: str, types: list[ResourceType]) -> None:
        self.drop_crd(crd_name)
        for rtype in types:
            self._types[(rtype.group, rtype.version, rtype.plural)] = rtype
        self._by_crd[crd_name] = types

    def drop_crd(self, crd_name: str) -> list[ResourceType]:
        dropped = self._by_crd.pop(crd_name, [])
        for rtype in dropped:
            self._types.pop((rtype.group, rtype.version, rtype.plural), None)
        return dropped
