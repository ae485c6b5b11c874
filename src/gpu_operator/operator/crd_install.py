"""Apply the CRDs (ClusterPolicy, NVIDIADriver) to a cluster (server-side apply): what the
chart's pre-upgrade hook runs, because Helm never upgrades the files in ``crds/``."""

from __future__ import annotations

from typing import Any

from lightkube import Client
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition

from gpu_operator.kube import apply
from gpu_operator.operator import nvidiadriver_crd
from gpu_operator.operator.crd import build_crd


def _apply(client: Client, body: dict[str, Any]) -> str:
    applied = apply(client, CustomResourceDefinition.from_dict(body))
    meta: Any = getattr(applied, "metadata", None)
    return str(meta.resourceVersion if meta else "")


def apply_crd(client: Client) -> str:
    """Create or update ``clusterpolicies.nvidia.com``; returns its resourceVersion."""
    return _apply(client, build_crd())


def apply_crds(client: Client) -> list[tuple[str, str]]:
    """Create or update every CRD of the chart: (name, resourceVersion) each."""
    return [
        (body["metadata"]["name"], _apply(client, body))
        for body in (build_crd(), nvidiadriver_crd.build_crd())
    ]
