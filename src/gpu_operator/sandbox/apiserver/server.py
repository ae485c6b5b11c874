"""The emulator's HTTP server: routing, auth, fault injection, start/stop, snapshots, and a
thread runner for synchronous clients."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from gpu_operator.sandbox.apiserver import discovery, handlers, logs, openapi, podexec
from gpu_operator.sandbox.apiserver.cluster import Cluster
from gpu_operator.sandbox.apiserver.crds import crd_types
from gpu_operator.sandbox.apiserver.faults import Faults
from gpu_operator.sandbox.apiserver.kubeconfig import write_kubeconfig
from gpu_operator.sandbox.apiserver.resources import CRD_KEY
from gpu_operator.sandbox.apiserver.status import ApiStatus
from gpu_operator.sandbox.apiserver.storage import Store
from gpu_operator.sandbox.apiserver.watching import drop_all

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
log = logging.getLogger(__name__)


class ApiServer:
    """An in-memory Kubernetes API server on ``host:port`` (port 0: one the OS picks).

    ``bookmark_interval_s`` paces watch bookmarks; ``history_limit`` bounds the events a watch
    can resume from; ``snapshot`` is a JSON file loaded on start and written on stop.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        snapshot: Path | None = None,
        bookmark_interval_s: float = 60.0,
        history_limit: int = 50_000,
        clock: Callable[[], float] = time.time,
        graceful_pod_deletion: bool = False,
        log_source: logs.LogSource | None = None,
        exec_source: podexec.ExecSource | None = None,
    ):
        self.host, self.port, self.token, self.snapshot = host, port, token, snapshot
        self.bookmark_interval_s = bookmark_interval_s
        self.cluster = Cluster(Store(history_limit), clock)
        self.cluster.graceful_pods = graceful_pod_deletion
        """Pods on a node are marked and left for its kubelet to stop (see ``deletion``)."""
        self.log_source = log_source
        """Who serves ``pods/log`` (the sandbox's kubelets); without one, as a real API server
        whose kubelet can't be reached."""
        self.exec_source = exec_source
        """Who gives ``pods/exec`` a container's environment; without one, as ``log_source``."""
        self.faults = Faults()
        self.requests = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- fault injection (call on the server's loop; ServerThread.call does that) ----------------

    def drop_watches(self) -> int:
        """Close every open watch stream; returns how many were open."""
        return drop_all(self.cluster.store)

    def compact(self) -> None:
        """Forget the event history: a watch resuming from an older version gets 410 Gone."""
        self.cluster.store.compact()

    def fail_next(self, count: int, status: int = 500, retry_after_s: int = 1) -> None:
        self.faults.fail(count, status, retry_after_s)

    def set_latency(self, seconds: float) -> None:
        self.faults.latency_s = max(0.0, seconds)

    # -- lifecycle -------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._route)
        return app

    async def start(self) -> str:
        if self.snapshot is not None and self.snapshot.exists():
            self._load(self.snapshot)
        self._runner = web.AppRunner(self.app(), access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        if self.port == 0:
            self.port = int(self._runner.addresses[0][1])
        return self.url

    async def stop(self) -> None:
        self.drop_watches()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.snapshot is not None:
            self.snapshot.write_text(json.dumps(self.cluster.store.snapshot()))

    async def __aenter__(self) -> ApiServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def write_kubeconfig(self, path: Path) -> Path:
        return write_kubeconfig(path, self.url, self.token)

    def _load(self, path: Path) -> None:
        data = json.loads(path.read_text())
        self.cluster.store.load(data["objects"], int(data["resourceVersion"]))
        for crd in data["objects"].get(CRD_KEY, []):
            self.cluster.registry.set_crd(crd["metadata"]["name"], crd_types(crd))
            self.cluster.default_stored(crd)

    # -- HTTP -------------------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.requests += 1
        try:
            if self.faults.latency_s:
                await asyncio.sleep(self.faults.latency_s)
            open_path = request.path in ("/healthz", "/livez", "/readyz")
            authorized = request.headers.get("Authorization") == f"Bearer {self.token}"
            if self.token is not None and not open_path and not authorized:
                raise ApiStatus(401, "Unauthorized")
            injected = self.faults.take(request.path)
            if injected is not None:
                response = handlers.json_response(injected.body(), injected.code)
                if injected.code == 429:
                    response.headers["Retry-After"] = str(self.faults.retry_after_s)
                return response
            return await handler(request)
        except ApiStatus as error:
            return handlers.json_response(error.body(), error.code)
        except Exception as error:  # a bug here must still reach the client as a Status
            log.exception("%s %s failed", request.method, request.path)
            status = ApiStatus(500, f"emulator error: {type(error).__name__}: {error}")
            return handlers.json_response(status.body(), 500)

    async def _route(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        registry = self.cluster.registry
        if request.path in ("/healthz", "/livez", "/readyz"):
            return web.Response(text="ok")
        if parts[:1] == ["_sandbox"]:
            return await self._control(request, parts[1:])
        if parts == ["version"]:
            return handlers.json_response(discovery.version_info())
        if parts == ["api"]:
            return handlers.json_response(discovery.core_versions(f"{self.host}:{self.port}"))
        if parts == ["apis"]:
            return handlers.json_response(discovery.group_list(registry))
        if len(parts) == 2 and parts[0] == "apis":
            doc = discovery.group(registry, parts[1])
            if doc is None:
                raise ApiStatus(404, f"the server could not find the requested group {parts[1]!r}")
            return handlers.json_response(doc)
        if parts[:2] == ["openapi", "v3"]:
            doc = (
                openapi.root(registry)
                if len(parts) == 2
                else openapi.group_version(registry, "/".join(parts[2:]))
            )
            if doc is None:
                raise ApiStatus(
                    404, f"the server could not find the requested resource {request.path}"
                )
            return handlers.json_response(doc)
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiStatus(404, f"the server could not find the requested resource {request.path}")
        if rest[:1] == ["watch"]:
            raise ApiStatus(404, "the deprecated /watch/ paths are not served; use ?watch=true")
        target = handlers.parse_target(self.cluster, group, version, rest)
        if not isinstance(target, handlers.Target):
            return handlers.json_response(target)
        if target.subresource in ("log", "exec"):
            pod = self.cluster.get(target.rtype, target.namespace or "", target.name or "")
            if target.subresource == "log":
                return await logs.serve(request, pod, self.log_source)
            return await podexec.serve(request, pod, self.exec_source)
        if target.name is None:
            return await handlers.collection(
                request, self.cluster, target, self.bookmark_interval_s
            )
        return await handlers.item(request, self.cluster, target)

    async def _control(self, request: web.Request, parts: list[str]) -> web.Response:
        """``POST /_sandbox/faults`` {failNext, status, retryAfter, latencyMs, dropWatches,
        compact}: fault injection for clients in other processes; GET shows the state."""
        if parts != ["faults"]:
            raise ApiStatus(404, "the sandbox control endpoint is /_sandbox/faults")
        dropped = 0
        if request.method == "POST":
            body = await request.json() if request.can_read_body else {}
            if not isinstance(body, dict):
                raise ApiStatus(400, "the faults body must be a JSON object")
            try:
                if "failNext" in body:
                    self.fail_next(
                        int(body["failNext"]),
                        int(body.get("status", 500)),
                        int(body.get("retryAfter", 1)),
                    )
                if "latencyMs" in body:
                    self.set_latency(float(body["latencyMs"]) / 1000)
            except (TypeError, ValueError) as error:
                raise ApiStatus(400, f"bad fault request: {error}") from None
            if body.get("compact"):
                self.compact()
            if body.get("dropWatches"):
                dropped = self.drop_watches()
        return handlers.json_response({**self.faults.describe(), "watchesDropped": dropped})


class ServerThread:
    """Run an ``ApiServer`` on its own event loop in a daemon thread, for synchronous clients.

    ``call(fn, *args)`` runs ``fn`` on the server's loop and returns its result, so fault
    injection stays on the one thread that owns the server's state.
    """

    def __init__(self, server: ApiServer | None = None):
        self.server = server or ApiServer()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True, name="apiserver"
        )

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> ServerThread:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(timeout=10)
        return self

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        async def run() -> T:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
