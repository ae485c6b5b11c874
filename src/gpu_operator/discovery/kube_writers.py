"""The Kubernetes writers: the ``NodeFeature`` object NFD turns into node labels (upstream's
default), and, ours for clusters without NFD, a direct node-label writer.

NodeFeature (``nfd.k8s-sigs.io/v1alpha1``): ``nvidia-features-for-<node>`` in the settings'
namespace, labelled ``nfd.node.kubernetes.io/node-name=<node>``, ``spec.labels`` = the labels,
``spec.features`` empty; owned by the feature-discovery DaemonSet (controller) and Pod when
``POD_NAME`` is set, so it goes away with them. Created when missing; replaced only when it
differs (zero writes at steady state — which is why ``gfd.timestamp`` is best left out with
``--no-timestamp`` in this mode).

Node labels: one merge patch of just the keys that differ. The writer owns the keys it wrote
last time (recorded in the node annotation ``nvidia.com/gpu-operator.feature-discovery.labels``)
and the keys it writes now; it removes owned keys that are no longer produced and never touches
any other key, ``nvidia.com/`` or not (the operator's ``gpu.present``, the MIG manager's
``mig.config.state``, a user's own labels).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gpu_operator.errors import ConfigError
from gpu_operator.kube import (
    KubeClient,
    create_namespaced,
    get_namespaced,
    get_node,
    get_pod,
    patch_node_labels,
    replace_namespaced,
)

NODE_NAME_LABEL = "nfd.node.kubernetes.io/node-name"
OWNED_KEYS_ANNOTATION = "nvidia.com/gpu-operator.feature-discovery.labels"
NODE_FEATURE = ("nfd.k8s-sigs.io/v1alpha1", "NodeFeature", "nodefeatures")


def node_feature_name(node: str) -> str:
    return f"nvidia-features-for-{node}"


def owner_references(pod: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The DaemonSet that controls ``pod`` (as controller), then the pod itself."""
    if pod is None:
        return []
    meta = pod.get("metadata") or {}
    refs: list[dict[str, Any]] = [
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "name": owner["name"],
            "uid": owner["uid"],
            "controller": True,
        }
        for owner in meta.get("ownerReferences") or []
        if owner.get("kind") == "DaemonSet"
    ]
    refs.append({"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"]})
    return refs


def node_feature_body(
    node: str, namespace: str, labels: Mapping[str, str], owners: list[dict[str, Any]]
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": node_feature_name(node),
        "namespace": namespace,
        "labels": {NODE_NAME_LABEL: node},
    }
    if owners:
        metadata["ownerReferences"] = owners
    return {
        "apiVersion": "nfd.k8s-sigs.io/v1alpha1",
        "kind": "NodeFeature",
        "metadata": metadata,
        "spec": {"features": {}, "labels": dict(labels)},
    }


def _normal_spec(spec: Mapping[str, Any] | None) -> tuple[dict[str, str], bool]:
    spec = spec or {}
    features = spec.get("features") or {}
    return dict(spec.get("labels") or {}), not any(features.values())


def differs(observed: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Whether ``observed`` must be replaced: its labels, owners or spec are not ``desired``'s
    (semantically: an empty ``features`` equals a missing one)."""
    seen, want = observed.get("metadata") or {}, desired["metadata"]
    if (seen.get("labels") or {}).get(NODE_NAME_LABEL) != want["labels"][NODE_NAME_LABEL]:
        return True
    owners = [
        {k: r.get(k) for k in ("apiVersion", "kind", "name", "uid", "controller") if k in r}
        for r in seen.get("ownerReferences") or []
    ]
    if owners != want.get("ownerReferences", []):
        return True
    return _normal_spec(observed.get("spec")) != _normal_spec(desired["spec"])


class NodeFeatureWriter:
    """Creates or updates ``nvidia-features-for-<node>``; returns whether it wrote."""

    def __init__(
        self, client: KubeClient, node: str, namespace: str = "default", pod_name: str | None = None
    ):
        if not node:
            raise ConfigError("NODE_NAME: the NodeFeature writer needs the node's name")
        self.client, self.node, self.namespace, self.pod_name = client, node, namespace, pod_name
        self._owners: list[dict[str, Any]] | None = None

    def _owner_references(self) -> list[dict[str, Any]]:
        if self._owners is None:
            pod = None
            if self.pod_name:
                pod = get_pod(self.client, self.pod_name, self.namespace)
            self._owners = owner_references(pod)
        return self._owners

    def write(self, labels: Mapping[str, str]) -> bool:
        desired = node_feature_body(self.node, self.namespace, labels, self._owner_references())
        name = desired["metadata"]["name"]

        observed = get_namespaced(self.client, *NODE_FEATURE, name, self.namespace)
        if observed is None:
            create_namespaced(self.client, *NODE_FEATURE, desired)
            return True
        if not differs(observed, desired):
            return False
        body = dict(desired)
        body["metadata"] = {
            **desired["metadata"],
            "resourceVersion": (observed.get("metadata") or {}).get("resourceVersion"),
        }
        replace_namespaced(self.client, *NODE_FEATURE, body)
        return True

    def describe(self) -> str:
        return f"NodeFeature {self.namespace}/{node_feature_name(self.node)}"


def _owned_keys(annotations: Mapping[str, str] | None) -> set[str]:
    text = (annotations or {}).get(OWNED_KEYS_ANNOTATION, "")
    return {k for k in text.split(",") if k}


class NodeLabelWriter:
    """Patches the node's labels directly, only the keys it owns (see the module docstring)."""

    def __init__(self, client: KubeClient, node: str):
        if not node:
            raise ConfigError("NODE_NAME: the node-label writer needs the node's name")
        self.client, self.node = client, node

    def _annotate(self, keys: set[str]) -> None:
        patch_node_labels(
            self.client,
            self.node,
            {OWNED_KEYS_ANNOTATION: ",".join(sorted(keys))},
            lambda key: key == OWNED_KEYS_ANNOTATION,
            field="annotations",
        )

    def write(self, labels: Mapping[str, str]) -> bool:
        foreign = sorted(k for k in labels if not k.startswith("nvidia.com/"))
        if foreign:
            raise ConfigError(f"node-label writer: refusing to write non-nvidia.com keys {foreign}")
        node = get_node(self.client, self.node)
        previous = _owned_keys(node.metadata.annotations if node.metadata else None)
        desired = set(labels)
        # Record the union first: a crash between the writes never forgets a key we wrote.
        self._annotate(previous | desired)
        owned = previous | desired
        patch = patch_node_labels(self.client, self.node, labels, lambda key: key in owned)
        self._annotate(desired)
        return bool(patch)

    def describe(self) -> str:
        return f"labels of node {self.node}"
