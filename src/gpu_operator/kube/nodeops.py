"""Node operations of the driver lifecycle: cordon/uncordon, eviction, and plain-dict lists of
nodes, pods and DaemonSets for the pure upgrade and driver-manager cores. Each retries and fails
as one ``KubeError`` naming the verb and object (``kube.retry``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lightkube import ALL_NS, Client
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import DaemonSet
from lightkube.resources.core_v1 import Node, Pod
from lightkube.types import PatchType

from gpu_operator.kube.retry import RetryPolicy, retry

Body = dict[str, Any]


def _dicts(objs: Any) -> list[Body]:
    return [o.to_dict() for o in objs]


def node_dicts(client: Client, *, policy: RetryPolicy = RetryPolicy()) -> list[Body]:
    return retry(lambda: _dicts(client.list(Node)), "list nodes", policy)


def pod_dicts(
    client: Client,
    *,
    namespace: str = ALL_NS,
    node: str | None = None,
    labels: Mapping[str, Any] | None = None,
    policy: RetryPolicy = RetryPolicy(),
) -> list[Body]:
    fields: dict[str, Any] = {"spec.nodeName": node} if node else {}
    where = f" on node {node}" if node else ""
    return retry(
        lambda: _dicts(
            client.list(Pod, namespace=namespace, fields=fields, labels=dict(labels or {}))
        ),
        f"list pods{where}",
        policy,
    )


def daemonset_dicts(
    client: Client, namespace: str, *, policy: RetryPolicy = RetryPolicy()
) -> list[Body]:
    return retry(
        lambda: _dicts(client.list(DaemonSet, namespace=namespace)),
        f"list daemonsets in {namespace}",
        policy,
    )


def set_unschedulable(
    client: Client, node: str, unschedulable: bool, *, policy: RetryPolicy = RetryPolicy()
) -> None:
    """Cordon (``True``) or uncordon a node, as ``kubectl cordon`` does."""
    verb = "cordon" if unschedulable else "uncordon"
    retry(
        lambda: client.patch(
            Node, node, {"spec": {"unschedulable": unschedulable}}, patch_type=PatchType.MERGE
        ),
        f"{verb} node {node}",
        policy,
    )


def evict_pod(
    client: Client, name: str, namespace: str, *, policy: RetryPolicy = RetryPolicy()
) -> bool:
    """Evict through the eviction API (a PodDisruptionBudget may refuse: 429, retried);
    ``False`` when the pod is already gone."""

    def attempt() -> bool:
        try:
            client.create(
                Pod.Eviction(metadata=ObjectMeta(name=name, namespace=namespace)),
                name=name,
                namespace=namespace,
            )
            return True
        except ApiError as error:
            if error.status.code == 404:
                return False
            raise

    return retry(attempt, f"evict pod {namespace}/{name}", policy)
