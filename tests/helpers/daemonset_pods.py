"""The pod a DaemonSet controller stand-in creates on a node: named after the DaemonSet, node and
template generation, labelled ``app`` and ``pod-template-generation`` as the operator reads
them, owned by the DaemonSet, and already Running and Ready."""

from __future__ import annotations

from typing import Any

from lightkube.models.meta_v1 import ObjectMeta


def ready_pod(daemonset: ObjectMeta, node: str, namespace: str) -> dict[str, Any]:
    """The body of the DaemonSet's running, ready pod on ``node`` (for ``Pod.from_dict``)."""
    app = str(daemonset.name)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{app}-{node}-g{daemonset.generation}",
            "namespace": namespace,
            "labels": {"app": app, "pod-template-generation": str(daemonset.generation)},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "DaemonSet",
                    "name": app,
                    "uid": daemonset.uid,
                    "controller": True,
                }
            ],
        },
        "spec": {"nodeName": node, "containers": [{"name": "main", "image": "i"}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }
