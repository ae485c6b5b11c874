"""Watches that survive: list, then watch from the list's version; resume from the last seen
version when the stream drops; re-list and report the difference on 410 Gone — so a consumer
misses no change, even across compactions and reconnects.

Events come as ``WatchEvent(type, obj)`` with type ``ADDED``, ``MODIFIED`` or ``DELETED``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx2
from lightkube import AsyncClient, Client
from lightkube.resources.core_v1 import Node

from gpu_operator.kube.retry import RetryPolicy, is_retryable, kube_error, status_code

Key = tuple[str, str]


@dataclass(frozen=True)
class WatchEvent:
    type: str
    obj: Any


def _key(obj: Any) -> Key:
    return (obj.metadata.namespace or "", obj.metadata.name)


def relist_events(known: dict[Key, Any], fresh: list[Any]) -> list[WatchEvent]:
    """What changed between the objects we knew and a fresh list (pure; updates ``known``)."""
    events = []
    seen = set()
    for obj in fresh:
        key = _key(obj)
        seen.add(key)
        before = known.get(key)
        if before is None:
            events.append(WatchEvent("ADDED", obj))
        elif before.metadata.resourceVersion != obj.metadata.resourceVersion:
            events.append(WatchEvent("MODIFIED", obj))
        known[key] = obj
    for key in [k for k in known if k not in seen]:
        events.append(WatchEvent("DELETED", known.pop(key)))
    return events


@dataclass
class _Cursor:
    """Where a resilient watch stands: the objects it reported and the version to resume at."""

    known: dict[Key, Any]
    version: str | None = None
    failures: int = 0

    def seen(self, event_type: str, obj: Any) -> WatchEvent | None:
        version = obj.metadata.resourceVersion if obj.metadata else None
        if version:
            self.version = version
        self.failures = 0
        if event_type == "BOOKMARK":
            return None
        if event_type == "DELETED":
            self.known.pop(_key(obj), None)
        else:
            self.known[_key(obj)] = obj
        return WatchEvent(event_type, obj)

    def failed(self, error: BaseException, policy: RetryPolicy, what: str) -> float:
        """Handle a broken stream: returns the delay before resuming, or raises ``KubeError``."""
        if status_code(error) == 410:
            self.version = None
            return 0.0
        self.failures += 1
        if not is_retryable(error) or self.failures >= policy.attempts:
            raise kube_error(error, what) from error
        return policy.delay(self.failures, error)


def _list_args(
    namespace: str | None, labels: Mapping[str, Any] | None, fields: Mapping[str, Any] | None
) -> dict[str, Any]:
    args: dict[str, Any] = {"labels": dict(labels or {}), "fields": dict(fields or {})}
    if namespace is not None:
        args["namespace"] = namespace
    return args


def watch(
    client: Client,
    res: type[Any],
    *,
    namespace: str | None = None,
    labels: Mapping[str, Any] | None = None,
    fields: Mapping[str, Any] | None = None,
    policy: RetryPolicy = RetryPolicy(),
) -> Iterator[WatchEvent]:
    """Every change to the matching ``res`` objects, starting with ADDED for those that exist.
    Runs until the caller stops iterating; raises ``KubeError`` on a lasting failure."""
    cursor = _Cursor({})
    args = _list_args(namespace, labels, fields)
    what = f"watch {res.__name__}"
    while True:
        try:
            if cursor.version is None:
                listing = client.list(res, **args)
                fresh = list(listing)
                yield from relist_events(cursor.known, fresh)
                cursor.version = listing.resourceVersion
                cursor.failures = 0
            for event_type, obj in client.watch(res, resource_version=cursor.version, **args):
                event = cursor.seen(event_type, obj)
                if event is not None:
                    yield event
        except (httpx2.HTTPStatusError, httpx2.TransportError) as error:
            time.sleep(cursor.failed(error, policy, what))


async def awatch(
    client: AsyncClient,
    res: type[Any],
    *,
    namespace: str | None = None,
    labels: Mapping[str, Any] | None = None,
    fields: Mapping[str, Any] | None = None,
    policy: RetryPolicy = RetryPolicy(),
) -> AsyncIterator[WatchEvent]:
    """``watch`` for asyncio clients."""
    cursor = _Cursor({})
    args = _list_args(namespace, labels, fields)
    what = f"watch {res.__name__}"
    while True:
        try:
            if cursor.version is None:
                listing = client.list(res, **args)
                fresh = [obj async for obj in listing]
                for change in relist_events(cursor.known, fresh):
                    yield change
                cursor.version = listing.resourceVersion
                cursor.failures = 0
            async for event_type, obj in client.watch(res, resource_version=cursor.version, **args):
                event = cursor.seen(event_type, obj)
                if event is not None:
                    yield event
        except (httpx2.HTTPStatusError, httpx2.TransportError) as error:
            await asyncio.sleep(cursor.failed(error, policy, what))


def watch_node(
    client: Client, name: str, *, policy: RetryPolicy = RetryPolicy()
) -> Iterator[WatchEvent]:
    """Changes to one node (by ``metadata.name``), starting with its current state."""
    return watch(client, Node, fields={"metadata.name": name}, policy=policy)


def awatch_node(
    client: AsyncClient, name: str, *, policy: RetryPolicy = RetryPolicy()
) -> AsyncIterator[WatchEvent]:
    """``watch_node`` for asyncio clients."""
    return awatch(client, Node, fields={"metadata.name": name}, policy=policy)
