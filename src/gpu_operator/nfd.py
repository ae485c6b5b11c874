"""GPU-node detection, once: from a node's labels, whether it is a GPU node — NFD saw an NVIDIA
PCI device, or the operator already labelled it ``gpu.present=true``. A leaf over
``gpu_operator.names`` (where NFD's label names live): the operator, the driver pools,
``status`` and ``preflight`` decide here."""

from __future__ import annotations

from collections.abc import Mapping

from gpu_operator.names import (
    GPU_PRESENT_LABEL,
    NFD_KERNEL_LABEL,
    NFD_OS_ID_LABEL,
    NFD_OS_VERSION_LABEL,
    NFD_PCI_3D_NVIDIA_LABEL,
    NFD_PCI_NVIDIA_LABEL,
    NFD_PCI_VGA_NVIDIA_LABEL,
    NFD_PREFIX,
)

__all__ = [
    "GPU_PCI_LABELS",
    "KERNEL_LABEL",
    "NFD_PREFIX",
    "OS_ID_LABEL",
    "OS_VERSION_LABEL",
    "has_nvidia_gpu",
    "is_gpu_node",
]

GPU_PCI_LABELS = (NFD_PCI_NVIDIA_LABEL, NFD_PCI_3D_NVIDIA_LABEL, NFD_PCI_VGA_NVIDIA_LABEL)
OS_ID_LABEL = NFD_OS_ID_LABEL
OS_VERSION_LABEL = NFD_OS_VERSION_LABEL
KERNEL_LABEL = NFD_KERNEL_LABEL


def is_gpu_node(labels: Mapping[str, str]) -> bool:
    """NFD saw an NVIDIA PCI device (vendor 10de, by vendor or by class+vendor): what the
    operator's labeller decides ``gpu.present`` on."""
    return any(labels.get(key) == "true" for key in GPU_PCI_LABELS)


def has_nvidia_gpu(labels: Mapping[str, str]) -> bool:
    """A GPU node to report or plan for: labelled ``gpu.present=true`` by the operator, or NFD's
    NVIDIA PCI label on a node the operator has not labelled yet."""
    return labels.get(GPU_PRESENT_LABEL) == "true" or is_gpu_node(labels)
