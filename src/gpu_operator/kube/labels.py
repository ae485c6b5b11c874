"""Node label (and annotation) writes that never clobber other writers: a pure plan of the keys
we own that differ, sent as a JSON merge patch of just those keys — nothing when nothing differs."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from lightkube import AsyncClient, Client
from lightkube.resources.core_v1 import Node
from lightkube.types import PatchType

from gpu_operator.errors import ConfigError
from gpu_operator.kube.retry import RetryPolicy, aretry, retry

Owns = Callable[[str], bool]
MapPatch = dict[str, str | None]


def owned_by_prefixes(*prefixes: str) -> Owns:
    """Ownership by key prefix, e.g. ``owned_by_prefixes("nvidia.com/")``."""
    if not prefixes:
        raise ConfigError("owned_by_prefixes: give at least one prefix")
    return lambda key: key.startswith(prefixes)


def plan_map_patch(
    observed: Mapping[str, str] | None, desired: Mapping[str, str], owns: Owns
) -> MapPatch:
    """The merge patch that makes the owned keys of ``observed`` equal ``desired``.

    Keys we own that are not desired are removed (``None``); keys we do not own are never in
    the patch. Desiring a key we do not own is a ``ConfigError`` naming it.
    """
    foreign = sorted(k for k in desired if not owns(k))
    if foreign:
        raise ConfigError(f"refusing to write keys this writer does not own: {', '.join(foreign)}")
    current = observed or {}
    patch: MapPatch = {k: v for k, v in desired.items() if current.get(k) != v}
    patch.update({k: None for k in current if owns(k) and k not in desired})
    return patch


def _body(field: str, patch: MapPatch) -> dict[str, object]:
    return {"metadata": {field: patch}}


def patch_node_labels(
    client: Client,
    node: str,
    desired: Mapping[str, str],
    owns: Owns,
    *,
    field: str = "labels",
    policy: RetryPolicy = RetryPolicy(),
) -> MapPatch:
    """Bring the owned labels (or annotations, ``field="annotations"``) of ``node`` to
    ``desired``; returns the patch sent (empty: no write was needed)."""

    def attempt() -> MapPatch:
        observed = getattr(client.get(Node, node).metadata, field, None)
        patch = plan_map_patch(observed, desired, owns)
        if patch:
            client.patch(Node, node, _body(field, patch), patch_type=PatchType.MERGE)
        return patch

    return retry(attempt, f"patch {field} of node {node}", policy)


async def apatch_node_labels(
    client: AsyncClient,
    node: str,
    desired: Mapping[str, str],
    owns: Owns,
    *,
    field: str = "labels",
    policy: RetryPolicy = RetryPolicy(),
) -> MapPatch:
    """``patch_node_labels`` for asyncio clients."""

    async def attempt() -> MapPatch:
        observed = getattr((await client.get(Node, node)).metadata, field, None)
        patch = plan_map_patch(observed, desired, owns)
        if patch:
            await client.patch(Node, node, _body(field, patch), patch_type=PatchType.MERGE)
        return patch

    return await aretry(attempt, f"patch {field} of node {node}", policy)
