"""HTTP handlers for resource paths: parse the URL and query, call the cluster, answer JSON.

``/api/v1/...`` and ``/apis/<group>/<version>/...``: collections (list, watch, create,
deletecollection), objects (get, update, patch, delete) and the ``status`` and ``eviction``
subresources.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web

from gpu_operator.sandbox.apiserver import discovery, eviction, patching, protobuf, tables
from gpu_operator.sandbox.apiserver.cluster import Cluster
from gpu_operator.sandbox.apiserver.resources import ResourceType
from gpu_operator.sandbox.apiserver.selectors import (
    Selector,
    parse_field_selector,
    parse_label_selector,
)
from gpu_operator.sandbox.apiserver.status import ApiStatus, bad_request
from gpu_operator.sandbox.apiserver.storage import Obj
from gpu_operator.sandbox.apiserver.validation import unknown_fields
from gpu_operator.sandbox.apiserver.watching import WatchRequest, WatchStream, parse_timeout

PATCH_TYPES = (
    "application/merge-patch+json",
    "application/json-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)


@dataclass(frozen=True)
class Target:
    """What a resource URL names: a type, maybe a namespace, a name and a subresource."""

    rtype: ResourceType
    namespace: str | None
    name: str | None
    subresource: str


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(body).encode(), status=status, content_type="application/json"
    )


def parse_target(cluster: Cluster, group: str, version: str, rest: list[str]) -> Target | Obj:
    """Resolve the path after ``/api/v1`` or ``/apis/g/v``; discovery paths return the doc."""
    if not rest:
        doc = discovery.resource_list(cluster.registry, group, version)
        if doc is None:
            raise ApiStatus(
                404, f"the server could not find the requested resource ({group}/{version})"
            )
        return doc
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
        namespace, rest = rest[1], rest[2:]
    if len(rest) > 3:
        raise ApiStatus(404, "the server could not find the requested resource")
    rtype = cluster.registry.find(group, version, rest[0])
    if rtype is None:
        where = f"{group}/{version}" if group else version
        raise ApiStatus(
            404, f"the server could not find the requested resource ({rest[0]} in {where})"
        )
    if namespace is not None and not rtype.namespaced:
        raise ApiStatus(404, f"{rtype.qualified} is not a namespaced resource")
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else ""
    allowed = (
        {""}
        | ({"status"} if rtype.status else set())
        | ({"eviction", "log", "exec"} if rtype.eviction else set())
    )
    if sub not in allowed:
        raise ApiStatus(404, f"{rtype.qualified} has no subresource {sub!r}")
    if rtype.namespaced and name is not None and namespace is None:
        raise ApiStatus(404, f"{rtype.qualified} {name!r}: a namespaced resource needs a namespace")
    return Target(rtype, namespace, name, sub)


def _manager(request: web.Request) -> str:
    manager = request.query.get("fieldManager")
    if manager:
        return manager
    agent = request.headers.get("User-Agent", "")
    return agent.split("/", 1)[0].strip() or "unknown"


def _dry_run(request: web.Request) -> bool:
    value = request.query.get("dryRun")
    if value not in (None, "", "All"):
        raise bad_request(f"dryRun must be 'All', not {value!r}")
    return bool(value)


def _selector(request: web.Request, rtype: ResourceType) -> Selector:
    return Selector(
        parse_label_selector(request.query.get("labelSelector")),
        parse_field_selector(request.query.get("fieldSelector"), rtype.field_labels),
    )


async def _body(request: web.Request, *, yaml_ok: bool = False) -> Any:
    content_type = request.headers.get("Content-Type", "")
    if "cbor" in content_type or ("protobuf" in content_type and yaml_ok):
        raise ApiStatus(
            415,
            f"the body of the request was in an unknown format ({content_type}); "
            "this server speaks JSON, YAML for apply patches, and protobuf for the kinds "
            "kubectl's generators create",
        )
    raw = await request.read()
    if not raw:
        return None
    if content_type.split(";")[0].strip() == protobuf.PROTOBUF:
        return protobuf.decode_body(raw)
    try:
        return json.loads(raw)
    except ValueError as error:
        if yaml_ok:
            try:
                return yaml.safe_load(raw)
            except yaml.YAMLError as yaml_error:
                raise bad_request(f"the body is neither JSON nor YAML: {yaml_error}") from None
        raise bad_request(f"the body is not valid JSON: {error}") from None


def _strict(request: web.Request, rtype: ResourceType, body: Any) -> Any:
    """``fieldValidation=Strict``: a field the schema does not declare is a 400 naming it
    (otherwise such fields are pruned). Built-in kinds without a schema here pass."""
    mode = request.query.get("fieldValidation", "")
    if mode not in ("", "Ignore", "Warn", "Strict"):
        raise bad_request(f'fieldValidation must be "Ignore", "Warn" or "Strict", not {mode!r}')
    if mode == "Strict" and rtype.schema is not None and isinstance(body, dict):
        unknown = unknown_fields(body, rtype.schema)
        if unknown:
            listed = ", ".join(f'unknown field "{u}"' for u in unknown)
            raise bad_request(
                f'{rtype.kind} in version "{rtype.version}" cannot be handled as a '
                f"{rtype.kind}: strict decoding error: {listed}"
            )
    return body


def _strict_builtin(request: web.Request, rtype: ResourceType, body: Any) -> Any:
    """``fieldValidation=Strict`` on create and update, for the built-in kinds that carry a
    schema here (``resource.k8s.io/v1``): ``kubectl apply`` of a claim with a mistyped field is
    refused as by a real server."""
    return body if rtype.custom else _strict(request, rtype, body)


def _versioned(rtype: ResourceType, obj: Obj) -> Obj:
    return (
        obj
        if obj.get("apiVersion") == rtype.api_version
        else {**obj, "apiVersion": rtype.api_version}
    )


def _object_response(
    request: web.Request, rtype: ResourceType, obj: Obj, status: int = 200
) -> web.Response:
    accept = request.headers.get("Accept", "")
    if tables.wants_table(accept):
        include = request.query.get("includeObject", "Metadata")
        body = tables.table(rtype, [obj], include, obj["metadata"]["resourceVersion"], time.time())
        return json_response(body, status)
    return json_response(_versioned(rtype, obj), status)


def _page(items: list[Obj], request: web.Request, rv: int) -> tuple[list[Obj], str | None, int]:
    limit_text, token = request.query.get("limit"), request.query.get("continue")
    if token:
        try:
            state = json.loads(base64.urlsafe_b64decode(token.encode()))
            start, rv = tuple(state["start"]), int(state["rv"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise bad_request(f"continue token {token!r} is not one this server issued") from None
        items = [
            o for o in items if (o["metadata"].get("namespace", ""), o["metadata"]["name"]) > start
        ]
    if not limit_text:
        return items, None, rv
    if not limit_text.isdigit():
        raise bad_request(f"limit must be a non-negative integer, not {limit_text!r}")
    limit = int(limit_text)
    if limit == 0 or len(items) <= limit:
        return items, None, rv
    last = items[limit - 1]["metadata"]
    state = {"rv": rv, "start": [last.get("namespace", ""), last["name"]]}
    return items[:limit], base64.urlsafe_b64encode(json.dumps(state).encode()).decode(), rv


async def collection(
    request: web.Request, cluster: Cluster, target: Target, bookmark_s: float
) -> web.StreamResponse:
    rtype = target.rtype
    if request.method == "GET":
        selector = _selector(request, rtype)
        if request.query.get("watch") in ("true", "1"):
            accept = request.headers.get("Accept", "")
            watch = WatchRequest(
                rtype,
                target.namespace,
                selector,
                request.query.get("resourceVersion", ""),
                parse_timeout(request.query.get("timeoutSeconds")),
                request.query.get("allowWatchBookmarks") in ("true", "1"),
                request.query.get("includeObject", "Metadata")
                if tables.wants_table(accept)
                else None,
                request.query.get("sendInitialEvents") in ("true", "1"),
            )
            return await WatchStream(cluster.store, watch, bookmark_s).serve(request)
        rv = cluster.store.rv
        items, token, rv = _page(
            cluster.list_objects(rtype, target.namespace, selector), request, rv
        )
        if tables.wants_table(request.headers.get("Accept", "")):
            include = request.query.get("includeObject", "Metadata")
            body = tables.table(rtype, items, include, str(rv), time.time())
        else:
            body = {
                "kind": f"{rtype.kind}List",
                "apiVersion": rtype.api_version,
                "metadata": {"resourceVersion": str(rv)},
                "items": [_versioned(rtype, o) for o in items],
            }
        if token:
            body["metadata"]["continue"] = token
        return json_response(body)
    if request.method == "POST":
        if target.namespace is None and rtype.namespaced:
            raise ApiStatus(405, f"create {rtype.qualified}: POST to a namespace's collection")
        obj = cluster.create(
            rtype,
            target.namespace or "",
            _strict_builtin(request, rtype, await _body(request)),
            _manager(request),
            dry_run=_dry_run(request),
        )
        return _object_response(request, rtype, obj, 201)
    if request.method == "DELETE":
        selector = _selector(request, rtype)
        options = await _body(request) or {}
        deleted = [
            cluster.delete(
                rtype,
                o["metadata"].get("namespace", ""),
                o["metadata"]["name"],
                propagation=_propagation(request, options),
                dry_run=_dry_run(request),
                grace_period=_grace_period(request, options),
            )
            for o in cluster.list_objects(rtype, target.namespace, selector)
        ]
        return json_response(
            {
                "kind": f"{rtype.kind}List",
                "apiVersion": rtype.api_version,
                "metadata": {"resourceVersion": str(cluster.store.rv)},
                "items": deleted,
            }
        )
    raise ApiStatus(405, f"{request.method} is not allowed on a collection")


def _grace_period(request: web.Request, options: Any) -> int | None:
    """``gracePeriodSeconds`` from the query or the DeleteOptions body (``None``: the pod's)."""
    raw = request.query.get("gracePeriodSeconds")
    if raw is None and isinstance(options, dict):
        raw = options.get("gracePeriodSeconds")
    if raw is None:
        return None
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise bad_request(f"gracePeriodSeconds {raw!r} is not an integer") from None


def _propagation(request: web.Request, options: Any) -> str:
    if not isinstance(options, dict):
        raise bad_request("DeleteOptions must be a JSON object")
    policy = request.query.get("propagationPolicy") or options.get("propagationPolicy")
    if policy is None:
        orphan = options.get("orphanDependents")
        policy = "Orphan" if orphan else "Background"
    if policy not in ("Background", "Foreground", "Orphan"):
        raise bad_request(
            f'propagationPolicy {policy!r} is not one of "Background", "Foreground", "Orphan"'
        )
    return str(policy)


async def _patch(request: web.Request, cluster: Cluster, target: Target) -> Obj:
    rtype, namespace, name = target.rtype, target.namespace or "", target.name or ""
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
    if content_type not in PATCH_TYPES:
        raise ApiStatus(
            415,
            f"the body of the request was in an unknown format - accepted media types "
            f"include: {', '.join(PATCH_TYPES)}",
        )
    manager, dry_run = _manager(request), _dry_run(request)
    if content_type == "application/apply-patch+yaml":
        if not request.query.get("fieldManager"):
            raise bad_request("PATCH with application/apply-patch+yaml must give a fieldManager")
        force = request.query.get("force") in ("true", "1")
        body = _strict(request, rtype, await _body(request, yaml_ok=True))
        return cluster.apply(
            rtype, namespace, name, body, manager, force, target.subresource, dry_run=dry_run
        )
    body = await _body(request)
    if content_type != "application/json-patch+json":
        _strict(request, rtype, body)
    if request.query.get("force"):
        raise bad_request("force is only allowed for apply patches")
    live = cluster.get(rtype, namespace, name)
    if content_type == "application/merge-patch+json":
        if not isinstance(body, dict):
            raise bad_request("a merge patch must be a JSON object")
        new = patching.merge_patch(live, body)
    elif content_type == "application/json-patch+json":
        new = patching.json_patch(live, body)
    else:
        if rtype.custom:
            raise ApiStatus(
                415,
                "strategic merge patch is not supported for custom resources; "
                "use a merge patch or server-side apply",
            )
        if not isinstance(body, dict):
            raise bad_request("a strategic merge patch must be a JSON object")
        new = patching.strategic_merge(live, body)
    if not isinstance(new, dict):
        raise bad_request("the patched object is not a JSON object")
    shaped = cluster.shape(rtype, namespace, new)
    return cluster.replace(rtype, live, shaped, manager, target.subresource, dry_run=dry_run)


async def item(request: web.Request, cluster: Cluster, target: Target) -> web.StreamResponse:
    rtype, namespace, name = target.rtype, target.namespace or "", target.name or ""
    method = request.method
    if target.subresource == "eviction":
        if method != "POST":
            raise ApiStatus(405, "eviction only allows POST")
        body = await _body(request)
        status = eviction.evict(cluster, rtype, namespace, name, body, _dry_run(request))
        return json_response(status, 201)
    if method == "GET":
        return _object_response(request, rtype, cluster.get(rtype, namespace, name))
    if method == "PUT":
        obj = cluster.update(
            rtype,
            namespace,
            name,
            _strict_builtin(request, rtype, await _body(request)),
            _manager(request),
            target.subresource,
            dry_run=_dry_run(request),
        )
        return _object_response(request, rtype, obj)
    if method == "PATCH":
        return _object_response(request, rtype, await _patch(request, cluster, target))
    if method == "DELETE" and not target.subresource:
        options = await _body(request) or {}
        pre = options.get("preconditions") or {} if isinstance(options, dict) else {}
        obj = cluster.delete(
            rtype,
            namespace,
            name,
            propagation=_propagation(request, options),
            uid=pre.get("uid"),
            resource_version=pre.get("resourceVersion"),
            dry_run=_dry_run(request),
            grace_period=_grace_period(request, options),
        )
        return _object_response(request, rtype, obj)
    raise ApiStatus(405, f"{method} is not allowed on {request.path}")
