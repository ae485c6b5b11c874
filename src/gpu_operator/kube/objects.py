"""Single objects by name — get a node or pod, delete a pod, apply a ConfigMap, and get, create
or replace a namespaced custom resource — so agents need no lightkube imports of their own.

Every call retries what is worth retrying and fails as one ``KubeError`` (``kube.retry``);
"not found" is an answer (``None``/``False``), not an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from lightkube import ALL_NS, Client, codecs
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap, Node, Pod

from gpu_operator.kube.applying import apply
from gpu_operator.kube.retry import RetryPolicy, retry

KubeClient = Client
"""The client type agents hold (built by ``build_client``)."""

Body = dict[str, Any]


def _missing(error: ApiError) -> bool:
    return error.status.code == 404


def get_node(client: Client, name: str, *, policy: RetryPolicy = RetryPolicy()) -> Any:
    """The Node object (attributes as in the API: ``node.metadata.labels``); Events take it as
    their involved object."""
    return retry(lambda: client.get(Node, name), f"get node {name}", policy)


def list_nodes(
    client: Client, labels: Mapping[str, Any] | None = None, *, policy: RetryPolicy = RetryPolicy()
) -> list[Any]:
    """Nodes, optionally narrowed by a label selector (lightkube's ``labels=`` forms)."""
    return retry(lambda: list(client.list(Node, labels=dict(labels or {}))), "list nodes", policy)


def get_pod(
    client: Client, name: str, namespace: str, *, policy: RetryPolicy = RetryPolicy()
) -> Body | None:
    def attempt() -> Body | None:
        try:
            body: Body = client.get(Pod, name, namespace=namespace).to_dict()
            return body
        except ApiError as error:
            if _missing(error):
                return None
            raise

    return retry(attempt, f"get pod {namespace}/{name}", policy)


def delete_pod(
    client: Client,
    name: str,
    namespace: str,
    *,
    grace_period: int | None = None,
    policy: RetryPolicy = RetryPolicy(),
) -> bool:
    """Delete a pod; ``False`` when it was already gone."""

    def attempt() -> bool:
        try:
            client.delete(Pod, name, namespace=namespace, grace_period=grace_period)
            return True
        except ApiError as error:
            if _missing(error):
                return False
            raise

    return retry(attempt, f"delete pod {namespace}/{name}", policy)


def create_from_manifest(client: Client, manifest: Body) -> Body:
    """Create any built-in object from its manifest (``generateName`` allowed); returns it."""
    meta = manifest.get("metadata") or {}
    name = meta.get("name") or f"{meta.get('generateName', '')}*"
    created = retry(
        lambda: client.create(codecs.from_dict(manifest)),
        f"create {manifest.get('kind')} {meta.get('namespace', '')}/{name}".replace(" /", " "),
    )
    body: Body = created.to_dict()  # type: ignore[no-untyped-call]
    return body


def apply_config_map(
    client: Client, name: str, namespace: str, *, labels: Mapping[str, str], data: Mapping[str, str]
) -> None:
    """Server-side apply a ConfigMap under our field manager."""
    apply(
        client,
        ConfigMap(
            metadata=ObjectMeta(name=name, namespace=namespace, labels=dict(labels)),
            data=dict(data),
        ),
    )


@cache
def _resource(api_version: str, kind: str, plural: str) -> Any:
    group, _, version = api_version.rpartition("/")
    return create_namespaced_resource(group, version, kind, plural)


def get_namespaced(
    client: Client, api_version: str, kind: str, plural: str, name: str, namespace: str
) -> Body | None:
    resource = _resource(api_version, kind, plural)

    def attempt() -> Body | None:
        try:
            found = client.get(resource, name, namespace=namespace)
        except ApiError as error:
            if _missing(error):
                return None
            raise
        return dict(found)

    return retry(attempt, f"get {kind} {namespace}/{name}")


def create_namespaced(client: Client, api_version: str, kind: str, plural: str, body: Body) -> None:
    resource = _resource(api_version, kind, plural)
    meta = body.get("metadata") or {}
    retry(
        lambda: client.create(resource.from_dict(body)),
        f"create {kind} {meta.get('namespace')}/{meta.get('name')}",
    )


def replace_namespaced(
    client: Client, api_version: str, kind: str, plural: str, body: Body
) -> None:
    """Replace an object; ``body.metadata.resourceVersion`` guards against lost updates (409)."""
    resource = _resource(api_version, kind, plural)
    meta = body.get("metadata") or {}
    retry(
        lambda: client.replace(resource.from_dict(body)),
        f"replace {kind} {meta.get('namespace')}/{meta.get('name')}",
    )


def list_namespaced(
    client: Client, api_version: str, kind: str, plural: str, namespace: str | None
) -> list[Body]:
    """Every object of a namespaced kind in ``namespace`` (``None``: in all namespaces)."""
    resource = _resource(api_version, kind, plural)
    where = ALL_NS if namespace is None else namespace
    return retry(
        lambda: [dict(o) for o in client.list(resource, namespace=where)],
        f"list {kind} in {namespace or 'all namespaces'}",
    )
