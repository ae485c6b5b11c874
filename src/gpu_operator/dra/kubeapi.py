"""The DRA driver's API shell, through ``gpu_operator.kube``: read a ResourceClaim (the claim
source of ``prepare``), and keep this node's ResourceSlice as the core says — created when
missing, replaced when its devices or taints differ (pool generation bumped), untouched when
they don't, and deleted with every other slice of our driver on this node on a clean exit.
A pool of several slices (dynamic MIG) is written whole (``publish_pool``): every slice at one
new generation, slices it no longer has deleted."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from gpu_operator.dra import DRIVER_NAME
from gpu_operator.dra.slices import (
    API_VERSION,
    KIND,
    generation_of,
    pool_is_current,
    same_content,
    with_generation,
)
from gpu_operator.kube import KubeClient, get_namespaced
from gpu_operator.kube.cluster_objects import (
    create_cluster_object,
    delete_cluster_object,
    get_cluster_object,
    list_cluster_objects,
    replace_cluster_object,
)

log = logging.getLogger(__name__)
PLURAL = "resourceslices"


class ClaimReader:
    """``(namespace, name) → ResourceClaim`` from the API (``prepare.ClaimSource``)."""

    def __init__(self, client: KubeClient):
        self._client = client

    def __call__(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return get_namespaced(
            self._client, API_VERSION, "ResourceClaim", "resourceclaims", name, namespace
        )


class SlicePublisher:
    def __init__(self, client: KubeClient):
        self._client = client
        self.writes = 0
        """Creates and replaces so far (a steady node makes none)."""

    def publish(self, desired: dict[str, Any]) -> bool:
        """Make the stored slice say what ``desired`` says; whether anything was written."""
        name = desired["metadata"]["name"]
        stored = get_cluster_object(self._client, API_VERSION, KIND, PLURAL, name)
        if same_content(stored, desired):
            return False
        body = dict(desired)
        if stored is None:
            create_cluster_object(self._client, API_VERSION, KIND, PLURAL, body)
        else:
            pool = dict(body["spec"]["pool"])
            old = ((stored.get("spec") or {}).get("pool") or {}).get("generation") or 0
            pool["generation"] = max(int(pool["generation"]), int(old) + 1)
            body = {
                **body,
                "metadata": {
                    **body["metadata"],
                    "resourceVersion": stored["metadata"].get("resourceVersion"),
                },
                "spec": {**body["spec"], "pool": pool},
            }
            replace_cluster_object(self._client, API_VERSION, KIND, PLURAL, body)
        self.writes += 1
        log.info("published ResourceSlice %s (%d devices)", name, len(body["spec"]["devices"]))
        return True

    def node_slices(self, node: str) -> dict[str, dict[str, Any]]:
        """Our driver's slices of ``node``, by name."""
        out = {}
        for found in list_cluster_objects(self._client, API_VERSION, KIND, PLURAL):
            spec = found.get("spec") or {}
            if spec.get("driver") == DRIVER_NAME and spec.get("nodeName") == node:
                out[found["metadata"]["name"]] = found
        return out

    def publish_pool(self, node: str, desired: list[dict[str, Any]]) -> bool:
        """Make ``node``'s slices exactly ``desired`` (each at one generation, past every stored
        one); whether anything was written."""
        stored = self.node_slices(node)
        if pool_is_current(stored, desired):
            return False
        generation = max(
            [generation_of(d) for d in desired] + [generation_of(s) + 1 for s in stored.values()]
        )
        for body in desired:
            body = with_generation(body, generation)
            old = stored.get(body["metadata"]["name"])
            if old is None:
                create_cluster_object(self._client, API_VERSION, KIND, PLURAL, body)
            else:
                body["metadata"]["resourceVersion"] = old["metadata"].get("resourceVersion")
                replace_cluster_object(self._client, API_VERSION, KIND, PLURAL, body)
            self.writes += 1
        names = {d["metadata"]["name"] for d in desired}
        for name in sorted(set(stored) - names):
            delete_cluster_object(self._client, API_VERSION, KIND, PLURAL, name)
        log.info(
            "published %d ResourceSlice(s) of %s at generation %d (%d devices)",
            len(desired),
            node,
            generation,
            sum(len(d["spec"].get("devices") or []) for d in desired),
        )
        return True

    def delete_node_slices(self, node: str) -> int:
        """Delete every slice of our driver on ``node``; how many were deleted."""
        deleted = 0
        for found in list_cluster_objects(self._client, API_VERSION, KIND, PLURAL):
            spec = found.get("spec") or {}
            if spec.get("driver") == DRIVER_NAME and spec.get("nodeName") == node:
                deleted += delete_cluster_object(
                    self._client, API_VERSION, KIND, PLURAL, found["metadata"]["name"]
                )
        return deleted
