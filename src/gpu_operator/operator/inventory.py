"""Every image a policy pulls for a set of node OSes (and kernels, for precompiled drivers), and
the commands that mirror them into a private registry — so an air-gapped install knows before it
starts which images must exist (the driver tag per OS pool included)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gpu_operator.driver.images import NodeOs
from gpu_operator.nfd import GPU_PCI_LABELS, KERNEL_LABEL, OS_ID_LABEL, OS_VERSION_LABEL
from gpu_operator.operator.cluster import NodeFacts
from gpu_operator.operator.desired import desired_state
from gpu_operator.operator.policy_v1 import ClusterPolicySpec


@dataclass(frozen=True, order=True)
class ImageUse:
    image: str
    used_by: str


def pod_images(obj: Mapping[str, Any]) -> list[ImageUse]:
    """The container and init-container images of a workload object (DaemonSet, Deployment…)."""
    template = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    name = f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
    containers = [*(template.get("initContainers") or ()), *(template.get("containers") or ())]
    return [ImageUse(str(c["image"]), name) for c in containers]


def synthetic_nodes(oses: Iterable[NodeOs], kernels: Iterable[str] = ()) -> list[NodeFacts]:
    """One GPU node per OS (× kernel), labelled as NFD would label it."""
    nodes = []
    for i, os in enumerate(sorted(set(oses))):
        for j, kernel in enumerate(sorted(set(kernels)) or [""]):
            labels = {
                GPU_PCI_LABELS[0]: "true",
                OS_ID_LABEL: os.id,
                OS_VERSION_LABEL: os.version_id,
            }
            if kernel:
                labels[KERNEL_LABEL] = kernel
            nodes.append(NodeFacts(name=f"os-{i}-{j}", labels=labels, annotations={}))
    return nodes


def policy_images(
    spec: ClusterPolicySpec,
    nodes: Iterable[NodeFacts],
    environ: Mapping[str, str] | None = None,
    nvidia_drivers: Iterable[Mapping[str, Any]] = (),
) -> list[ImageUse]:
    """Every image the operator's rendered objects pull (with ``driver.useNvidiaDriverCRD``,
    the driver images of the ``nvidia_drivers`` CRs, per CR and OS pool)."""
    desired = desired_state(spec, nodes, environ=environ, nvidia_drivers=nvidia_drivers)
    uses = {use for obj in desired.objects() for use in pod_images(obj)}
    return sorted(uses)


def mirror_commands(images: Iterable[str], registry: str) -> list[str]:
    """``skopeo copy`` per image into ``registry``, keeping the source path under it
    (``nvcr.io/nvidia/driver:…`` → ``<registry>/nvcr.io/nvidia/driver:…``)."""
    target = registry.rstrip("/")
    lines = []
    for image in sorted(set(images)):
        # A policy already pointed at the mirror names the upstream path under it.
        source = image.removeprefix(target + "/")
        lines.append(f"skopeo copy --all docker://{source} docker://{target}/{source}")
    return lines
