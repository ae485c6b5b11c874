"""The part of Node Feature Discovery the sandbox plays (nfd-master): labels from each node's
``NodeFeature`` objects (``nfd.k8s-sigs.io/v1alpha1``, what gpu-feature-discovery writes by
default) and from its local feature files (``features.d``) go onto the Node; a label whose
source stopped saying it is removed. Only the keys NFD set are ever touched."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gpu_operator.names import NFD_PREFIX
from gpu_operator.sandbox.rest import Rest

Obj = dict[str, Any]
NODE_NAME_LABEL = "nfd.node.kubernetes.io/node-name"
OWNED_ANNOTATION = "nfd.node.kubernetes.io/feature-labels"
NODE_FEATURES = "nfd.k8s-sigs.io/v1alpha1/nodefeatures"

NODE_FEATURE_CRD: Obj = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "nodefeatures.nfd.k8s-sigs.io"},
    "spec": {
        "group": "nfd.k8s-sigs.io",
        "scope": "Namespaced",
        "names": {"kind": "NodeFeature", "plural": "nodefeatures", "singular": "nodefeature"},
        "versions": [
            {
                "name": "v1alpha1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
            }
        ],
    },
}


def read_feature_files(directory: Path) -> dict[str, str]:
    """``key=value`` lines of every file in NFD's ``features.d`` (comments and blanks skipped;
    a key without a prefix gets ``feature.node.kubernetes.io/``)."""
    labels: dict[str, str] = {}
    if not directory.is_dir():
        return labels
    for path in sorted(
        p for p in directory.iterdir() if p.is_file() and not p.name.startswith(".")
    ):
        try:
            text = path.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, value = line.split("=", 1)
            if "/" not in key:
                key = f"{NFD_PREFIX}{key}"
            labels[key] = value
    return labels


def feature_labels(node: str, features: list[Obj], files: dict[str, str]) -> dict[str, str]:
    labels = dict(files)
    for feature in features:
        if (feature["metadata"].get("labels") or {}).get(NODE_NAME_LABEL) == node:
            labels.update((feature.get("spec") or {}).get("labels") or {})
    return labels


def label_patch(node: Obj, wanted: dict[str, str]) -> Obj | None:
    """The merge patch that makes the node carry ``wanted`` (and drops keys NFD set before and
    no longer wants); ``None`` when nothing changes."""
    meta = node["metadata"]
    current = meta.get("labels") or {}
    before = set(json.loads((meta.get("annotations") or {}).get(OWNED_ANNOTATION, "[]")))
    changes: dict[str, str | None] = {k: v for k, v in wanted.items() if current.get(k) != v}
    changes.update({k: None for k in before - set(wanted) if k in current})
    owned = json.dumps(sorted(wanted))
    if not changes and (meta.get("annotations") or {}).get(OWNED_ANNOTATION) == owned:
        return None
    return {"metadata": {"labels": changes, "annotations": {OWNED_ANNOTATION: owned}}}


def sync_node(rest: Rest, node: Obj, features: list[Obj], root: Path) -> None:
    files = read_feature_files(root / "etc/kubernetes/node-feature-discovery/features.d")
    patch = label_patch(node, feature_labels(node["metadata"]["name"], features, files))
    if patch is not None:
        rest.patch("nodes", node["metadata"]["name"], patch)
