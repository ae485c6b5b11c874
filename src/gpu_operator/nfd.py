"""The node labels node-feature-discovery writes that we decide on: an NVIDIA PCI device, the OS
release and the kernel. A leaf: the operator, the driver pools and ``status`` read them here."""

from __future__ import annotations

from collections.abc import Mapping

NFD_PREFIX = "feature.node.kubernetes.io/"
GPU_PCI_LABELS = (
    "feature.node.kubernetes.io/pci-10de.present",
    "feature.node.kubernetes.io/pci-0302_10de.present",
    "feature.node.kubernetes.io/pci-0300_10de.present",
)
OS_ID_LABEL = "feature.node.kubernetes.io/system-os_release.ID"
OS_VERSION_LABEL = "feature.node.kubernetes.io/system-os_release.VERSION_ID"
KERNEL_LABEL = "feature.node.kubernetes.io/kernel-version.full"


def is_gpu_node(labels: Mapping[str, str]) -> bool:
    """NFD saw an NVIDIA PCI device (vendor 10de, by vendor or by class+vendor)."""
    return any(labels.get(key) == "true" for key in GPU_PCI_LABELS)
