"""Apply the ClusterPolicy CRD to a cluster (server-side apply): what the chart's pre-upgrade
hook runs, because Helm never upgrades the files in ``crds/``."""

from __future__ import annotations

from typing import Any

from lightkube import Client
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition

from gpu_operator.kube import apply
from gpu_operator.operator.crd import build_crd


def apply_crd(client: Client) -> str:
    """Create or update ``clusterpolicies.nvidia.com``; returns its resourceVersion."""
    crd = CustomResourceDefinition.from_dict(build_crd())
    applied = apply(client, crd)
    meta: Any = getattr(applied, "metadata", None)
    return str(meta.resourceVersion if meta else "")
