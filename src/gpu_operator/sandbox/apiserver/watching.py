"""Watch streams: replay from a resourceVersion (or the current state), then live events,
bookmarks, ``timeoutSeconds``, and 410 Gone when the version is older than the kept history.
``sendInitialEvents=true`` (the streaming list client-go's informers use) sends the current
state as ADDED events, then a bookmark annotated ``k8s.io/initial-events-end: "true"``."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

from aiohttp import web

from gpu_operator.sandbox.apiserver import tables
from gpu_operator.sandbox.apiserver.resources import ResourceType
from gpu_operator.sandbox.apiserver.selectors import Selector
from gpu_operator.sandbox.apiserver.status import ApiStatus, bad_request
from gpu_operator.sandbox.apiserver.storage import Event, Expired, Obj, Store, Watcher

DEFAULT_TIMEOUT_S = 1800.0
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


@dataclass(frozen=True)
class WatchRequest:
    rtype: ResourceType
    namespace: str | None
    selector: Selector
    resource_version: str
    timeout_s: float
    bookmarks: bool
    table_include: str | None  # None: plain objects; else Table rows with this includeObject
    send_initial_events: bool = False


def parse_timeout(text: str | None) -> float:
    if text in (None, ""):
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        raise bad_request(f"timeoutSeconds must be a number of seconds, not {text!r}") from None
    return value if value > 0 else DEFAULT_TIMEOUT_S


class WatchStream:
    """One HTTP watch: registered with the store before the first await, so nothing is missed."""

    def __init__(self, store: Store, watch: WatchRequest, bookmark_interval_s: float):
        self.store = store
        self.watch = watch
        self.bookmark_interval_s = bookmark_interval_s
        self.watcher = Watcher(watch.rtype.key, watch.namespace, watch.selector)
        self.backlog: list[tuple[str, Event | Obj]] = []
        self.expired: Expired | None = None
        rv = watch.resource_version
        if rv in ("", "0") or watch.send_initial_events:
            self.backlog = [
                ("ADDED", o)
                for o in store.list_objects(watch.rtype.key, watch.namespace)
                if watch.selector.matches(o)
            ]
        else:
            if not rv.isdigit():
                raise bad_request(f"resourceVersion must be a number, not {rv!r}")
            try:
                for event in store.events_since(watch.rtype.key, int(rv)):
                    self.watcher.offer(event)
            except Expired as error:
                self.expired = error
        store.watchers.add(self.watcher)

    def _line(self, event_type: str, item: Event | Obj) -> bytes:
        api_version = self.watch.rtype.api_version
        if self.watch.table_include is None:
            if isinstance(item, Event):
                return item.line(event_type, api_version)
            return json.dumps({"type": event_type, "object": item}).encode() + b"\n"
        obj = item.obj if isinstance(item, Event) else item
        body = tables.table(
            self.watch.rtype,
            [obj],
            self.watch.table_include,
            obj["metadata"]["resourceVersion"],
            time.time(),
        )
        return json.dumps({"type": event_type, "object": body}).encode() + b"\n"

    def _bookmark(self, *, initial_events_end: bool = False) -> bytes:
        rtype = self.watch.rtype
        meta: Obj = {"resourceVersion": str(self.store.rv)}
        if initial_events_end:
            meta["annotations"] = {INITIAL_EVENTS_END: "true"}
        obj = {"kind": rtype.kind, "apiVersion": rtype.api_version, "metadata": meta}
        return json.dumps({"type": "BOOKMARK", "object": obj}).encode() + b"\n"

    async def serve(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            status=200, headers={"Content-Type": "application/json", "Cache-Control": "no-cache"}
        )
        try:
            await response.prepare(request)
            if self.expired is not None:
                self.store.expired_answers += 1
                gone = ApiStatus(410, str(self.expired), reason="Expired")
                await response.write(
                    json.dumps({"type": "ERROR", "object": gone.body()}).encode() + b"\n"
                )
                return response
            for event_type, item in self.backlog:
                await response.write(self._line(event_type, item))
            self.backlog = []
            if self.watch.send_initial_events and self.watch.bookmarks:
                await response.write(self._bookmark(initial_events_end=True))
            await self._stream(response)
        except ConnectionResetError:
            pass
        finally:
            self.store.watchers.discard(self.watcher)
        return response

    async def _stream(self, response: web.StreamResponse) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.watch.timeout_s
        next_bookmark = loop.time() + self.bookmark_interval_s
        queue = self.watcher.queue
        while True:
            now = loop.time()
            if now >= deadline:
                return
            wake = min(deadline, next_bookmark) if self.watch.bookmarks else deadline
            try:
                item = await asyncio.wait_for(queue.get(), timeout=max(0.0, wake - now))
            except TimeoutError:
                if self.watch.bookmarks and loop.time() >= next_bookmark:
                    await response.write(self._bookmark())
                    next_bookmark = loop.time() + self.bookmark_interval_s
                continue
            if item is None:
                return
            chunk = [self._line(*item)]
            while not queue.empty():
                more = queue.get_nowait()
                if more is None:
                    await response.write(b"".join(chunk))
                    return
                chunk.append(self._line(*more))
            await response.write(b"".join(chunk))


def drop_all(store: Store) -> int:
    """End every open watch stream (clients see the connection close and must resume)."""
    for watcher in list(store.watchers):
        watcher.queue.put_nowait(None)
    return len(store.watchers)
