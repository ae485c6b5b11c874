"""The object store: current objects, one cluster-wide resourceVersion counter, the bounded event
history watches resume from, and the fan-out of each change to the open watches.

Stored objects are never mutated in place: every write stores a new dict, so readers and queued
watch events may share them without copying.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gpu_operator.sandbox.apiserver.selectors import Selector

Obj = dict[str, Any]
ObjKey = tuple[str, str]  # (namespace or "", name)


@dataclass(eq=False)
class Event:
    """One change: ``obj`` is the object after it (for DELETED: as it was, with a new version)."""

    rv: int
    type: str
    key: str
    obj: Obj
    old: Obj | None
    _lines: dict[tuple[str, str], bytes] = field(default_factory=dict)

    def line(self, event_type: str, api_version: str) -> bytes:
        """The JSON line of this event, encoded once per type and version for every watcher."""
        cache_key = (event_type, api_version)
        encoded = self._lines.get(cache_key)
        if encoded is None:
            obj = self.obj
            if obj.get("apiVersion") != api_version:
                obj = {**obj, "apiVersion": api_version}
            encoded = json.dumps({"type": event_type, "object": obj}).encode() + b"\n"
            self._lines[cache_key] = encoded
        return encoded


class Expired(Exception):
    """The requested resourceVersion is older than the kept history."""

    def __init__(self, requested: int, oldest: int):
        super().__init__(f"too old resource version: {requested} ({oldest})")


@dataclass(eq=False)
class Watcher:
    """One open watch: which objects it sees and the queue its stream drains."""

    key: str
    namespace: str | None
    selector: Selector
    queue: asyncio.Queue[tuple[str, Event] | None] = field(default_factory=asyncio.Queue)

    def _sees(self, obj: Obj | None) -> bool:
        if obj is None:
            return False
        if self.namespace is not None and obj["metadata"].get("namespace", "") != self.namespace:
            return False
        return self.selector.matches(obj)

    def offer(self, event: Event) -> None:
        """Queue ``event`` as this watch sees it: an object that starts or stops matching the
        selector arrives as ADDED or DELETED, as the real API server does."""
        if event.key != self.key:
            return
        now = self._sees(event.obj)
        if event.type == "MODIFIED":
            before = self._sees(event.old)
            if now and not before:
                self.queue.put_nowait(("ADDED", event))
            elif before and not now:
                self.queue.put_nowait(("DELETED", event))
            elif now:
                self.queue.put_nowait(("MODIFIED", event))
        elif now:
            self.queue.put_nowait((event.type, event))


class Store:
    """All objects by resource key and (namespace, name), plus history and watches."""

    def __init__(self, history_limit: int = 50_000):
        self.rv = 1
        self.objects: dict[str, dict[ObjKey, Obj]] = {}
        self.history: deque[Event] = deque(maxlen=history_limit)
        self.compacted = 1
        self.watchers: set[Watcher] = set()
        self.on_change: list[Callable[[Event], None]] = []
        self.uids: set[str] = set()
        # Objects with ownerReferences, so garbage collection never scans the whole store.
        self.dependents: dict[tuple[str, str, str], None] = {}
        self.expired_answers = 0  # watches answered 410 Gone (tests check a resume really hit it)

    def next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def get(self, key: str, namespace: str, name: str) -> Obj | None:
        return self.objects.get(key, {}).get((namespace, name))

    def list_objects(self, key: str, namespace: str | None = None) -> list[Obj]:
        bucket = self.objects.get(key, {})
        keys = sorted(k for k in bucket if namespace is None or k[0] == namespace)
        return [bucket[k] for k in keys]

    def count(self) -> int:
        return sum(len(b) for b in self.objects.values())

    def _publish(self, event: Event) -> None:
        if len(self.history) == self.history.maxlen:
            self.compacted = self.history[0].rv
        self.history.append(event)
        for watcher in self.watchers:
            watcher.offer(event)
        for hook in self.on_change:
            hook(event)

    def put(self, key: str, obj: Obj, old: Obj | None) -> None:
        """Store ``obj`` (already stamped with a new resourceVersion) and publish the change."""
        self._index(key, obj)
        kind = "ADDED" if old is None else "MODIFIED"
        self._publish(Event(int(obj["metadata"]["resourceVersion"]), kind, key, obj, old))

    def refill(self, key: str, obj: Obj) -> None:
        """Replace a stored object by a read-time-defaulted copy: same resourceVersion, no event."""
        self._index(key, obj)

    def _index(self, key: str, obj: Obj) -> None:
        meta = obj["metadata"]
        namespace = meta.get("namespace", "")
        self.objects.setdefault(key, {})[(namespace, meta["name"])] = obj
        self.uids.add(meta["uid"])
        if meta.get("ownerReferences"):
            self.dependents[(key, namespace, meta["name"])] = None
        else:
            self.dependents.pop((key, namespace, meta["name"]), None)

    def load(self, objects: dict[str, list[Obj]], resource_version: int) -> None:
        """Restore a snapshot (no events: history starts after it)."""
        for key, objs in objects.items():
            for obj in objs:
                self._index(key, obj)
        self.rv = self.compacted = resource_version

    def remove(self, key: str, obj: Obj) -> Obj:
        """Drop ``obj``; the DELETED event carries it with a fresh resourceVersion."""
        meta = obj["metadata"]
        namespace = meta.get("namespace", "")
        self.objects.get(key, {}).pop((namespace, meta["name"]), None)
        self.uids.discard(meta["uid"])
        self.dependents.pop((key, namespace, meta["name"]), None)
        rv = self.next_rv()
        gone = {**obj, "metadata": {**meta, "resourceVersion": str(rv)}}
        self._publish(Event(rv, "DELETED", key, gone, obj))
        return gone

    def compact(self) -> None:
        """Forget all history: a watch resuming from any earlier version gets 410 Gone."""
        self.history.clear()
        self.compacted = self.rv

    def events_since(self, key: str, rv: int) -> list[Event]:
        if rv < self.compacted:
            raise Expired(rv, self.compacted)
        return [e for e in self.history if e.rv > rv and e.key == key]

    def snapshot(self) -> dict[str, Any]:
        return {
            "resourceVersion": self.rv,
            "objects": {key: list(bucket.values()) for key, bucket in self.objects.items()},
        }
