"""The control-plane controllers the sandbox plays, each one pass over a listed snapshot: the
DaemonSet controller (a pod per matching node, RollingUpdate with maxUnavailable, OnDelete,
status counts) and the scheduler for pods without a node (selector, affinity, taints, extended
resources). Deployments and ReplicaSets: ``sandbox.deployments``."""

from __future__ import annotations

import copy
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gpu_operator.sandbox import events
from gpu_operator.sandbox.dra.plugin import DynamicResources
from gpu_operator.sandbox.rest import ApiError, Rest
from gpu_operator.sandbox.scheduling import (
    DAEMONSET_TOLERATIONS,
    node_fits,
    resource_fit,
    template_hash,
)

Obj = dict[str, Any]
HASH_LABEL = "controller-revision-hash"


@dataclass
class Snapshot:
    nodes: list[Obj] = field(default_factory=list)
    pods: list[Obj] = field(default_factory=list)
    daemonsets: list[Obj] = field(default_factory=list)
    deployments: list[Obj] = field(default_factory=list)
    replicasets: list[Obj] = field(default_factory=list)

    @classmethod
    def read(cls, rest: Rest) -> Snapshot:
        return cls(
            rest.list("nodes"),
            rest.list("pods"),
            rest.list("daemonsets"),
            rest.list("deployments"),
            rest.list("replicasets"),
        )

    def owned_by(self, owner: Obj, among: list[Obj] | None = None) -> list[Obj]:
        """The objects (pods unless ``among`` says otherwise) ``owner`` controls."""
        uid = owner["metadata"]["uid"]
        return [
            p
            for p in (self.pods if among is None else among)
            if any(r.get("uid") == uid for r in p["metadata"].get("ownerReferences") or [])
        ]


def pod_is_ready(pod: Obj) -> bool:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def owner_reference(owner: Obj, kind: str) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def pod_from(
    owner: Obj, kind: str, name: str, node: str | None, extra_labels: Mapping[str, str]
) -> Obj:
    """A pod from ``owner``'s template, controlled by it."""
    template = copy.deepcopy(owner["spec"]["template"])
    meta = template.get("metadata") or {}
    spec = template["spec"]
    labels = {**(meta.get("labels") or {}), **extra_labels}
    if kind == "DaemonSet":
        labels["pod-template-generation"] = str(owner["metadata"].get("generation", 1))
        spec["tolerations"] = [*(spec.get("tolerations") or []), *DAEMONSET_TOLERATIONS]
    if node:
        spec["nodeName"] = node
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": owner["metadata"]["namespace"],
            "labels": labels,
            "annotations": meta.get("annotations") or {},
            "ownerReferences": [owner_reference(owner, kind)],
        },
        "spec": spec,
    }


def suffix() -> str:
    return secrets.token_hex(3)[:5]


