"""The resourceclaim controller's rules, as pure functions: which ResourceClaim a pod's
``spec.resourceClaims`` entry names, the claim a ResourceClaimTemplate gives (named and owned
as Kubernetes' controller names and owns it), ``status.reservedFor`` entries and when a
reservation is stale (its pod is gone or done)."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

Obj = dict[str, Any]

POD_CLAIM_ANNOTATION = "resource.kubernetes.io/pod-claim-name"
"""Set on a claim made from a template: which ``spec.resourceClaims`` entry it is for."""
DELETE_PROTECTION = "resource.kubernetes.io/delete-protection"
"""The finalizer an allocated claim carries until it is deallocated."""
_MAX_BASE = 57  # leaves room for 5 random characters and a hyphen in a 63-character name


def generate_name(pod_name: str, pod_claim_name: str) -> str:
    """``<pod>-<claim>-``, both cut in proportion when too long (upstream's rule, whose cut
    form has no trailing hyphen)."""
    base = f"{pod_name}-{pod_claim_name}-"
    if len(base) <= _MAX_BASE:
        return base
    return (
        pod_name[: len(pod_name) * _MAX_BASE // len(base)]
        + "-"
        + pod_claim_name[: len(pod_claim_name) * _MAX_BASE // len(base)]
    )


def pod_claims(pod: Mapping[str, Any]) -> list[Obj]:
    return list((pod.get("spec") or {}).get("resourceClaims") or [])


def is_done(pod: Mapping[str, Any]) -> bool:
    """A pod whose claims may be released: finished, or deleted before it was bound."""
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        return True
    return bool(pod["metadata"].get("deletionTimestamp")) and not (pod.get("spec") or {}).get(
        "nodeName"
    )


def claim_from_template(
    pod: Mapping[str, Any], pod_claim: Mapping[str, Any], template: Mapping[str, Any]
) -> Obj:
    """The claim the controller creates for ``pod_claim`` from ``template``."""
    spec = template.get("spec") or {}
    meta = spec.get("metadata") or {}
    annotations = {**(meta.get("annotations") or {}), POD_CLAIM_ANNOTATION: pod_claim["name"]}
    claim: Obj = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {
            "generateName": generate_name(pod["metadata"]["name"], pod_claim["name"]),
            "namespace": pod["metadata"]["namespace"],
            "annotations": annotations,
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": pod["metadata"]["name"],
                    "uid": pod["metadata"]["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": copy.deepcopy(spec.get("spec") or {}),
    }
    if meta.get("labels"):
        claim["metadata"]["labels"] = dict(meta["labels"])
    return claim


def made_for(claim: Mapping[str, Any], pod: Mapping[str, Any], pod_claim_name: str) -> bool:
    """Whether ``claim`` was created from a template for this pod's ``pod_claim_name``."""
    meta = claim["metadata"]
    owned = any(
        r.get("uid") == pod["metadata"]["uid"] and r.get("controller")
        for r in meta.get("ownerReferences") or []
    )
    return owned and (meta.get("annotations") or {}).get(POD_CLAIM_ANNOTATION) == pod_claim_name


def claim_name(
    pod: Mapping[str, Any], pod_claim: Mapping[str, Any], claims: Iterable[Mapping[str, Any]]
) -> str | None:
    """The name of the claim a ``spec.resourceClaims`` entry stands for; None while the claim
    of a template is not made yet."""
    if pod_claim.get("resourceClaimName"):
        return str(pod_claim["resourceClaimName"])
    for status in (pod.get("status") or {}).get("resourceClaimStatuses") or []:
        if status.get("name") == pod_claim["name"] and status.get("resourceClaimName"):
            return str(status["resourceClaimName"])
    for claim in claims:
        if made_for(claim, pod, pod_claim["name"]):
            return str(claim["metadata"]["name"])
    return None


def reservation(pod: Mapping[str, Any]) -> Obj:
    """A ``status.reservedFor`` entry for ``pod``."""
    return {"resource": "pods", "name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]}


def reserved_for(claim: Mapping[str, Any]) -> list[Obj]:
    return list((claim.get("status") or {}).get("reservedFor") or [])


def live_reservations(claim: Mapping[str, Any], live_pod_uids: set[str]) -> list[Obj]:
    """The ``reservedFor`` entries whose pods still hold the claim (other consumers than pods
    are kept: the sandbox knows nothing about them)."""
    return [
        r
        for r in reserved_for(claim)
        if r.get("resource") != "pods" or r.get("apiGroup") or r.get("uid") in live_pod_uids
    ]


def state(claim: Mapping[str, Any]) -> str:
    """``kubectl get resourceclaims``' STATE column: ``pending``, ``allocated,reserved``,
    ``deleted`` …, as upstream's printer joins them."""
    states = []
    deleting = bool(claim["metadata"].get("deletionTimestamp"))
    if deleting:
        states.append("deleted")
    status = claim.get("status") or {}
    if status.get("allocation") is None:
        if not deleting:
            states.append("pending")
    else:
        states.append("allocated")
        if status.get("reservedFor"):
            states.append("reserved")
    return ",".join(states)
