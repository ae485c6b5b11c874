"""The sandbox scheduler allocating ResourceClaims against the API server emulator: claims
from templates (named, owned and recorded as Kubernetes' controller does), allocation and
reservation written before the pod is bound, a claim shared by two pods allocated once, a pod
whose claims can't be had left Pending with the reason, and release on pod deletion. The test
publishes the ResourceSlices itself."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from gpu_operator.sandbox.apiserver import ServerThread
from gpu_operator.sandbox.controllers import Snapshot, schedule
from gpu_operator.sandbox.dra.allocator import PREFERENCES, Candidate
from gpu_operator.sandbox.dra.claims import DELETE_PROTECTION, POD_CLAIM_ANNOTATION
from gpu_operator.sandbox.rest import Rest
from helpers.dra import CLASSES, Obj, claim, exactly, gpu, node, node_slice, pod
from helpers.polling import wait_until

CLAIMS = "resource.k8s.io/v1/resourceclaims"
SLICES = "resource.k8s.io/v1/resourceslices"


@pytest.fixture
def rest(server_thread: ServerThread) -> Iterator[Rest]:
    client = Rest(server_thread.url)
    for name in ("node-a", "node-b"):
        client.create("nodes", node(name))
    for device_class in CLASSES.values():
        client.create("resource.k8s.io/v1/deviceclasses", device_class)
    yield client
    client.close()


def run_scheduler(rest: Rest) -> None:
    schedule(rest, Snapshot.read(rest))


def template(name: str, *requests: Obj) -> Obj:
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaimTemplate",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"spec": {"devices": {"requests": list(requests)}}},
    }


def get_pod(rest: Rest, name: str) -> Obj:
    found = rest.get("pods", name, "default")
    assert found is not None
    return found


def get_claim(rest: Rest, name: str) -> Obj | None:
    return rest.get(CLAIMS, name, "default")


def test_a_template_claim_is_made_allocated_reserved_and_the_pod_bound(rest: Rest) -> None:
    rest.create(SLICES, node_slice("node-b", [gpu(0), gpu(1)]))
    big = 'device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("40Gi")) >= 0'
    rest.create(
        CLAIMS.replace("resourceclaims", "resourceclaimtemplates"),
        template("one-gpu", exactly("gpu", "gpu.nvidia.com", big)),
        "default",
    )
    rest.create("pods", pod("train", {"gpu": {"resourceClaimTemplateName": "one-gpu"}}), "default")
    run_scheduler(rest)

    bound = get_pod(rest, "train")
    assert bound["spec"]["nodeName"] == "node-b"
    [status] = bound["status"]["resourceClaimStatuses"]
    assert status["name"] == "gpu"
    assert status["resourceClaimName"].startswith("train-gpu-")
    made = get_claim(rest, status["resourceClaimName"])
    assert made is not None
    meta = made["metadata"]
    assert meta["annotations"][POD_CLAIM_ANNOTATION] == "gpu"
    assert meta["ownerReferences"][0]["uid"] == bound["metadata"]["uid"]
    assert DELETE_PROTECTION in meta["finalizers"]
    assert made["status"]["allocation"]["devices"]["results"] == [
        {"request": "gpu", "driver": "gpu.nvidia.com", "pool": "node-b", "device": "gpu-0"}
    ]
    assert made["status"]["allocation"]["nodeSelector"]["nodeSelectorTerms"][0]["matchFields"][0][
        "values"
    ] == ["node-b"]
    assert made["status"]["reservedFor"] == [
        {"resource": "pods", "name": "train", "uid": bound["metadata"]["uid"]}
    ]


def test_a_claim_made_from_a_template_goes_with_its_pod(rest: Rest) -> None:
    rest.create(SLICES, node_slice("node-a", [gpu(0)]))
    rest.create(
        "resource.k8s.io/v1/resourceclaimtemplates", template("one-gpu", exactly("gpu")), "default"
    )
    rest.create("pods", pod("train", {"gpu": {"resourceClaimTemplateName": "one-gpu"}}), "default")
    run_scheduler(rest)
    name = get_pod(rest, "train")["status"]["resourceClaimStatuses"][0]["resourceClaimName"]
    rest.delete("pods", "train", "default")
    # The garbage collector marks the owned claim; its finalizer holds it until deallocated.
    assert wait_until(
        lambda: (get_claim(rest, name) or {}).get("metadata", {}).get("deletionTimestamp")
    )
    run_scheduler(rest)
    assert wait_until(lambda: get_claim(rest, name) is None)
    # The device is free again for the next pod.
    rest.create("pods", pod("next", {"gpu": {"resourceClaimTemplateName": "one-gpu"}}), "default")
    run_scheduler(rest)
    assert get_pod(rest, "next")["spec"]["nodeName"] == "node-a"


def test_a_shared_claim_is_allocated_once_and_released_by_the_last_pod(rest: Rest) -> None:
    rest.create(SLICES, node_slice("node-a", [gpu(0), gpu(1)]))
    rest.create(CLAIMS, claim("shared", exactly("gpu")), "default")
    rest.create("pods", pod("one", {"gpu": {"resourceClaimName": "shared"}}), "default")
    run_scheduler(rest)
    first = get_claim(rest, "shared")
    assert first is not None
    allocation = first["status"]["allocation"]
    rest.create("pods", pod("two", {"gpu": {"resourceClaimName": "shared"}}), "default")
    run_scheduler(rest)
    second = get_claim(rest, "shared")
    assert second is not None
    assert second["status"]["allocation"] == allocation
    assert [r["name"] for r in second["status"]["reservedFor"]] == ["one", "two"]
    assert get_pod(rest, "two")["spec"]["nodeName"] == "node-a"

    rest.delete("pods", "one", "default")
    run_scheduler(rest)
    after_one = get_claim(rest, "shared")
    assert after_one is not None
    assert [r["name"] for r in after_one["status"]["reservedFor"]] == ["two"]
    assert after_one["status"]["allocation"] == allocation
    rest.delete("pods", "two", "default")
    run_scheduler(rest)
    released = get_claim(rest, "shared")
    assert released is not None
    assert "allocation" not in released.get("status", {})
    assert "reservedFor" not in released.get("status", {})
    assert DELETE_PROTECTION not in (released["metadata"].get("finalizers") or [])


def test_a_pod_whose_claim_cannot_be_satisfied_stays_pending_with_the_reason(rest: Rest) -> None:
    rest.create(SLICES, node_slice("node-a", [gpu(0), gpu(1)]))
    rest.create(CLAIMS, claim("four", exactly("gpus", count=4)), "default")
    rest.create("pods", pod("big", {"gpus": {"resourceClaimName": "four"}}), "default")
    run_scheduler(rest)
    pending = get_pod(rest, "big")
    assert not pending["spec"].get("nodeName")
    [condition] = pending["status"]["conditions"]
    assert (condition["type"], condition["status"], condition["reason"]) == (
        "PodScheduled",
        "False",
        "Unschedulable",
    )
    assert condition["message"].startswith("0/2 nodes are available: 2 cannot allocate all claims")
    assert "claim default/four, request gpus" in condition["message"]
    unallocated = get_claim(rest, "four")
    assert unallocated is not None
    assert "allocation" not in unallocated.get("status", {})


def test_a_missing_claim_is_named(rest: Rest) -> None:
    rest.create("pods", pod("lost", {"gpu": {"resourceClaimName": "nowhere"}}), "default")
    run_scheduler(rest)
    [condition] = get_pod(rest, "lost")["status"]["conditions"]
    assert condition["message"] == '0/2 nodes are available: resourceclaim "nowhere" not found.'


def test_devices_allocated_to_one_pod_are_not_given_to_the_next(rest: Rest) -> None:
    rest.create(SLICES, node_slice("node-a", [gpu(0)]))
    rest.create(SLICES, node_slice("node-b", [gpu(0)]))
    for n in range(3):
        rest.create(CLAIMS, claim(f"c{n}", exactly("gpu")), "default")
        rest.create("pods", pod(f"p{n}", {"gpu": {"resourceClaimName": f"c{n}"}}), "default")
    run_scheduler(rest)  # one pass: the second pod must see the first pod's device as taken
    nodes = [get_pod(rest, f"p{n}")["spec"].get("nodeName") for n in range(3)]
    assert nodes == ["node-a", "node-b", None]
    results = [
        (c := get_claim(rest, f"c{n}"))
        and c["status"]["allocation"]["devices"]["results"][0]["pool"]
        for n in range(2)
    ]
    assert results == ["node-a", "node-b"]


def test_a_finished_pods_template_claim_is_deleted_and_its_device_freed(rest: Rest) -> None:
    rest.create(SLICES, node_slice("node-a", [gpu(0)]))
    rest.create(
        "resource.k8s.io/v1/resourceclaimtemplates", template("one-gpu", exactly("gpu")), "default"
    )
    rest.create("pods", pod("job", {"gpu": {"resourceClaimTemplateName": "one-gpu"}}), "default")
    run_scheduler(rest)
    name = get_pod(rest, "job")["status"]["resourceClaimStatuses"][0]["resourceClaimName"]
    rest.patch("pods", "job", {"status": {"phase": "Succeeded"}}, "default", subresource="status")
    run_scheduler(rest)  # deleted: its finalizer holds it until the next pass deallocates it
    run_scheduler(rest)
    assert get_claim(rest, name) is None
    assert get_pod(rest, "job")["status"]["phase"] == "Succeeded"


def test_an_allocation_the_scheduler_did_not_make_is_left_alone(rest: Rest) -> None:
    """Only claims carrying the scheduler's finalizer are deallocated when unreserved (as the
    resourceclaim controller does): a driver's test fixture may allocate a claim itself."""
    rest.create(CLAIMS, claim("preset", exactly("gpu")), "default")
    result = {"request": "gpu", "driver": "gpu.nvidia.com", "pool": "node-a", "device": "gpu-0"}
    rest.patch(
        CLAIMS,
        "preset",
        {"status": {"allocation": {"devices": {"results": [result]}}}},
        "default",
        subresource="status",
    )
    run_scheduler(rest)
    kept = get_claim(rest, "preset")
    assert kept is not None
    assert kept["status"]["allocation"]["devices"]["results"] == [result]


