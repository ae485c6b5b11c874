"""``POST …/pods/NAME/eviction`` (policy/v1 ``Eviction``): what ``kubectl drain`` sends for each
pod. As a real API server: the pod is deleted with the eviction's ``deleteOptions`` unless that
would take a PodDisruptionBudget below what it allows — then a 429 ``TooManyRequests`` naming the
budget, which kubectl retries — and a pod that is not running (or already being deleted) is
evicted without consulting any budget. Budgets are counted here from the pods themselves (no
disruption controller keeps their status): healthy means Ready and not being deleted; the
expected count is the number of pods the budget selects."""

from __future__ import annotations

import math
from typing import Any

from gpu_operator.sandbox.apiserver.cluster import Cluster
from gpu_operator.sandbox.apiserver.resources import ResourceType
from gpu_operator.sandbox.apiserver.status import ApiStatus, bad_request, success

Obj = dict[str, Any]
PDB_KEY = "policy/poddisruptionbudgets"


def selector_matches(selector: Obj | None, labels: dict[str, str]) -> bool:
    """A ``metav1.LabelSelector`` (matchLabels and matchExpressions) against ``labels``; an
    empty selector matches every pod (policy/v1), a missing one none."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def _healthy(pod: Obj) -> bool:
    if pod["metadata"].get("deletionTimestamp"):
        return False
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _scaled(value: Any, expected: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        share = expected * int(value[:-1]) / 100
        return math.ceil(share) if round_up else math.floor(share)
    return int(value)


def _blocking_budget(cluster: Cluster, pod: Obj) -> str | None:
    """Why evicting ``pod`` would break a budget, or ``None``."""
    namespace = pod["metadata"]["namespace"]
    labels = pod["metadata"].get("labels") or {}
    pods = cluster.store.list_objects("/pods", namespace)
    for pdb in cluster.store.list_objects(PDB_KEY, namespace):
        spec = pdb.get("spec") or {}
        selector = spec.get("selector")
        if not selector_matches(selector, labels):
            continue
        covered = [p for p in pods if selector_matches(selector, p["metadata"].get("labels") or {})]
        expected, healthy = len(covered), sum(1 for p in covered if _healthy(p))
        if "minAvailable" in spec:
            desired = _scaled(spec["minAvailable"], expected, round_up=True)
        else:
            desired = expected - _scaled(spec.get("maxUnavailable", 0), expected, round_up=True)
        if healthy - 1 < desired:
            return (
                f"The disruption budget {pdb['metadata']['name']} needs {desired} healthy pods "
                f"and has {healthy} currently"
            )
    return None


def evict(
    cluster: Cluster, rtype: ResourceType, namespace: str, name: str, body: Any, dry_run: bool
) -> Obj:
    """Evict pod ``namespace/name`` as the ``Eviction`` ``body`` asks; the ``Status`` to answer."""
    if body is not None and not isinstance(body, dict):
        raise bad_request("the eviction body must be a policy/v1 Eviction object")
    eviction = body or {}
    if eviction.get("metadata", {}).get("name") not in (None, "", name):
        raise bad_request(f"name in URL does not match name in Eviction object: {name}")
    options = eviction.get("deleteOptions") or {}
    dry_run = dry_run or "All" in (options.get("dryRun") or [])
    pod = cluster.get(rtype, namespace, name)
    phase = (pod.get("status") or {}).get("phase")
    terminating = bool(pod["metadata"].get("deletionTimestamp"))
    if phase == "Running" and not terminating:
        why = _blocking_budget(cluster, pod)
        if why is not None:
            raise ApiStatus(
                429,
                "Cannot evict pod as it would violate the pod's disruption budget.",
                details={"causes": [{"reason": "DisruptionBudget", "message": why}]},
            )
    pre = options.get("preconditions") or {}
    grace = options.get("gracePeriodSeconds")
    cluster.delete(
        rtype,
        namespace,
        name,
        uid=pre.get("uid"),
        resource_version=pre.get("resourceVersion"),
        dry_run=dry_run,
        grace_period=None if grace is None else int(grace),
    )
    return success(rtype, name, pod["metadata"]["uid"])
