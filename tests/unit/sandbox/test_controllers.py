"""The DaemonSet controller and scheduler against the API server emulator (no pods run)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gpu_operator.sandbox.apiserver import ServerThread
from gpu_operator.sandbox.controllers import HASH_LABEL, Snapshot, reconcile_daemonset, schedule
from gpu_operator.sandbox.nodes import node_object, parse_nodes
from gpu_operator.sandbox.rest import Rest

Obj = dict[str, Any]


@pytest.fixture
def rest(server_thread: ServerThread) -> Iterator[Rest]:
    client = Rest(server_thread.url)
    client.create("namespaces", {"metadata": {"name": "gpu-operator"}})
    for spec in parse_nodes("dgx-a100:2"):
        body = node_object(spec.name, spec, "2026-11-27T14:00:00Z")
        status = body.pop("status")
        client.create("nodes", body)
        client.patch("nodes", spec.name, {"status": status}, subresource="status")
    yield client
    client.close()


def daemonset(strategy: str = "RollingUpdate", image: str = "x:1") -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "nvidia-driver-daemonset", "namespace": "gpu-operator"},
        "spec": {
            "selector": {"matchLabels": {"app": "d"}},
            "updateStrategy": {"type": strategy},
            "template": {
                "metadata": {"labels": {"app": "d"}},
                "spec": {
                    "nodeSelector": {"nvidia.com/gpu.deploy.driver": "true"},
                    "containers": [{"name": "c", "image": image}],
                },
            },
        },
    }


def step(rest: Rest) -> Snapshot:
    snapshot = Snapshot.read(rest)
    for ds in snapshot.daemonsets:
        reconcile_daemonset(rest, ds, snapshot)
    return Snapshot.read(rest)


def label(rest: Rest, node: str, value: str | None) -> None:
    rest.patch("nodes", node, {"metadata": {"labels": {"nvidia.com/gpu.deploy.driver": value}}})


def test_a_daemonset_gets_one_pod_per_matching_node_and_loses_it_when_the_label_goes(
    rest: Rest,
) -> None:
    rest.create("daemonsets", daemonset(), "gpu-operator")
    assert step(rest).pods == []
    label(rest, "gpu-node-1", "true")
    label(rest, "gpu-node-2", "true")
    pods = step(rest).pods
    assert sorted(p["spec"]["nodeName"] for p in pods) == ["gpu-node-1", "gpu-node-2"]
    status = rest.get("daemonsets", "nvidia-driver-daemonset", "gpu-operator")["status"]  # type: ignore[index]
    assert status["desiredNumberScheduled"] == 2
    assert status["numberReady"] == 0
    label(rest, "gpu-node-2", "paused-for-mig-change")
    assert [p["spec"]["nodeName"] for p in step(rest).pods] == ["gpu-node-1"]


def test_a_template_change_replaces_pods_under_rolling_update_but_not_under_on_delete(
    rest: Rest,
) -> None:
    label(rest, "gpu-node-1", "true")
    rest.create("daemonsets", daemonset("OnDelete"), "gpu-operator")
    before = step(rest).pods
    changed = daemonset("OnDelete", image="x:2")
    rest.apply("daemonsets", changed, "gpu-operator")
    after = step(rest).pods
    assert [p["metadata"]["uid"] for p in after] == [p["metadata"]["uid"] for p in before]
    rest.apply("daemonsets", daemonset("RollingUpdate", image="x:3"), "gpu-operator")
    step(rest)  # the outdated pod goes...
    replaced = step(rest).pods  # ...and a pod of the new template comes
    assert len(replaced) == 1
    assert replaced[0]["metadata"]["uid"] != before[0]["metadata"]["uid"]
    assert replaced[0]["spec"]["containers"][0]["image"] == "x:3"
    assert (
        replaced[0]["metadata"]["labels"][HASH_LABEL] != before[0]["metadata"]["labels"][HASH_LABEL]
    )


def test_the_scheduler_binds_a_gpu_pod_where_the_resource_is_allocatable_or_says_why_not(
    rest: Rest,
) -> None:
    rest.patch(
        "nodes",
        "gpu-node-2",
        {"status": {"allocatable": {"nvidia.com/mig-3g.20gb": "1"}}},
        subresource="status",
    )
    pod = {
        "metadata": {"name": "w", "namespace": "gpu-operator"},
        "spec": {
            "containers": [
                {"name": "c", "image": "i", "resources": {"limits": {"nvidia.com/mig-3g.20gb": 1}}}
            ]
        },
    }
    rest.create("pods", pod, "gpu-operator")
    schedule(rest, Snapshot.read(rest))
    assert rest.get("pods", "w", "gpu-operator")["spec"]["nodeName"] == "gpu-node-2"  # type: ignore[index]
    rest.create(
        "pods", {**pod, "metadata": {"name": "w2", "namespace": "gpu-operator"}}, "gpu-operator"
    )
    schedule(rest, Snapshot.read(rest))
    w2 = rest.get("pods", "w2", "gpu-operator") or {}
    assert not w2["spec"].get("nodeName")
    [condition] = w2["status"]["conditions"]
    assert condition["reason"] == "Unschedulable"
    assert condition["message"] == "0/2 nodes are available: 2 Insufficient nvidia.com/mig-3g.20gb"
