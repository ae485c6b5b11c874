"""Resilient watches: a dropped stream resumes from the last version and a 410 Gone re-lists,
and in both cases every change reaches the consumer."""

from __future__ import annotations

import asyncio
import queue
import threading
from typing import Any

import pytest
from lightkube import AsyncClient, Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Node
from lightkube.types import PatchType

from gpu_operator.kube import RetryPolicy, WatchEvent, awatch_node, relist_events, watch_node
from gpu_operator.sandbox.apiserver import ApiServer, ServerThread

pytestmark = pytest.mark.timeout(15)
FAST = RetryPolicy(attempts=4, base_delay_s=0.01, max_delay_s=0.05)


def node(name: str, rv: str) -> Node:
    return Node(metadata=ObjectMeta(name=name, resourceVersion=rv))


def test_relist_reports_what_changed_while_we_were_away() -> None:
    known: dict[tuple[str, str], Any] = {("", "a"): node("a", "1"), ("", "b"): node("b", "2")}
    events = relist_events(known, [node("a", "1"), node("b", "5"), node("c", "6")])
    assert [(e.type, e.obj.metadata.name) for e in events] == [("MODIFIED", "b"), ("ADDED", "c")]
    events = relist_events(known, [node("c", "6")])
    assert [(e.type, e.obj.metadata.name) for e in events] == [("DELETED", "a"), ("DELETED", "b")]
    assert set(known) == {("", "c")}


def label(client: Client, value: str) -> None:
    client.patch(
        Node, "gpu-1", {"metadata": {"labels": {"step": value}}}, patch_type=PatchType.MERGE
    )


def change_while_disconnected(server: ApiServer, step: str) -> None:
    """Drop every watch, label gpu-1 and compact history in one turn of the server's loop: the
    change happens while no watch is open and the resume gets 410, so only a re-list sees it."""
    server.drop_watches()
    nodes = server.cluster.type_of("/nodes")
    live = server.cluster.get(nodes, "", "gpu-1")
    labels = {**(live["metadata"].get("labels") or {}), "step": step}
    server.cluster.update(
        nodes, "", "gpu-1", {**live, "metadata": {**live["metadata"], "labels": labels}}, "test"
    )
    server.compact()


def test_watch_node_survives_drop_and_410_without_missing_a_change(
    client: Client, server_thread: ServerThread
) -> None:
    client.create(Node(metadata=ObjectMeta(name="gpu-1")))
    client.create(Node(metadata=ObjectMeta(name="other")))
    events: queue.Queue[WatchEvent] = queue.Queue()
    stop = threading.Event()

    def consume() -> None:
        for event in watch_node(client, "gpu-1", policy=FAST):
            events.put(event)
            if stop.is_set():
                return

    threading.Thread(target=consume, daemon=True).start()

    def next_step() -> tuple[str, str | None]:
        event = events.get(timeout=5)
        return event.type, (event.obj.metadata.labels or {}).get("step")

    assert next_step() == ("ADDED", None)
    label(client, "1")
    assert next_step() == ("MODIFIED", "1")
    server = server_thread.server
    server_thread.call(server.drop_watches)
    label(client, "2")
    assert next_step() == ("MODIFIED", "2")
    server_thread.call(change_while_disconnected, server, "3")
    assert next_step() == ("MODIFIED", "3")
    assert server.cluster.store.expired_answers == 1, "the resume really got 410 Gone"
    stop.set()
    label(client, "4")
    assert next_step() == ("MODIFIED", "4")
    assert events.empty()


async def test_awatch_node_recovers_after_injected_500s_and_410(
    aclient: AsyncClient, apiserver: ApiServer
) -> None:
    await aclient.create(Node(metadata=ObjectMeta(name="gpu-1")))
    seen: asyncio.Queue[WatchEvent] = asyncio.Queue()

    async def consume() -> None:
        async for event in awatch_node(aclient, "gpu-1", policy=FAST):
            await seen.put(event)

    task = asyncio.create_task(consume())
    try:
        assert (await asyncio.wait_for(seen.get(), 5)).type == "ADDED"
        apiserver.fail_next(2, 500)
        change_while_disconnected(apiserver, "away")
        event = await asyncio.wait_for(seen.get(), 5)
        assert event.type == "MODIFIED"
        assert event.obj.metadata.labels == {"step": "away"}
        assert apiserver.faults.failed == 2, "two reconnects failed with 500 and were retried"
        assert apiserver.cluster.store.expired_answers == 1
        await aclient.delete(Node, "gpu-1")
        assert (await asyncio.wait_for(seen.get(), 5)).type == "DELETED"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
