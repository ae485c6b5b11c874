"""The upgrade controller's data: the policy (``driver.upgradePolicy`` with upstream's defaults,
built from the ClusterPolicy by ``operator.upgrade_policy``) and each node as the controller sees
it — labels, annotations, cordon, readiness, its driver pod (current or not), the validator, and
the pods that matter — built from plain API objects."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gpu_operator.driver.pools import is_driver_pool
from gpu_operator.errors import ConfigError
from gpu_operator.labelselectors import Selector
from gpu_operator.names import (
    NVIDIA_PREFIX,
    UPGRADE_DRAIN_SKIP_LABEL,
    UPGRADE_ENABLED_ANNOTATION,
    UPGRADE_INITIAL_UNSCHEDULABLE_ANNOTATION,
    UPGRADE_REQUESTED_ANNOTATION,
    UPGRADE_REQUESTOR_MODE_ANNOTATION,
    UPGRADE_SKIP_LABEL,
    UPGRADE_STATE_LABEL,
    UPGRADE_VALIDATION_START_ANNOTATION,
    UPGRADE_WAIT_FOR_SAFE_LOAD_ANNOTATION,
    UPGRADE_WAIT_START_ANNOTATION,
)

DRIVER_APP = "nvidia-driver-daemonset"
VALIDATOR_APP = "nvidia-operator-validator"
GPU_RESOURCE_PREFIX = NVIDIA_PREFIX
TEMPLATE_GENERATION = "pod-template-generation"
SOURCE = "spec.driver.upgradePolicy"

# Upstream's keys (k8s-operator-libs with driver name ``gpu``), verbatim.
STATE_LABEL = UPGRADE_STATE_LABEL
SKIP_LABEL = UPGRADE_SKIP_LABEL
DRAIN_SKIP_LABEL = UPGRADE_DRAIN_SKIP_LABEL
UPGRADE_ENABLED = UPGRADE_ENABLED_ANNOTATION
WAIT_FOR_SAFE_LOAD = UPGRADE_WAIT_FOR_SAFE_LOAD_ANNOTATION
INITIAL_UNSCHEDULABLE = UPGRADE_INITIAL_UNSCHEDULABLE_ANNOTATION
WAIT_START = UPGRADE_WAIT_START_ANNOTATION
VALIDATION_START = UPGRADE_VALIDATION_START_ANNOTATION
UPGRADE_REQUESTED = UPGRADE_REQUESTED_ANNOTATION
REQUESTOR_MODE = UPGRADE_REQUESTOR_MODE_ANNOTATION
# Ours (upstream keeps these in memory): when pod deletion / drain began, and why a node failed.
POD_DELETION_START = "gpu-operator.nvidia.com/driver-upgrade-pod-deletion-start-time"
DRAIN_START = "gpu-operator.nvidia.com/driver-upgrade-drain-start-time"
FAILURE = "gpu-operator.nvidia.com/driver-upgrade-failure"


@dataclass(frozen=True)
class UpgradePolicy:
    """``driver.upgradePolicy`` with upstream's defaults (reference §4, §5). Seconds throughout;
    a timeout of 0 waits without limit, as upstream."""

    auto_upgrade: bool = True
    max_parallel: int = 1
    """``maxParallelUpgrades``; 0 = unlimited."""
    max_unavailable: int | str = "25%"
    """``maxUnavailable``: a count or a percentage of the managed nodes, rounded up."""
    wait_selector: Selector | None = None
    wait_timeout_s: int = 0
    pod_deletion_force: bool = False
    pod_deletion_timeout_s: int = 300
    pod_deletion_empty_dir: bool = False
    drain_enable: bool = False
    drain_force: bool = False
    drain_selector: Selector = field(default_factory=Selector)
    drain_timeout_s: int = 300
    drain_empty_dir: bool = False
    validation_timeout_s: int = 600
    """How long ``validation-required`` waits for the driver and validator pods to be Ready."""

    def unavailable_limit(self, total: int) -> int:
        return resolve_max_unavailable(self.max_unavailable, total)


def resolve_max_unavailable(value: int | str, total: int) -> int:
    """``maxUnavailable`` for ``total`` nodes: an int, a digit string, or ``N%`` rounded up
    (25% of 10 → 3). Anything else is a ``ConfigError``."""
    if isinstance(value, int):
        if value < 0:
            raise ConfigError(f"{SOURCE}.maxUnavailable: must be 0 or more, not {value}")
        return value
    text = value.strip()
    if text.endswith("%") and text[:-1].isdigit():
        return math.ceil(int(text[:-1]) * total / 100)
    if text.isdigit():
        return int(text)
    raise ConfigError(f"{SOURCE}.maxUnavailable: {value!r} is neither a count nor a percentage")


@dataclass(frozen=True)
class PodView:
    """A pod on the node, reduced to what eviction and drain decide on."""

    namespace: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    gpu: bool = False
    """Requests or limits an ``nvidia.com/*`` resource (a GPU or MIG device)."""
    daemonset: bool = False
    controlled: bool = True
    """Has a controller owner (a bare pod needs ``force`` to be deleted, as ``kubectl drain``)."""
    empty_dir: bool = False
    finished: bool = False
    """Phase Succeeded or Failed: nothing to wait for."""

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class DriverPod:
    namespace: str
    name: str
    current: bool
    """Runs the DaemonSet's newest template (``pod-template-generation`` = DS generation)."""
    ready: bool


@dataclass(frozen=True)
class NodeView:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    unschedulable: bool = False
    ready: bool = True
    driver: DriverPod | None = None
    validator_ready: bool = False
    pods: tuple[PodView, ...] = ()


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _pod_ready(pod: Mapping[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or ()
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def pod_view(pod: Mapping[str, Any]) -> PodView:
    meta, spec = _meta(pod), pod.get("spec") or {}
    owners = meta.get("ownerReferences") or ()
    controller = [o for o in owners if o.get("controller")]
    resources: list[str] = []
    for c in [*(spec.get("containers") or ()), *(spec.get("initContainers") or ())]:
        for part in ("limits", "requests"):
            resources += list((c.get("resources") or {}).get(part) or {})
    return PodView(
        namespace=str(meta.get("namespace") or "default"),
        name=str(meta.get("name")),
        labels=dict(meta.get("labels") or {}),
        gpu=any(r.startswith(GPU_RESOURCE_PREFIX) for r in resources),
        daemonset=any(o.get("kind") == "DaemonSet" for o in controller),
        controlled=bool(controller),
        empty_dir=any("emptyDir" in v for v in spec.get("volumes") or ()),
        finished=(pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"),
    )


def _driver_pod(pod: Mapping[str, Any], generations: Mapping[str, int]) -> DriverPod:
    meta = _meta(pod)
    owners: list[Mapping[str, Any]] = list(meta.get("ownerReferences") or ())
    owner: Mapping[str, Any] = next((o for o in owners if o.get("kind") == "DaemonSet"), {})
    want = generations.get(str(owner.get("name") or (meta.get("labels") or {}).get("app")))
    have = (meta.get("labels") or {}).get(TEMPLATE_GENERATION)
    return DriverPod(
        namespace=str(meta.get("namespace")),
        name=str(meta.get("name")),
        current=want is not None and have == str(want),
        ready=_pod_ready(pod) and not meta.get("deletionTimestamp"),
    )


def is_driver_pod(pod: Mapping[str, Any]) -> bool:
    """A pod of a driver DaemonSet (the ClusterPolicy's pools or an NVIDIADriver CR's)."""
    return is_driver_pool(str((_meta(pod).get("labels") or {}).get("app") or ""))


def node_views(
    nodes: Iterable[Mapping[str, Any]],
    pods: Iterable[Mapping[str, Any]],
    daemonsets: Iterable[Mapping[str, Any]],
) -> list[NodeView]:
    """One view per node that runs (or ran: it has an upgrade state) a driver pod, from the
    Node, Pod and driver DaemonSet objects as the API returns them. Sorted by name."""
    generations = {
        str(_meta(ds).get("name")): int(_meta(ds).get("generation") or 1) for ds in daemonsets
    }
    by_node: dict[str, list[Mapping[str, Any]]] = {}
    for pod in pods:
        by_node.setdefault(str((pod.get("spec") or {}).get("nodeName") or ""), []).append(pod)
    views = []
    for node in nodes:
        meta = _meta(node)
        name = str(meta.get("name"))
        labels = dict(meta.get("labels") or {})
        on_node = by_node.get(name, [])
        drivers = [p for p in on_node if is_driver_pod(p)]
        if not drivers and not labels.get(STATE_LABEL):
            continue
        conditions = (node.get("status") or {}).get("conditions") or ()
        validator = [
            p for p in on_node if (_meta(p).get("labels") or {}).get("app") == VALIDATOR_APP
        ]
        views.append(
            NodeView(
                name=name,
                labels=labels,
                annotations=dict(meta.get("annotations") or {}),
                unschedulable=bool((node.get("spec") or {}).get("unschedulable")),
                ready=not conditions
                or any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions),
                driver=_driver_pod(drivers[0], generations) if drivers else None,
                validator_ready=any(_pod_ready(p) for p in validator),
                pods=tuple(pod_view(p) for p in on_node if not is_driver_pod(p)),
            )
        )
    return sorted(views, key=lambda v: v.name)
