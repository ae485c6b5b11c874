"""Pods on one node: a list by the ``spec.nodeName`` field selector, optionally narrowed by
labels — how agents find the workloads using their node's GPUs."""

from __future__ import annotations

from collections.abc import Mapping

from lightkube import ALL_NS, AsyncClient, Client
from lightkube.resources.core_v1 import Pod

from gpu_operator.kube.retry import RetryPolicy, aretry, retry


def pods_on_node(
    client: Client,
    node: str,
    *,
    namespace: str = ALL_NS,
    labels: Mapping[str, str] | None = None,
    policy: RetryPolicy = RetryPolicy(),
) -> list[Pod]:
    """Every pod scheduled on ``node`` (all namespaces unless ``namespace``)."""
    return retry(
        lambda: list(
            client.list(
                Pod, namespace=namespace, fields={"spec.nodeName": node}, labels=dict(labels or {})
            )
        ),
        f"list pods on node {node}",
        policy,
    )


async def apods_on_node(
    client: AsyncClient,
    node: str,
    *,
    namespace: str = ALL_NS,
    labels: Mapping[str, str] | None = None,
    policy: RetryPolicy = RetryPolicy(),
) -> list[Pod]:
    """``pods_on_node`` for asyncio clients."""

    async def attempt() -> list[Pod]:
        listing = client.list(
            Pod, namespace=namespace, fields={"spec.nodeName": node}, labels=dict(labels or {})
        )
        return [pod async for pod in listing]

    return await aretry(attempt, f"list pods on node {node}", policy)
