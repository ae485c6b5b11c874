"""Discovery documents: ``/version``, ``/api``, ``/apis``, and one ``APIResourceList`` per
group/version, built from the registry so a new CRD shows up at once. ``/version`` says
Kubernetes 1.37 unless ``GPU_OPERATOR_SANDBOX_KUBERNETES_VERSION`` (``1.33``) names another, read
per request (to try what an older cluster makes of a policy, e.g. the DRA driver's refusal)."""

from __future__ import annotations

import os
import re
from typing import Any

from gpu_operator.errors import ConfigError
from gpu_operator.sandbox.apiserver.resources import ALL_VERBS, Registry, ResourceType

KUBE_VERSION = {"major": "1", "minor": "37"}
VERSION_ENV = "GPU_OPERATOR_SANDBOX_KUBERNETES_VERSION"


def served_version() -> dict[str, str]:
    """``KUBE_VERSION``, or the ``MAJOR.MINOR`` of ``$GPU_OPERATOR_SANDBOX_KUBERNETES_VERSION``
    (a value that is not a version is a ``ConfigError`` naming the variable)."""
    text = os.environ.get(VERSION_ENV, "").strip()
    if not text:
        return dict(KUBE_VERSION)
    match = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.\d+)?", text)
    if not match:
        raise ConfigError(f"{VERSION_ENV}={text!r}: not a Kubernetes version (e.g. 1.33)")
    return {"major": match.group(1), "minor": match.group(2)}


def version_info() -> dict[str, Any]:
    version = served_version()
    return {
        **version,
        "gitVersion": f"v{version['major']}.{version['minor']}.0-gpu-operator-sandbox",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def core_versions(address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
    }


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def group_list(registry: Registry) -> dict[str, Any]:
    groups = [_group(g, v) for g, v in registry.group_versions().items() if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def group(registry: Registry, name: str) -> dict[str, Any] | None:
    versions = registry.group_versions().get(name)
    if not name or not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, versions)}


def _entry(rtype: ResourceType) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": rtype.plural,
        "singularName": rtype.singular,
        "namespaced": rtype.namespaced,
        "kind": rtype.kind,
        "verbs": list(ALL_VERBS),
    }
    if rtype.short_names:
        entry["shortNames"] = list(rtype.short_names)
    if rtype.categories:
        entry["categories"] = list(rtype.categories)
    return entry


def resource_list(registry: Registry, group_name: str, version: str) -> dict[str, Any] | None:
    types = registry.in_group_version(group_name, version)
    if not types:
        return None
    resources: list[dict[str, Any]] = []
    for rtype in sorted(types, key=lambda t: t.plural):
        resources.append(_entry(rtype))
        if rtype.status:
            resources.append(
                {
                    "name": f"{rtype.plural}/status",
                    "singularName": "",
                    "namespaced": rtype.namespaced,
                    "kind": rtype.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
        if rtype.eviction:
            for sub, verbs in (("exec", ["create", "get"]), ("log", ["get"])):
                resources.append(
                    {
                        "name": f"{rtype.plural}/{sub}",
                        "singularName": "",
                        "namespaced": rtype.namespaced,
                        "kind": "PodExecOptions" if sub == "exec" else rtype.kind,
                        "verbs": verbs,
                    }
                )
            resources.append(
                {
                    "name": f"{rtype.plural}/eviction",
                    "singularName": "",
                    "namespaced": rtype.namespaced,
                    "group": "policy",
                    "version": "v1",
                    "kind": "Eviction",
                    "verbs": ["create"],
                }
            )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group_name}/{version}" if group_name else version,
        "resources": resources,
    }
