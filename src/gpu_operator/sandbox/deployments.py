"""The Deployment and ReplicaSet controllers the sandbox plays, one pass each over a snapshot.

A Deployment owns one ReplicaSet per pod template (``<deployment>-<pod-template-hash>``, the
template labelled ``pod-template-hash``); a ReplicaSet owns its pods (``<replicaset>-<suffix>``).
``RollingUpdate`` (the default) scales the new ReplicaSet up to ``replicas`` + ``maxSurge`` in
all and the old ones down as new pods become ready, never below ``replicas`` - ``maxUnavailable``
ready; ``Recreate`` takes the old ones to zero first and starts the new one once their pods are
gone. Old ReplicaSets are kept at zero up to ``revisionHistoryLimit`` (10), as upstream, so
``kubectl get rs`` and ``kubectl rollout status`` see what they expect.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from gpu_operator.sandbox.controllers import (
    Snapshot,
    owner_reference,
    pod_from,
    pod_is_ready,
    suffix,
    write_status,
)
from gpu_operator.sandbox.rest import ApiError, Rest
from gpu_operator.sandbox.scheduling import template_hash
from gpu_operator.sandbox.timestamps import rfc3339

Obj = dict[str, Any]
TEMPLATE_HASH_LABEL = "pod-template-hash"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"


def _count(raw: Any, replicas: int, *, round_up: bool) -> int:
    text = str(raw)
    if text.endswith("%"):
        exact = replicas * int(text[:-1]) / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(text)


def rolling_limits(deploy: Obj, replicas: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) with upstream's defaults (25 %, 25 %) and rounding (surge up,
    unavailable down); both zero is not allowed, so unavailable becomes 1 then."""
    rolling = (deploy["spec"].get("strategy") or {}).get("rollingUpdate") or {}
    surge = _count(rolling.get("maxSurge", "25%"), replicas, round_up=True)
    unavailable = _count(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _live(pods: list[Obj]) -> list[Obj]:
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def _replicaset_for(deploy: Obj, pod_hash: str, replicas: int, revision: int) -> Obj:
    template = copy.deepcopy(deploy["spec"]["template"])
    meta = template.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), TEMPLATE_HASH_LABEL: pod_hash}
    selector = copy.deepcopy(deploy["spec"].get("selector") or {})
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}), TEMPLATE_HASH_LABEL: pod_hash}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{deploy['metadata']['name']}-{pod_hash}",
            "namespace": deploy["metadata"]["namespace"],
            "labels": dict(meta["labels"]),
            "annotations": {REVISION_ANNOTATION: str(revision)},
            "ownerReferences": [owner_reference(deploy, "Deployment")],
        },
        "spec": {"replicas": replicas, "selector": selector, "template": template},
    }


def _scale(rest: Rest, rs: Obj, replicas: int) -> None:
    if int(rs["spec"].get("replicas", 1)) != replicas:
        meta = rs["metadata"]
        rest.patch("replicasets", meta["name"], {"spec": {"replicas": replicas}}, meta["namespace"])
        rs["spec"]["replicas"] = replicas


