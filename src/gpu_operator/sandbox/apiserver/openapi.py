"""A minimal OpenAPI v3 discovery (``/openapi/v3`` and one document per group/version): enough
for clients to see that PATCH takes ``fieldValidation``, ``fieldManager``, ``force`` and
``dryRun`` (kubectl checks this before ``apply`` and ``create -f``), plus each CRD's schema.
Built-in kinds get no schemas, so ``kubectl explain`` has nothing to show for them."""

from __future__ import annotations

import hashlib
from typing import Any

from gpu_operator.sandbox.apiserver.discovery import KUBE_VERSION
from gpu_operator.sandbox.apiserver.resources import Registry, ResourceType

_QUERY = ("fieldValidation", "fieldManager", "force", "dryRun")


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def root(registry: Registry) -> dict[str, Any]:
    paths = {}
    for group, versions in registry.group_versions().items():
        for version in versions:
            path = _gv_path(group, version)
            digest = (
                hashlib.sha256(
                    repr(
                        sorted(t.plural for t in registry.in_group_version(group, version))
                    ).encode()
                )
                .hexdigest()[:16]
                .upper()
            )
            paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return {"paths": paths}


def _operation(rtype: ResourceType, verb: str) -> dict[str, Any]:
    return {
        "operationId": f"{verb}{rtype.kind}",
        "parameters": [
            {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
            for name in _QUERY
        ],
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": verb,
        "x-kubernetes-group-version-kind": {
            "group": rtype.group,
            "version": rtype.version,
            "kind": rtype.kind,
        },
    }


def group_version(registry: Registry, gv_path: str) -> dict[str, Any] | None:
    parts = gv_path.split("/")
    if parts[:1] == ["api"] and len(parts) == 2:
        group, version = "", parts[1]
    elif parts[:1] == ["apis"] and len(parts) == 3:
        group, version = parts[1], parts[2]
    else:
        return None
    types = registry.in_group_version(group, version)
    if not types:
        return None
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for rtype in types:
        base = f"/{_gv_path(group, version)}"
        if rtype.namespaced:
            base += "/namespaces/{namespace}"
        paths[f"{base}/{rtype.plural}/{{name}}"] = {
            "get": _operation(rtype, "get"),
            "put": _operation(rtype, "put"),
            "patch": _operation(rtype, "patch"),
            "delete": _operation(rtype, "delete"),
        }
        paths[f"{base}/{rtype.plural}"] = {
            "get": _operation(rtype, "list"),
            "post": _operation(rtype, "post"),
        }
        if rtype.schema is not None:
            reversed_group = ".".join(reversed(rtype.group.split(".")))
            schemas[f"{reversed_group}.{rtype.version}.{rtype.kind}"] = {
                **rtype.schema,
                "x-kubernetes-group-version-kind": [
                    {"group": rtype.group, "version": rtype.version, "kind": rtype.kind}
                ],
            }
    return {
        "openapi": "3.0.0",
        "info": {
            "title": "Kubernetes",
            "version": f"v{KUBE_VERSION['major']}.{KUBE_VERSION['minor']}.0",
        },
        "paths": paths,
        "components": {"schemas": schemas},
    }
