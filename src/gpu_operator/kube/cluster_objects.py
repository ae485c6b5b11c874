"""Cluster-scoped objects of any API group by name — get, list, create, replace, delete — as
plain dicts, for agents that write objects lightkube has no model for (the DRA driver's
``resource.k8s.io/v1`` ResourceSlices). Every call retries what is worth retrying and fails as
one ``KubeError``; "not found" is an answer (``None``/``False``), not an error."""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_global_resource

from gpu_operator.kube.retry import retry

Body = dict[str, Any]


@cache
def _resource(api_version: str, kind: str, plural: str) -> Any:
    group, _, version = api_version.rpartition("/")
    return create_global_resource(group, version, kind, plural)


def get_cluster_object(
    client: Client, api_version: str, kind: str, plural: str, name: str
) -> Body | None:
    resource = _resource(api_version, kind, plural)

    def attempt() -> Body | None:
        try:
            return dict(client.get(resource, name))
        except ApiError as error:
            if error.status.code == 404:
                return None
            raise

    return retry(attempt, f"get {kind} {name}")


def list_cluster_objects(client: Client, api_version: str, kind: str, plural: str) -> list[Body]:
    resource = _resource(api_version, kind, plural)
    return retry(lambda: [dict(o) for o in client.list(resource)], f"list {kind}")


def create_cluster_object(
    client: Client, api_version: str, kind: str, plural: str, body: Body
) -> None:
    _write(client, "create", _resource(api_version, kind, plural), kind, body)


def replace_cluster_object(
    client: Client, api_version: str, kind: str, plural: str, body: Body
) -> None:
    """Replace; ``body.metadata.resourceVersion`` guards against lost updates (409)."""
    _write(client, "replace", _resource(api_version, kind, plural), kind, body)


def _write(
    client: Client, verb: Literal["create", "replace"], resource: Any, kind: str, body: Body
) -> None:
    """``client.create`` or ``client.replace`` of ``body``, retried."""
    name = (body.get("metadata") or {}).get("name")
    method = client.create if verb == "create" else client.replace
    retry(lambda: method(resource.from_dict(body)), f"{verb} {kind} {name}")


def delete_cluster_object(
    client: Client, api_version: str, kind: str, plural: str, name: str
) -> bool:
    """Delete; ``False`` when it was already gone."""
    resource = _resource(api_version, kind, plural)

    def attempt() -> bool:
        try:
            client.delete(resource, name)
            return True
        except ApiError as error:
            if error.status.code == 404:
                return False
            raise

    return retry(attempt, f"delete {kind} {name}")
