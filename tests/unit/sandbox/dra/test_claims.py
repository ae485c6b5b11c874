"""The resourceclaim controller's rules: the generated claim's name, owner and annotation,
which claim a pod's entry names, stale reservations and the STATE kubectl prints."""

from __future__ import annotations

from typing import Any

from gpu_operator.sandbox.dra import claims as rules

POD: dict[str, Any] = {
    "metadata": {"name": "train", "namespace": "default", "uid": "pod-uid"},
    "spec": {"resourceClaims": [{"name": "gpu", "resourceClaimTemplateName": "one-gpu"}]},
    "status": {"phase": "Pending"},
}
TEMPLATE: dict[str, Any] = {
    "metadata": {"name": "one-gpu", "namespace": "default"},
    "spec": {
        "metadata": {"labels": {"team": "a"}, "annotations": {"note": "x"}},
        "spec": {
            "devices": {
                "requests": [{"name": "gpu", "exactly": {"deviceClassName": "gpu.nvidia.com"}}]
            }
        },
    },
}


def test_generate_name_is_pod_dash_claim_dash() -> None:
    assert rules.generate_name("train", "gpu") == "train-gpu-"


def test_long_names_are_cut_in_proportion_as_upstream_does() -> None:
    pod, claim = "p" * 60, "c" * 30
    name = rules.generate_name(pod, claim)
    assert name == "p" * 37 + "-" + "c" * 18
    assert len(name) + 5 <= 63


def test_a_claim_from_a_template_is_owned_by_the_pod_and_annotated() -> None:
    made = rules.claim_from_template(POD, POD["spec"]["resourceClaims"][0], TEMPLATE)
    meta = made["metadata"]
    assert meta["generateName"] == "train-gpu-"
    assert meta["annotations"] == {"note": "x", "resource.kubernetes.io/pod-claim-name": "gpu"}
    assert meta["labels"] == {"team": "a"}
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": "train",
            "uid": "pod-uid",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert made["spec"] == TEMPLATE["spec"]["spec"]
    assert rules.made_for({**made, "metadata": {**meta, "name": "train-gpu-abcde"}}, POD, "gpu")


def test_claim_name_reads_status_then_ownership() -> None:
    entry = POD["spec"]["resourceClaims"][0]
    assert rules.claim_name(POD, entry, []) is None
    made = rules.claim_from_template(POD, entry, TEMPLATE)
    made["metadata"]["name"] = "train-gpu-xyz12"
    assert rules.claim_name(POD, entry, [made]) == "train-gpu-xyz12"
    recorded = {
        **POD,
        "status": {"resourceClaimStatuses": [{"name": "gpu", "resourceClaimName": "other"}]},
    }
    assert rules.claim_name(recorded, entry, [made]) == "other"
    assert rules.claim_name(POD, {"name": "x", "resourceClaimName": "shared"}, []) == "shared"


def test_reservations_of_gone_pods_are_stale() -> None:
    claim = {
        "metadata": {"name": "c"},
        "status": {
            "reservedFor": [
                {"resource": "pods", "name": "a", "uid": "1"},
                {"resource": "pods", "name": "b", "uid": "2"},
            ]
        },
    }
    assert rules.live_reservations(claim, {"2"}) == [{"resource": "pods", "name": "b", "uid": "2"}]


def test_finished_pods_and_unbound_deleted_pods_are_done() -> None:
    assert rules.is_done({**POD, "status": {"phase": "Succeeded"}})
    assert rules.is_done(
        {**POD, "metadata": {**POD["metadata"], "deletionTimestamp": "2026-01-01T00:00:00Z"}}
    )
    assert not rules.is_done(POD)


def test_state_column() -> None:
    meta = {"name": "c"}
    assert rules.state({"metadata": meta}) == "pending"
    allocated: dict[str, Any] = {"allocation": {"devices": {"results": []}}}
    assert rules.state({"metadata": meta, "status": allocated}) == "allocated"
    reserved = {**allocated, "reservedFor": [{"resource": "pods", "name": "a", "uid": "1"}]}
    assert rules.state({"metadata": meta, "status": reserved}) == "allocated,reserved"
    deleting = {"name": "c", "deletionTimestamp": "2026-01-01T00:00:00Z"}
    assert rules.state({"metadata": deleting, "status": reserved}) == "deleted,allocated,reserved"
