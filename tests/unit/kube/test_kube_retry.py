"""Retries on 500/429 and conflicts; one clear KubeError for what must not be retried."""

from __future__ import annotations

import httpx2
import pytest
from lightkube import AsyncClient, Client
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap, Node

from gpu_operator.errors import KubeError
from gpu_operator.kube import (
    RetryPolicy,
    aapply,
    apatch_node_labels,
    apply,
    owned_by_prefixes,
    patch_node_labels,
    retry,
)
from gpu_operator.sandbox.apiserver import ApiServer, ServerThread

pytestmark = pytest.mark.timeout(10)
FAST = RetryPolicy(attempts=4, base_delay_s=0.01, max_delay_s=0.05)
OURS = owned_by_prefixes("nvidia.com/")


@pytest.mark.parametrize("status", [500, 429])
def test_sync_write_survives_injected_failures(
    client: Client, server_thread: ServerThread, status: int
) -> None:
    client.create(Node(metadata=ObjectMeta(name="gpu-1")))
    server_thread.call(server_thread.server.fail_next, 3, status, 0)
    patch_node_labels(client, "gpu-1", {"nvidia.com/gpu.present": "true"}, OURS, policy=FAST)
    assert server_thread.server.faults.failed == 3
    assert client.get(Node, "gpu-1").metadata.labels == {"nvidia.com/gpu.present": "true"}


async def test_async_write_survives_injected_failures(
    aclient: AsyncClient, apiserver: ApiServer
) -> None:
    await aclient.create(Node(metadata=ObjectMeta(name="gpu-1")))
    apiserver.fail_next(2, 500)
    await apatch_node_labels(aclient, "gpu-1", {"nvidia.com/x": "1"}, OURS, policy=FAST)
    assert apiserver.faults.failed == 2


def test_failures_past_the_attempts_become_one_kube_error(
    client: Client, server_thread: ServerThread
) -> None:
    server_thread.call(server_thread.server.fail_next, 10, 500, 0)
    with pytest.raises(KubeError, match=r"patch labels of node gpu-1: 500 \(InternalError\)"):
        patch_node_labels(client, "gpu-1", {"nvidia.com/x": "1"}, OURS, policy=FAST)
    assert server_thread.server.faults.failed == FAST.attempts


def test_not_found_is_not_retried(client: Client, server_thread: ServerThread) -> None:
    before = server_thread.server.requests
    with pytest.raises(KubeError, match=r"node missing: 404 \(NotFound\)"):
        patch_node_labels(client, "missing", {"nvidia.com/x": "1"}, OURS, policy=FAST)
    assert server_thread.server.requests == before + 1


def test_already_exists_is_not_retried(client: Client) -> None:
    client.create(ConfigMap(metadata=ObjectMeta(name="a")), namespace="default")
    calls = []

    def create() -> object:
        calls.append(1)
        return client.create(ConfigMap(metadata=ObjectMeta(name="a")), namespace="default")

    with pytest.raises(KubeError, match="AlreadyExists"):
        retry(create, "create configmap a", FAST)
    assert len(calls) == 1


def test_conflict_is_retried_with_a_fresh_read(client: Client) -> None:
    client.create(ConfigMap(metadata=ObjectMeta(name="c"), data={"n": "0"}), namespace="default")
    stale = client.get(ConfigMap, "c", namespace="default")
    client.replace(ConfigMap(metadata=ObjectMeta(name="c", namespace="default"), data={"n": "1"}))
    attempts: list[str | None] = []

    def bump() -> ConfigMap:
        current = stale if not attempts else client.get(ConfigMap, "c", namespace="default")
        attempts.append(current.metadata.resourceVersion)
        current.data = {"n": str(int(current.data["n"]) + 1)}
        return client.replace(current)

    assert retry(bump, "bump configmap c", FAST).data == {"n": "2"}
    assert len(attempts) == 2


def test_apply_uses_our_field_manager_and_forces(client: Client) -> None:
    client.apply(
        ConfigMap(metadata=ObjectMeta(name="x", namespace="default"), data={"a": "1"}),
        field_manager="someone",
    )
    applied = apply(
        client,
        ConfigMap(metadata=ObjectMeta(name="x", namespace="default"), data={"a": "2"}),
        policy=FAST,
    )
    assert applied.data == {"a": "2"}
    assert [m.manager for m in applied.metadata.managedFields] == ["gpu-operator"]


async def test_apply_without_force_reports_the_conflict(aclient: AsyncClient) -> None:
    await aclient.apply(
        ConfigMap(metadata=ObjectMeta(name="x", namespace="default"), data={"a": "1"}),
        field_manager="someone",
    )
    with pytest.raises(KubeError, match=r'apply ConfigMap default/x: 409.*conflict with "someone"'):
        await aapply(
            aclient,
            ConfigMap(metadata=ObjectMeta(name="x", namespace="default"), data={"a": "2"}),
            force=False,
            policy=FAST,
        )


def _api_error(code: int, headers: dict[str, str]) -> ApiError:
    request = httpx2.Request("GET", "http://127.0.0.1/api/v1/nodes")
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": "TooManyRequests",
        "message": "slow down",
    }
    return ApiError(
        request=request, response=httpx2.Response(code, headers=headers, json=body, request=request)
    )


@pytest.mark.parametrize(
    ("headers", "attempt", "delay"),
    [
        pytest.param({}, 1, 0.1, id="first backoff"),
        pytest.param({}, 4, 0.8, id="doubles"),
        pytest.param({}, 10, 2.0, id="capped"),
        pytest.param({"Retry-After": "1"}, 1, 1.0, id="Retry-After honoured"),
        pytest.param({"Retry-After": "30"}, 1, 2.0, id="Retry-After capped"),
    ],
)
def test_backoff_delays(headers: dict[str, str], attempt: int, delay: float) -> None:
    policy = RetryPolicy(attempts=10, base_delay_s=0.1, max_delay_s=2.0)
    assert policy.delay(attempt, _api_error(429, headers)) == pytest.approx(delay)
