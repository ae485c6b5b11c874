"""The one API lookup of the exporter: a pod's UID and labels, for
``--kubernetes-enable-pod-uid`` and ``--kubernetes-enable-pod-labels`` (dcgm-exporter reads
them from the API server too; its ServiceAccount needs ``get`` on pods). The Kubernetes client
is imported here, on first use, so an exporter without these flags loads none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ApiPodMeta:
    """A ``PodMeta`` (call it with namespace and pod name) over the API server ``kube`` names
    (``KubeSettings``; default: in-cluster, ``$KUBECONFIG``, ``~/.kube/config``). One try per
    lookup: the next refresh tries again. ``close()`` when done."""

    def __init__(self, kube: Any = None):
        from gpu_operator.kube import KubeSettings, RetryPolicy, build_client

        self._client = build_client(kube if kube is not None else KubeSettings())
        self._once = RetryPolicy(attempts=1)

    def __call__(self, namespace: str, name: str) -> tuple[str, Mapping[str, str]] | None:
        from gpu_operator.kube import get_pod

        body = get_pod(self._client, name, namespace, policy=self._once)
        if body is None:
            return None
        metadata = body.get("metadata") or {}
        return str(metadata.get("uid") or ""), dict(metadata.get("labels") or {})

    def close(self) -> None:
        self._client.close()
