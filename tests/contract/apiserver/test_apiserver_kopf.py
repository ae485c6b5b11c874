"""A small kopf operator against the emulator: it sees creates, updates and deletes of a custom
resource, patches status, adds and removes its finalizer, and carries on after a dropped watch
and after a 410 Gone."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import kopf
import pytest
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.types import PatchType

from gpu_operator.kube import KubeSettings, build_async_client
from gpu_operator.sandbox.apiserver import ServerThread
from helpers.polling import wait_until_async

pytestmark = pytest.mark.timeout(30)

CRD = {
    "metadata": {"name": "gadgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
                            "status": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            },
                        },
                    }
                },
            }
        ],
    },
}
Gadget = create_namespaced_resource("example.com", "v1", "Gadget", "gadgets")
FINALIZER = "example.com/gadget-cleanup"


async def eventually(check: Callable[[], Any]) -> None:
    assert await wait_until_async(check), f"never true: {check.__doc__ or check}"


@pytest.fixture
async def kopf_client(server_thread: ServerThread) -> AsyncIterator[AsyncClient]:
    client = build_async_client(KubeSettings(server=server_thread.url))
    await client.create(CustomResourceDefinition.from_dict(CRD))
    yield client
    await client.close()


@pytest.fixture
def operator(
    server_thread: ServerThread, kopf_client: AsyncClient
) -> Iterator[list[tuple[str, str]]]:
    """Run a kopf operator on its own thread and loop (kopf owns every task on its loop);
    yields the (cause, name) list its handlers append to."""
    seen: list[tuple[str, str]] = []
    registry = kopf.OperatorRegistry()
    settings = kopf.OperatorSettings()
    settings.persistence.finalizer = FINALIZER
    settings.watching.server_timeout = 30
    settings.posting.level = logging.WARNING

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=server_thread.url, insecure=True)

    @kopf.on.create("example.com", "v1", "gadgets", registry=registry)
    def created(name: str, patch: kopf.Patch, **_: Any) -> None:
        seen.append(("create", name))
        patch.status["phase"] = "Ready"

    @kopf.on.update("example.com", "v1", "gadgets", registry=registry)
    def updated(name: str, **_: Any) -> None:
        seen.append(("update", name))

    @kopf.on.delete("example.com", "v1", "gadgets", registry=registry)
    def deleted(name: str, **_: Any) -> None:
        seen.append(("delete", name))

    stop = threading.Event()
    runner = threading.Thread(
        target=lambda: asyncio.run(
            kopf.operator(
                registry=registry,
                settings=settings,
                clusterwide=True,
                standalone=True,
                stop_flag=stop,
            )
        ),
        daemon=True,
    )
    runner.start()
    yield seen
    stop.set()
    runner.join(timeout=10)
    assert not runner.is_alive(), "kopf stops when asked"


async def gadget(aclient: AsyncClient, name: str) -> Any:
    return await aclient.get(Gadget, name, namespace="default")


async def test_kopf_handles_the_whole_lifecycle(
    operator: list[tuple[str, str]], kopf_client: AsyncClient, server_thread: ServerThread
) -> None:
    aclient, server = kopf_client, server_thread.server
    await aclient.create(
        Gadget(metadata=ObjectMeta(name="g1"), spec={"size": 1}), namespace="default"
    )

    async def ready() -> bool:
        """g1 has status.phase=Ready and kopf's finalizer"""
        obj = await gadget(aclient, "g1")
        return bool(
            obj.status
            and obj.status.get("phase") == "Ready"
            and FINALIZER in (obj.metadata.finalizers or [])
        )

    await eventually(ready)
    await aclient.patch(
        Gadget, "g1", {"spec": {"size": 2}}, namespace="default", patch_type=PatchType.MERGE
    )
    await eventually(lambda: ("update", "g1") in operator)

    server_thread.call(server.drop_watches)
    await aclient.create(
        Gadget(metadata=ObjectMeta(name="g2"), spec={"size": 1}), namespace="default"
    )
    await eventually(lambda: ("create", "g2") in operator)

    def create_while_disconnected() -> None:
        """g3 appears while kopf has no watch open, and history is gone: only a re-list after
        the 410 can show it"""
        server.drop_watches()
        gadgets = server.cluster.registry.find("example.com", "v1", "gadgets")
        assert gadgets is not None
        server.cluster.create(
            gadgets, "default", {"metadata": {"name": "g3"}, "spec": {"size": 1}}, "test"
        )
        server.compact()

    server_thread.call(create_while_disconnected)
    await eventually(lambda: ("create", "g3") in operator)
    assert server.cluster.store.expired_answers >= 1, "kopf's resume really got 410 Gone"

    await aclient.delete(Gadget, "g1", namespace="default")

    async def gone() -> bool:
        """g1 deleted once kopf removed its finalizer"""
        try:
            await gadget(aclient, "g1")
        except ApiError as error:
            return error.status.code == 404
        return False

    await eventually(gone)
    assert ("delete", "g1") in operator
    assert operator.count(("create", "g1")) == 1
