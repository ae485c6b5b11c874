"""Graceful pod deletion over real HTTP: a running pod on a node is marked Terminating with its
grace period and stays until deleted again with grace 0 (its kubelet's part); unbound and
finished pods go at once; without kubelets (the bare emulator) every pod goes at once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gpu_operator.sandbox.apiserver import ApiServer, ServerThread
from gpu_operator.sandbox.rest import Rest


def pod(name: str, *, node: str | None = "n1", grace: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


@pytest.fixture
def rest() -> Iterator[Rest]:
    with ServerThread(ApiServer(graceful_pod_deletion=True)) as thread:
        client = Rest(thread.url)
        yield client
        client.close()


def test_a_running_pod_is_marked_with_its_grace_and_removed_by_a_second_delete_with_grace_0(
    rest: Rest,
) -> None:
    rest.create("pods", pod("web", grace=5), "default")
    rest.patch("pods", "web", {"status": {"phase": "Running"}}, "default", subresource="status")
    assert rest.delete("pods", "web", "default")
    marked = rest.get("pods", "web", "default")
    assert marked is not None
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 5
    assert marked["metadata"]["deletionTimestamp"]
    rest.delete("pods", "web", "default")
    again = rest.get("pods", "web", "default")
    assert again is not None
    assert again["metadata"]["resourceVersion"] == marked["metadata"]["resourceVersion"]
    rest.delete("pods", "web", "default", grace_period_s=0)
    assert rest.get("pods", "web", "default") is None


def test_the_default_grace_is_30_s_and_a_request_may_shorten_it(rest: Rest) -> None:
    rest.create("pods", pod("a"), "default")
    rest.delete("pods", "a", "default")
    assert (rest.get("pods", "a", "default") or {})["metadata"]["deletionGracePeriodSeconds"] == 30
    rest.create("pods", pod("b"), "default")
    rest.delete("pods", "b", "default", grace_period_s=2)
    assert (rest.get("pods", "b", "default") or {})["metadata"]["deletionGracePeriodSeconds"] == 2


def test_unbound_and_finished_pods_go_at_once(rest: Rest) -> None:
    rest.create("pods", pod("pending", node=None), "default")
    rest.delete("pods", "pending", "default")
    assert rest.get("pods", "pending", "default") is None
    rest.create("pods", pod("done"), "default")
    rest.patch("pods", "done", {"status": {"phase": "Succeeded"}}, "default", subresource="status")
    rest.delete("pods", "done", "default")
    assert rest.get("pods", "done", "default") is None


def test_without_kubelets_the_emulator_deletes_pods_at_once() -> None:
    with ServerThread(ApiServer()) as thread:
        client = Rest(thread.url)
        client.create("pods", pod("web"), "default")
        client.delete("pods", "web", "default")
        assert client.get("pods", "web", "default") is None
        client.close()
