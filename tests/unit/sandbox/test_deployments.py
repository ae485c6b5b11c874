"""The Deployment and ReplicaSet controllers against the API server emulator (pods don't run:
the test marks them ready the way a kubelet would)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gpu_operator.sandbox.apiserver import ServerThread
from gpu_operator.sandbox.controllers import Snapshot
from gpu_operator.sandbox.deployments import (
    REVISION_ANNOTATION,
    TEMPLATE_HASH_LABEL,
    reconcile_deployment,
    reconcile_replicaset,
    rolling_limits,
)
from gpu_operator.sandbox.rest import Rest

Obj = dict[str, Any]
NS = "gpu-operator"


@pytest.fixture
def rest(server_thread: ServerThread) -> Iterator[Rest]:
    client = Rest(server_thread.url)
    client.create("namespaces", {"metadata": {"name": NS}})
    yield client
    client.close()


def deployment(image: str = "op:1", replicas: int = 1, strategy: Obj | None = None) -> Obj:
    spec: Obj = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": "gpu-operator"}},
        "template": {
            "metadata": {"labels": {"app": "gpu-operator"}},
            "spec": {"containers": [{"name": "op", "image": image}]},
        },
    }
    if strategy:
        spec["strategy"] = strategy
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "gpu-operator", "namespace": NS},
        "spec": spec,
    }


def step(rest: Rest) -> Snapshot:
    snapshot = Snapshot.read(rest)
    for deploy in snapshot.deployments:
        reconcile_deployment(rest, deploy, snapshot)
    snapshot = Snapshot.read(rest)
    for rs in snapshot.replicasets:
        reconcile_replicaset(rest, rs, snapshot)
    return Snapshot.read(rest)


def make_ready(rest: Rest) -> None:
    for pod in rest.list("pods", NS):
        status = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
        rest.patch("pods", pod["metadata"]["name"], {"status": status}, NS, subresource="status")


def set_image(rest: Rest, image: str) -> None:
    template = {"spec": {"containers": [{"name": "op", "image": image}]}}
    rest.patch("deployments", "gpu-operator", {"spec": {"template": template}}, NS)


def running_images(snapshot: Snapshot) -> list[str]:
    return [
        p["spec"]["containers"][0]["image"]
        for p in snapshot.pods
        if not p["metadata"].get("deletionTimestamp")
    ]


def replicas_by_rs(snapshot: Snapshot) -> dict[str, int]:
    return {rs["metadata"]["name"]: rs["spec"]["replicas"] for rs in snapshot.replicasets}


def test_a_deployment_owns_a_replicaset_per_template_which_owns_the_pods(rest: Rest) -> None:
    rest.create("deployments", deployment(replicas=2), NS)
    snapshot = step(rest)
    [rs] = snapshot.replicasets
    pod_hash = rs["metadata"]["labels"][TEMPLATE_HASH_LABEL]
    assert rs["metadata"]["name"] == f"gpu-operator-{pod_hash}"
    assert rs["metadata"]["annotations"][REVISION_ANNOTATION] == "1"
    assert rs["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    assert rs["spec"]["selector"]["matchLabels"] == {
        "app": "gpu-operator",
        TEMPLATE_HASH_LABEL: pod_hash,
    }
    assert len(snapshot.pods) == 2
    for pod in snapshot.pods:
        assert pod["metadata"]["name"].startswith(f"gpu-operator-{pod_hash}-")
        assert pod["metadata"]["labels"][TEMPLATE_HASH_LABEL] == pod_hash
        assert pod["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
    make_ready(rest)
    step(rest)
    status = (rest.get("deployments", "gpu-operator", NS) or {})["status"]
    assert (status["replicas"], status["readyReplicas"], status["updatedReplicas"]) == (2, 2, 2)


def test_a_rolling_update_keeps_a_ready_pod_until_the_new_one_is_ready(rest: Rest) -> None:
    rest.create("deployments", deployment(), NS)
    step(rest)
    make_ready(rest)
    [old] = step(rest).replicasets
    set_image(rest, "op:2")
    snapshot = step(rest)
    by_name = replicas_by_rs(snapshot)
    assert by_name[old["metadata"]["name"]] == 1, "the old pod stays while the new isn't ready"
    assert len(snapshot.pods) == 2, "one surge pod (25 % of 1, rounded up)"
    make_ready(rest)
    snapshot = step(rest)
    snapshot = step(rest)
    by_name = replicas_by_rs(snapshot)
    assert by_name[old["metadata"]["name"]] == 0
    assert running_images(snapshot) == ["op:2"]
    new = next(r for r in snapshot.replicasets if r["metadata"]["name"] != old["metadata"]["name"])
    assert new["metadata"]["annotations"][REVISION_ANNOTATION] == "2"


def test_conditions_say_progressing_then_available_as_kstatus_and_rollout_status_read_them(
    rest: Rest,
) -> None:
    rest.create("deployments", deployment(replicas=2), NS)
    step(rest)
    step(rest)
    status = (rest.get("deployments", "gpu-operator", NS) or {})["status"]
    conditions = {c["type"]: c for c in status["conditions"]}
    assert (conditions["Available"]["status"], conditions["Available"]["reason"]) == (
        "False",
        "MinimumReplicasUnavailable",
    )
    assert conditions["Progressing"]["reason"] == "ReplicaSetUpdated"
    make_ready(rest)
    step(rest)
    status = (rest.get("deployments", "gpu-operator", NS) or {})["status"]
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Available"]["status"] == "True"
    assert conditions["Progressing"]["reason"] == "NewReplicaSetAvailable"
    version = rest.get("deployments", "gpu-operator", NS)["metadata"]["resourceVersion"]  # type: ignore[index]
    step(rest)
    again = rest.get("deployments", "gpu-operator", NS) or {}
    assert again["metadata"]["resourceVersion"] == version, "a settled deployment is not rewritten"


def test_recreate_stops_the_old_pods_before_starting_new_ones(rest: Rest) -> None:
    rest.create("deployments", deployment(strategy={"type": "Recreate"}), NS)
    step(rest)
    make_ready(rest)
    step(rest)
    set_image(rest, "op:2")
    snapshot = step(rest)
    assert all(v == 0 for v in replicas_by_rs(snapshot).values()), "everything down first"
    snapshot = step(rest)
    assert running_images(snapshot) == ["op:2"]


def test_deleting_the_deployment_takes_its_replicasets_and_pods_with_it(rest: Rest) -> None:
    rest.create("deployments", deployment(), NS)
    step(rest)
    rest.delete("deployments", "gpu-operator", NS)
    snapshot = Snapshot.read(rest)
    assert (snapshot.replicasets, snapshot.pods) == ([], [])


@pytest.mark.parametrize(
    ("strategy", "replicas", "limits"),
    [
        ({}, 1, (1, 0)),
        ({}, 4, (1, 1)),
        ({"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}, 3, (0, 1)),
        ({"rollingUpdate": {"maxSurge": "50%", "maxUnavailable": 2}}, 3, (2, 2)),
    ],
)
def test_rolling_limits_round_surge_up_and_unavailable_down(
    strategy: Obj, replicas: int, limits: tuple[int, int]
) -> None:
    assert rolling_limits(deployment(strategy=strategy), replicas) == limits