def _max_unavailable(ds: Obj, desired: int) -> int:
    rolling = ((ds["spec"].get("updateStrategy") or {}).get("rollingUpdate")) or {}
    raw = str(rolling.get("maxUnavailable", 1))
    if raw.endswith("%"):
        return max(1, desired * int(raw[:-1]) // 100)
    return max(1, int(raw))


def reconcile_daemonset(rest: Rest, ds: Obj, snapshot: Snapshot) -> None:
    spec = ds["spec"]["template"]["spec"]
    pod_hash = template_hash(ds["spec"]["template"])
    # As upstream, with the tolerations every DaemonSet pod gets (a cordoned node keeps them).
    tolerant = {**spec, "tolerations": [*(spec.get("tolerations") or []), *DAEMONSET_TOLERATIONS]}
    eligible = {n["metadata"]["name"] for n in snapshot.nodes if node_fits(tolerant, n) is None}
    pods = [p for p in snapshot.owned_by(ds) if not p["metadata"].get("deletionTimestamp")]
    by_node: dict[str, list[Obj]] = {}
    for pod in pods:
        by_node.setdefault(pod["spec"].get("nodeName", ""), []).append(pod)
    name = ds["metadata"]["name"]
    namespace = ds["metadata"]["namespace"]
    on_delete = (ds["spec"].get("updateStrategy") or {}).get("type") == "OnDelete"
    for node, node_pods in by_node.items():
        if node not in eligible:
            for pod in node_pods:
                rest.delete("pods", pod["metadata"]["name"], namespace)
        for extra in node_pods[1:]:
            rest.delete("pods", extra["metadata"]["name"], namespace)
    for node in sorted(eligible - set(by_node)):
        rest.create(
            "pods",
            pod_from(ds, "DaemonSet", f"{name}-{suffix()}", node, {HASH_LABEL: pod_hash}),
            namespace,
        )
    current = [p for node, ps in by_node.items() if node in eligible for p in ps[:1]]
    outdated = [p for p in current if p["metadata"]["labels"].get(HASH_LABEL) != pod_hash]
    if outdated and not on_delete:
        budget = _max_unavailable(ds, len(eligible)) - sum(
            1 for p in current if not pod_is_ready(p)
        )
        # Outdated pods that aren't ready cost no availability; ready ones go within the budget.
        doomed = [p for p in outdated if not pod_is_ready(p)]
        doomed += [p for p in outdated if pod_is_ready(p)][: max(budget, 0)]
        for pod in doomed:
            rest.delete("pods", pod["metadata"]["name"], namespace)
    ready = sum(1 for p in current if pod_is_ready(p))
    updated = sum(1 for p in current if p["metadata"]["labels"].get(HASH_LABEL) == pod_hash)
    status = {
        "desiredNumberScheduled": len(eligible),
        "currentNumberScheduled": sum(1 for n in by_node if n in eligible),
        "numberMisscheduled": sum(1 for n in by_node if n not in eligible),
        "numberReady": ready,
        "numberAvailable": ready,
        "numberUnavailable": max(0, len(eligible) - ready),
        "updatedNumberScheduled": updated,
        "observedGeneration": ds["metadata"].get("generation", 1),
    }
    write_status(rest, "daemonsets", ds, status)


def write_status(rest: Rest, resource: str, obj: Obj, status: Obj) -> None:
    old = obj.get("status") or {}
    if all(old.get(k) == v for k, v in status.items()):
        return
    try:
        rest.patch(
            resource,
            obj["metadata"]["name"],
            {"status": status},
            obj["metadata"]["namespace"],
            subresource="status",
        )
    except ApiError as error:
        if error.status != 404:
            raise


def schedule(rest: Rest, snapshot: Snapshot) -> None:
    """Bind each unbound pending pod to the first node (by name) it fits, its ResourceClaims
    allocated there (``dra.plugin``)."""
    dra = DynamicResources.read(rest, snapshot.pods)
    bound: dict[str, list[Obj]] = {}
    for pod in snapshot.pods:
        bound.setdefault(pod["spec"].get("nodeName") or "", []).append(pod)
    for pod in bound.get("", []):
        if (pod.get("status") or {}).get("phase", "Pending") != "Pending":
            continue
        reasons: dict[str, int] = {}
        chosen = None
        unresolved = dra.prefilter(pod)
        if unresolved is not None:
            _unschedulable(rest, pod, f"0/{len(snapshot.nodes)} nodes are available: {unresolved}.")
            continue
        for node in sorted(snapshot.nodes, key=lambda n: n["metadata"]["name"]):
            name = node["metadata"]["name"]
            why = (
                node_fits(pod["spec"], node)
                or resource_fit(pod["spec"], node, bound.get(name, []))
                or dra.filter(pod, node)
            )
            if why is None:
                chosen = name
                dra.reserve(pod, node)
                break
            reasons[why] = reasons.get(why, 0) + 1
        meta = pod["metadata"]
        if chosen is not None:
            rest.patch("pods", meta["name"], {"spec": {"nodeName": chosen}}, meta["namespace"])
            bound.setdefault(chosen, []).append(pod)
            events.post(
                rest,
                pod,
                "Scheduled",
                f"Successfully assigned {meta['namespace']}/{meta['name']} to {chosen}",
                component="default-scheduler",
            )
            continue
        message = f"0/{len(snapshot.nodes)} nodes are available: " + ", ".join(
            f"{count} {why}" for why, count in sorted(reasons.items())
        )
        message += dra.explain(pod)
        _unschedulable(rest, pod, message)


def _unschedulable(rest: Rest, pod: Obj, message: str) -> None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("message") == message:
            return
    events.post(
        rest, pod, "FailedScheduling", message, type="Warning", component="default-scheduler"
    )
    condition = {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": message,
    }
    rest.patch(
        "pods",
        pod["metadata"]["name"],
        {"status": {"phase": "Pending", "conditions": [condition]}},
        pod["metadata"]["namespace"],
        subresource="status",
    )


def pods_by_node(snapshot: Snapshot) -> Mapping[str, list[Obj]]:
    result: dict[str, list[Obj]] = {}
    for pod in snapshot.pods:
        node = pod["spec"].get("nodeName")
        if node:
            result.setdefault(node, []).append(pod)
    return result