def reconcile_deployment(rest: Rest, deploy: Obj, snapshot: Snapshot) -> None:
    replicas = int(deploy["spec"].get("replicas", 1))
    pod_hash = template_hash(deploy["spec"]["template"])
    owned = snapshot.owned_by(deploy, snapshot.replicasets)
    new = next((rs for rs in owned if rs["metadata"]["name"].endswith(f"-{pod_hash}")), None)
    old = [rs for rs in owned if rs is not new]
    old_pods = [p for rs in old for p in _live(snapshot.owned_by(rs))]
    recreate = (deploy["spec"].get("strategy") or {}).get("type") == "Recreate"
    surge, unavailable = rolling_limits(deploy, replicas)
    if new is None:
        revisions = [
            int(rs["metadata"].get("annotations", {}).get(REVISION_ANNOTATION, 0)) for rs in owned
        ]
        start = (
            0 if recreate and old_pods else min(replicas, max(0, replicas + surge - len(old_pods)))
        )
        new = _replicaset_for(deploy, pod_hash, start, max(revisions, default=0) + 1)
        try:
            new = rest.create("replicasets", new, deploy["metadata"]["namespace"])
        except ApiError as error:
            if error.status != 409:
                raise
            return  # made by an earlier pass the snapshot predates
    new_pods = _live(snapshot.owned_by(new))
    new_ready = sum(1 for p in new_pods if pod_is_ready(p))
    old_ready = sum(1 for p in old_pods if pod_is_ready(p))
    if recreate:
        for rs in old:
            _scale(rest, rs, 0)
        _scale(rest, new, 0 if old_pods else replicas)
    else:
        # Scale up within the surge; scale old down while enough pods stay ready.
        room = replicas + surge - (len(new_pods) + len(old_pods))
        _scale(rest, new, min(replicas, int(new["spec"].get("replicas", 0)) + max(0, room)))
        removable = max(0, new_ready + old_ready - (replicas - unavailable))
        for rs in sorted(old, key=lambda r: r["metadata"]["name"]):
            current = int(rs["spec"].get("replicas", 0))
            cut = min(current, removable)
            _scale(rest, rs, current - cut)
            removable -= cut
    limit = int(deploy["spec"].get("revisionHistoryLimit", 10))
    idle = [
        rs
        for rs in old
        if int(rs["spec"].get("replicas", 0)) == 0 and not _live(snapshot.owned_by(rs))
    ]
    for rs in idle[: max(0, len(idle) - limit)]:
        rest.delete("replicasets", rs["metadata"]["name"], rs["metadata"]["namespace"])
    all_pods = new_pods + old_pods
    available = new_ready + old_ready
    complete = new_ready >= replicas and not old_pods and len(new_pods) == replicas
    write_status(
        rest,
        "deployments",
        deploy,
        {
            "replicas": len(all_pods),
            "updatedReplicas": len(new_pods),
            "readyReplicas": available,
            "availableReplicas": available,
            "unavailableReplicas": max(0, replicas - available),
            "observedGeneration": deploy["metadata"].get("generation", 1),
            "conditions": deployment_conditions(
                deploy, new["metadata"]["name"], available >= replicas - unavailable, complete
            ),
        },
    )


def deployment_conditions(
    deploy: Obj, replicaset: str, minimum_available: bool, complete: bool
) -> list[Obj]:
    """The deployment controller's ``Available`` and ``Progressing`` conditions (what
    ``kubectl rollout status`` and kstatus — ``helm install --wait`` — read), with each
    condition's times kept while it is unchanged."""
    now = rfc3339()
    wanted = [
        (
            "Available",
            minimum_available,
            "MinimumReplicasAvailable" if minimum_available else "MinimumReplicasUnavailable",
            "Deployment has minimum availability."
            if minimum_available
            else "Deployment does not have minimum availability.",
        ),
        (
            "Progressing",
            True,
            "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
            f'ReplicaSet "{replicaset}" has successfully progressed.'
            if complete
            else f'ReplicaSet "{replicaset}" is progressing.',
        ),
    ]
    before = {c.get("type"): c for c in (deploy.get("status") or {}).get("conditions") or []}
    conditions = []
    for kind, ok, reason, message in wanted:
        old = before.get(kind) or {}
        same = old.get("status") == str(ok) and old.get("reason") == reason
        conditions.append(
            {
                "type": kind,
                "status": str(ok),
                "reason": reason,
                "message": message,
                "lastUpdateTime": old.get("lastUpdateTime", now) if same else now,
                "lastTransitionTime": old.get("lastTransitionTime", now)
                if old.get("status") == str(ok)
                else now,
            }
        )
    return conditions


def reconcile_replicaset(rest: Rest, rs: Obj, snapshot: Snapshot) -> None:
    replicas = int(rs["spec"].get("replicas", 1))
    namespace = rs["metadata"]["namespace"]
    pods = _live(snapshot.owned_by(rs))
    for _ in range(replicas - len(pods)):
        name = f"{rs['metadata']['name']}-{suffix()}"
        rest.create("pods", pod_from(rs, "ReplicaSet", name, None, {}), namespace)
    # Extras: the not-ready ones go first, as upstream.
    for extra in sorted(pods, key=pod_is_ready)[: max(0, len(pods) - replicas)]:
        rest.delete("pods", extra["metadata"]["name"], namespace)
    ready = sum(1 for p in pods if pod_is_ready(p))
    write_status(
        rest,
        "replicasets",
        rs,
        {
            "replicas": len(pods),
            "fullyLabeledReplicas": len(pods),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": rs["metadata"].get("generation", 1),
        },
    )
