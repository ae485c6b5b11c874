"""``GET …/pods/NAME/log``: what ``kubectl logs`` reads. The emulator checks the pod and the
container as a real API server does, then hands the request to a ``LogSource`` (the sandbox's
kubelets); without one it answers as a real API server whose kubelet can't be reached.

Query parameters: ``container``, ``previous``, ``tailLines``, ``follow``, ``timestamps``,
``limitBytes`` (``sinceSeconds``/``sinceTime`` are passed on as a warning that they are not
applied). ``follow`` streams until the source ends (the container stopped) or the client goes
away (aiohttp cancels the handler, which closes the source's iterator)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from gpu_operator.sandbox.apiserver.status import ApiStatus, bad_request

Obj = dict[str, Any]
KUBELET_PORT = 10250


@dataclass(frozen=True)
class LogRequest:
    """One ``kubectl logs``: which container's log, and how much of it."""

    namespace: str
    pod: str
    container: str
    previous: bool = False
    tail_lines: int | None = None
    follow: bool = False
    timestamps: bool = False


@dataclass
class LogStream:
    """The log's bytes in chunks; ``warnings`` reach kubectl as ``Warning:`` lines."""

    chunks: AsyncIterator[bytes]
    warnings: list[str] = field(default_factory=list)


class LogUnavailable(Exception):
    """There is no such log (yet): a 400 with this message, as the kubelet answers."""


class LogSource(Protocol):
    def open_log(self, request: LogRequest) -> LogStream:
        """The log ``request`` names; raise ``LogUnavailable`` when there is none."""
        ...


def container_for(pod: Obj, wanted: str) -> str:
    """The container a log or exec request means: ``wanted``, or the only one; a 400 naming
    the choices otherwise (upstream's wording)."""
    spec = pod.get("spec") or {}
    names: list[str] = [c["name"] for c in spec.get("containers") or []]
    init_names = [c["name"] for c in spec.get("initContainers") or []]
    ephemeral = [c["name"] for c in spec.get("ephemeralContainers") or []]
    name = pod["metadata"]["name"]
    if not wanted:
        if len(names) == 1:
            return names[0]
        if not names:
            raise ApiStatus(404, f"pod {name!r} has no containers")
        message = (
            f"a container name must be specified for pod {name}, choose one of: [{' '.join(names)}]"
        )
        if init_names:
            message += f" or one of the init containers: [{' '.join(init_names)}]"
        raise bad_request(message)
    if wanted not in (*names, *init_names, *ephemeral):
        raise bad_request(f"container {wanted} is not valid for pod {name}")
    return wanted


def _flag(request: web.Request, name: str) -> bool:
    value = request.query.get(name, "false")
    if value not in ("true", "false", "1", "0", ""):
        raise bad_request(f"{name} must be true or false, not {value!r}")
    return value in ("true", "1")


def _count(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if not raw.lstrip("-").isdigit():
        raise bad_request(f"{name} must be an integer, not {raw!r}")
    value = int(raw)
    if value < 0 or (name == "limitBytes" and value == 0):
        raise bad_request(f"{name} must be {'positive' if name == 'limitBytes' else '≥ 0'}")
    return value


def parse(request: web.Request, pod: Obj) -> LogRequest:
    return LogRequest(
        namespace=pod["metadata"]["namespace"],
        pod=pod["metadata"]["name"],
        container=container_for(pod, request.query.get("container", "")),
        previous=_flag(request, "previous"),
        tail_lines=_count(request, "tailLines"),
        follow=_flag(request, "follow"),
        timestamps=_flag(request, "timestamps"),
    )


def _warning(text: str) -> str:
    return '299 - "' + text.replace('"', "'") + '"'


async def serve(request: web.Request, pod: Obj, source: LogSource | None) -> web.StreamResponse:
    if request.method != "GET":
        raise ApiStatus(405, "pods/log only allows GET")
    wanted = parse(request, pod)
    limit = _count(request, "limitBytes")
    node = (pod.get("spec") or {}).get("nodeName")
    if not node:
        return web.Response(body=b"", content_type="text/plain")  # not scheduled: no log yet
    if source is None:
        raise ApiStatus(
            500,
            f'Get "https://{node}:{KUBELET_PORT}/containerLogs/{wanted.namespace}/{wanted.pod}/'
            f'{wanted.container}": no kubelet answers for node {node!r}: this API server '
            "emulator runs without one (ApiServer(log_source=...) is not set)",
        )
    try:
        stream = source.open_log(wanted)
    except LogUnavailable as error:
        raise bad_request(str(error)) from None
    warnings = list(stream.warnings)
    if request.query.get("sinceSeconds") or request.query.get("sinceTime"):
        warnings.append("sinceSeconds/sinceTime are not applied by the sandbox: the whole log")
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    for text in warnings:
        response.headers.add("Warning", _warning(text))
    await response.prepare(request)
    try:
        async for chunk in stream.chunks:
            if limit is not None:
                chunk = chunk[:limit]
                limit -= len(chunk)
            await response.write(chunk)
            if limit == 0:
                break
    except ConnectionResetError:
        pass  # the client went away
    finally:
        closer = getattr(stream.chunks, "aclose", None)
        if closer is not None:
            await closer()
    await response.write_eof()
    return response
