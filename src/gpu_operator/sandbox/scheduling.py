"""Where pods may run, as pure functions of plain objects: nodeSelector, required node affinity,
taints and tolerations, extended-resource fit, NodeSelectors (DRA allocations carry one too); and
the DaemonSet pod template hash (the ``controller-revision-hash`` label that tells an outdated pod
from an updated one)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

Obj = dict[str, Any]

DAEMONSET_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]

UNSCHEDULABLE_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


def template_hash(template: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()
    return digest[:10]


def _expression(expr: Mapping[str, Any], value: str | None) -> bool:
    op, values = expr.get("operator"), list(expr.get("values") or [])
    if op == "In":
        return value is not None and value in values
    if op == "NotIn":
        return value is None or value not in values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt") and value is not None and values:
        try:
            number, bound = int(value), int(values[0])
        except ValueError:
            return False
        return number > bound if op == "Gt" else number < bound
    return False


def affinity_matches(pod_spec: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    required = ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    if not required.get("nodeSelectorTerms"):
        return True
    return node_selector_matches(required, node)


def node_selector_matches(selector: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """A ``NodeSelector`` (its terms ORed, expressions within a term ANDed) against ``node``;
    no terms match nothing, as in Kubernetes."""
    terms = selector.get("nodeSelectorTerms") or []
    labels = node["metadata"].get("labels") or {}
    fields = {"metadata.name": node["metadata"]["name"]}
    for term in terms:  # terms are ORed, expressions within a term ANDed
        exprs = term.get("matchExpressions") or []
        field_exprs = term.get("matchFields") or []
        if not exprs and not field_exprs:
            continue
        if all(_expression(e, labels.get(e["key"])) for e in exprs) and all(
            _expression(e, fields.get(e["key"])) for e in field_exprs
        ):
            return True
    return False


def tolerated(taint: Mapping[str, Any], tolerations: Iterable[Mapping[str, Any]]) -> bool:
    for toleration in tolerations:
        effect = toleration.get("effect")
        if effect and effect != taint.get("effect"):
            continue
        key = toleration.get("key")
        if toleration.get("operator") == "Exists":
            if not key or key == taint.get("key"):
                return True
        elif key == taint.get("key") and (toleration.get("value") or "") == (
            taint.get("value") or ""
        ):
            return True
    return False


def node_fits(pod_spec: Mapping[str, Any], node: Mapping[str, Any]) -> str | None:
    """``None`` when ``pod_spec`` may run on ``node``; else why not (the scheduler's words)."""
    labels = node["metadata"].get("labels") or {}
    for key, value in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return "didn't match Pod's node affinity/selector"
    if not affinity_matches(pod_spec, node):
        return "didn't match Pod's node affinity/selector"
    tolerations = pod_spec.get("tolerations") or []
    if (node.get("spec") or {}).get("unschedulable") and not tolerated(
        UNSCHEDULABLE_TAINT, tolerations
    ):  # cordoned: the taint the node lifecycle controller would add
        return "node(s) were unschedulable"
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerated(taint, tolerations):
            return f"had untolerated taint {{{taint.get('key')}: {taint.get('value', '')}}}"
    return None


def requests_of(pod_spec: Mapping[str, Any]) -> dict[str, int]:
    total: dict[str, int] = {}
    for container in pod_spec.get("containers") or []:
        resources = container.get("resources") or {}
        merged = {**(resources.get("requests") or {}), **(resources.get("limits") or {})}
        for key, value in merged.items():
            if "/" in key:
                total[key] = total.get(key, 0) + int(value)
    return total


def resource_fit(
    pod_spec: Mapping[str, Any], node: Mapping[str, Any], bound: Iterable[Mapping[str, Any]]
) -> str | None:
    """``None`` when the node's allocatable extended resources cover this pod's requests plus
    those of the pods already bound to it (``bound``); else ``Insufficient <resource>``."""
    wanted = requests_of(pod_spec)
    if not wanted:
        return None
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    used: dict[str, int] = {}
    for pod in bound:
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        for key, value in requests_of(pod.get("spec") or {}).items():
            used[key] = used.get(key, 0) + value
    for key, count in wanted.items():
        if int(allocatable.get(key, 0)) - used.get(key, 0) < count:
            return f"Insufficient {key}"
    return None
