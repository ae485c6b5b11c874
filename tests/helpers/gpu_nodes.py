"""The operator's view of a GPU node (``NodeFacts``) as NFD labels it: the GPU's PCI label, the
OS id and version, and the kernel, for tests that render per-node driver pools."""

from __future__ import annotations

from gpu_operator.nfd import GPU_PCI_LABELS, KERNEL_LABEL, OS_ID_LABEL, OS_VERSION_LABEL
from gpu_operator.operator.cluster import NodeFacts


def gpu_node(name: str, os_id: str, version: str, kernel: str = "5.15.0-69-generic") -> NodeFacts:
    """A GPU node running ``os_id`` ``version`` with ``kernel``."""
    labels = {
        GPU_PCI_LABELS[0]: "true",
        OS_ID_LABEL: os_id,
        OS_VERSION_LABEL: version,
        KERNEL_LABEL: kernel,
    }
    return NodeFacts(name=name, labels=labels, annotations={})
