"""The emulator as lightkube's asyncio client sees it: CRUD, watches with bookmarks, timeouts,
selector-filtered watches, 410 Gone after compaction, and CRD resources appearing in discovery."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_global_resource
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.core_v1 import ConfigMap, Node
from lightkube.types import PatchType

from gpu_operator.sandbox.apiserver import ApiServer

pytestmark = pytest.mark.timeout(20)


async def test_async_crud_and_409(aclient: AsyncClient) -> None:
    created = await aclient.create(
        ConfigMap(metadata=ObjectMeta(name="a"), data={"k": "v"}), namespace="default"
    )
    with pytest.raises(ApiError) as excinfo:
        await aclient.create(ConfigMap(metadata=ObjectMeta(name="a")), namespace="default")
    assert excinfo.value.status.code == 409
    got = await aclient.get(ConfigMap, "a", namespace="default")
    assert got.metadata.uid == created.metadata.uid
    await aclient.delete(ConfigMap, "a", namespace="default")
    assert [c async for c in aclient.list(ConfigMap, namespace="default")] == []


async def test_watch_streams_added_modified_deleted(aclient: AsyncClient) -> None:
    events: list[tuple[str, str]] = []

    async def consume() -> None:
        async for event_type, obj in aclient.watch(ConfigMap, namespace="default"):
            events.append((event_type, str(obj.metadata.name)))
            if event_type == "DELETED":
                return

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    await aclient.create(ConfigMap(metadata=ObjectMeta(name="w")), namespace="default")
    await aclient.patch(
        ConfigMap, "w", {"data": {"x": "1"}}, namespace="default", patch_type=PatchType.MERGE
    )
    await aclient.delete(ConfigMap, "w", namespace="default")
    await asyncio.wait_for(task, 5)
    assert events == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]


async def test_label_selected_watch_sees_objects_enter_and_leave(aclient: AsyncClient) -> None:
    await aclient.create(Node(metadata=ObjectMeta(name="n1")))
    events: list[str] = []

    async def consume() -> None:
        async for event_type, _ in aclient.watch(Node, labels={"gpu": "yes"}):
            events.append(event_type)
            if len(events) == 2:
                return

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    for value in ("yes", "no"):
        await aclient.patch(
            Node, "n1", {"metadata": {"labels": {"gpu": value}}}, patch_type=PatchType.MERGE
        )
    await asyncio.wait_for(task, 5)
    assert events == ["ADDED", "DELETED"]


async def _watch_lines(url: str, query: str) -> list[dict[str, object]]:
    async with aiohttp.ClientSession() as session, session.get(url + query) as response:
        assert response.status == 200
        return [__import__("json").loads(line) async for line in response.content]


async def test_bookmarks_and_timeout_end_the_stream(apiserver: ApiServer) -> None:
    lines = await _watch_lines(
        apiserver.url,
        f"/api/v1/namespaces?watch=true&allowWatchBookmarks=true&timeoutSeconds=0.5"
        f"&resourceVersion={apiserver.cluster.store.rv}",
    )
    assert lines, "a bookmark arrives within the bookmark interval"
    assert {line["type"] for line in lines} == {"BOOKMARK"}
    bookmark = lines[0]["object"]
    assert isinstance(bookmark, dict)
    assert bookmark["kind"] == "Namespace"
    assert bookmark["metadata"]["resourceVersion"] == str(apiserver.cluster.store.rv)


async def test_send_initial_events_streams_the_state_then_an_initial_events_end_bookmark(
    apiserver: ApiServer,
) -> None:
    lines = await _watch_lines(
        apiserver.url,
        "/api/v1/namespaces?watch=true&allowWatchBookmarks=true&sendInitialEvents=true"
        "&resourceVersionMatch=NotOlderThan&timeoutSeconds=0.3",
    )
    names = {line["object"]["metadata"]["name"] for line in lines if line["type"] == "ADDED"}  # type: ignore[index]
    assert {"default", "kube-system"} <= names
    first_bookmark = next(i for i, line in enumerate(lines) if line["type"] == "BOOKMARK")
    assert all(line["type"] == "ADDED" for line in lines[:first_bookmark])
    bookmark = lines[first_bookmark]["object"]
    assert isinstance(bookmark, dict)
    assert bookmark["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


async def test_watch_from_compacted_version_gets_410_expired(apiserver: ApiServer) -> None:
    old = apiserver.cluster.store.rv
    apiserver.compact()
    lines = await _watch_lines(
        apiserver.url, f"/api/v1/namespaces?watch=1&resourceVersion={old - 1}"
    )
    assert len(lines) == 1
    assert lines[0]["type"] == "ERROR"
    status = lines[0]["object"]
    assert isinstance(status, dict)
    assert status["code"] == 410
    assert status["reason"] == "Expired"


async def test_drop_watches_closes_open_streams(apiserver: ApiServer) -> None:
    task = asyncio.create_task(
        _watch_lines(
            apiserver.url, f"/api/v1/nodes?watch=1&resourceVersion={apiserver.cluster.store.rv}"
        )
    )
    for _ in range(100):
        if apiserver.cluster.store.watchers:
            break
        await asyncio.sleep(0.01)
    assert apiserver.drop_watches() == 1
    assert await asyncio.wait_for(task, 5) == []


async def test_new_crd_appears_in_discovery(apiserver: ApiServer, aclient: AsyncClient) -> None:
    crd = {
        "metadata": {"name": "clusterpolicies.nvidia.com"},
        "spec": {
            "group": "nvidia.com",
            "scope": "Cluster",
            "names": {"plural": "clusterpolicies", "kind": "ClusterPolicy", "shortNames": ["cp"]},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }
    await aclient.create(CustomResourceDefinition.from_dict(crd))
    async with aiohttp.ClientSession() as session:
        groups = await (await session.get(apiserver.url + "/apis")).json()
        resources = await (await session.get(apiserver.url + "/apis/nvidia.com/v1")).json()
    assert "nvidia.com" in [g["name"] for g in groups["groups"]]
    by_name = {r["name"]: r for r in resources["resources"]}
    assert by_name["clusterpolicies"]["kind"] == "ClusterPolicy"
    assert by_name["clusterpolicies"]["namespaced"] is False
    assert by_name["clusterpolicies"]["shortNames"] == ["cp"]
    assert "clusterpolicies/status" in by_name
    clusterpolicy_res = create_global_resource(
        "nvidia.com", "v1", "ClusterPolicy", "clusterpolicies"
    )
    made = await aclient.create(
        clusterpolicy_res(
            metadata=ObjectMeta(name="cluster-policy"), spec={"driver": {"enabled": True}}
        )
    )
    assert made.spec == {"driver": {"enabled": True}}


async def test_token_auth_rejects_missing_bearer() -> None:
    async with ApiServer(token="s3cret") as server, aiohttp.ClientSession() as session:
        denied = await session.get(server.url + "/api/v1/nodes")
        allowed = await session.get(
            server.url + "/api/v1/nodes", headers={"Authorization": "Bearer s3cret"}
        )
        assert (denied.status, allowed.status) == (401, 200)


async def test_snapshot_survives_a_restart(tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "snapshot.json"  # type: ignore[operator]
    async with ApiServer(snapshot=path) as first, aiohttp.ClientSession() as session:
        await session.post(first.url + "/api/v1/nodes", json={"metadata": {"name": "kept"}})
        rv = first.cluster.store.rv
    async with ApiServer(snapshot=path) as second:
        assert second.cluster.store.get("/nodes", "", "kept") is not None
        assert second.cluster.store.rv == rv


async def test_injected_latency_delays_every_request(apiserver: ApiServer) -> None:
    apiserver.set_latency(0.1)
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as session:
        start = loop.time()
        async with session.get(apiserver.url + "/api/v1/namespaces") as response:
            assert response.status == 200
        assert loop.time() - start >= 0.1


async def test_fault_endpoint_for_other_processes(apiserver: ApiServer) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(
            apiserver.url + "/_sandbox/faults", json={"failNext": 1, "status": 429, "retryAfter": 2}
        ) as response:
            assert (await response.json())["failNext"] == 1
        async with session.get(apiserver.url + "/api/v1/nodes") as response:
            assert response.status == 429
            assert response.headers["Retry-After"] == "2"
            assert (await response.json())["reason"] == "TooManyRequests"
        async with session.get(apiserver.url + "/api/v1/nodes") as response:
            assert response.status == 200
        async with session.post(apiserver.url + "/_sandbox/faults", json={"failNext": "x"}) as bad:
            assert bad.status == 400