def test_the_scheduler_asks_a_registered_preference(rest: Rest) -> None:
    """A driver's ``prefer`` (the MIG placement ranking's hook) orders the devices the
    scheduler tries; without one, slice order."""
    rest.create(SLICES, node_slice("node-a", [gpu(0), gpu(1), gpu(2)]))
    asked: list[list[str]] = []

    def last_first(candidates: Sequence[Candidate]) -> list[Candidate]:
        asked.append([c.device.ref.device for c in candidates])
        return list(reversed(candidates))

    PREFERENCES.register("gpu.nvidia.com", last_first)
    try:
        rest.create(CLAIMS, claim("c", exactly("gpu")), "default")
        rest.create("pods", pod("p", {"gpu": {"resourceClaimName": "c"}}), "default")
        run_scheduler(rest)
    finally:
        PREFERENCES.unregister("gpu.nvidia.com")
    allocated = get_claim(rest, "c")
    assert allocated is not None
    assert allocated["status"]["allocation"]["devices"]["results"][0]["device"] == "gpu-2"
    assert asked == [["gpu-0", "gpu-1", "gpu-2"]]


def test_a_pod_sharing_an_allocated_claim_goes_to_its_node_or_nowhere(rest: Rest) -> None:
    rest.create(SLICES, node_slice("node-a", [gpu(0)]))
    rest.create(SLICES, node_slice("node-b", [gpu(0)]))
    rest.create(CLAIMS, claim("shared", exactly("gpu")), "default")
    rest.create("pods", pod("one", {"gpu": {"resourceClaimName": "shared"}}), "default")
    run_scheduler(rest)
    assert get_pod(rest, "one")["spec"]["nodeName"] == "node-a"
    elsewhere = pod("two", {"gpu": {"resourceClaimName": "shared"}})
    elsewhere["spec"]["nodeSelector"] = {"kubernetes.io/hostname": "node-b"}
    rest.create("pods", elsewhere, "default")
    run_scheduler(rest)
    [condition] = get_pod(rest, "two")["status"]["conditions"]
    assert condition["message"] == (
        "0/2 nodes are available: 1 cannot allocate all claims, 1 didn't match Pod's node "
        "affinity/selector (claim default/shared is allocated on other nodes)"
    )


def test_a_reservation_for_a_pod_newer_than_the_snapshot_is_kept(rest: Rest) -> None:
    """The pass's pod list is read before the claims: a pod created in between (whose claim a
    driver's test, say, reserved at once) is looked up before its reservation is dropped."""
    rest.create(CLAIMS, claim("c", exactly("gpu")), "default")
    snapshot = Snapshot.read(rest)
    newer = rest.create("pods", pod("newer", {"gpu": {"resourceClaimName": "c"}}), "default")
    entry = {"resource": "pods", "name": "newer", "uid": newer["metadata"]["uid"]}
    gone = {"resource": "pods", "name": "gone", "uid": "0000"}
    rest.patch(
        CLAIMS, "c", {"status": {"reservedFor": [entry, gone]}}, "default", subresource="status"
    )
    schedule(rest, snapshot)
    kept = get_claim(rest, "c")
    assert kept is not None
    assert kept["status"]["reservedFor"] == [entry]
