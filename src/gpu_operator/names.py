"""Upstream's names, spelled once: the node labels, annotations, resource names, file paths and
taints that NVIDIA's GPU Operator and its operands agree on, so that the operator's renderers,
the node agents and the commands agree on them by import, never by two string literals.

A leaf (imports nothing), at the bottom of the layers. ``tests/unit/test_names.py`` fails on a
string literal in ``src/`` that spells one of these names (or starts with one of the prefixes)
anywhere but here; docstrings and comments may still name them. Names of our own (under
``gpu-operator``) stay with the module that owns them.
"""

from __future__ import annotations

NVIDIA_PREFIX = "nvidia.com/"
"""The domain of NVIDIA's labels, annotations and resources."""

# Node labels: the operator's (gpu.present, the deploy states, mig.config's default, the
# workload config) and the ones its operands write (GFD, MIG manager, driver manager).
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
DEPLOY_LABEL_PREFIX = "nvidia.com/gpu.deploy."
"""``nvidia.com/gpu.deploy.<operand>``: ``true``, ``false``, ``paused-for-*``, ``pre-installed``."""
OPERANDS_LABEL = "nvidia.com/gpu.deploy.operands"
"""``false`` keeps every operand off the node."""
WORKLOAD_CONFIG_LABEL = "nvidia.com/gpu.workload.config"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
GPU_COUNT_LABEL = "nvidia.com/gpu.count"
MIG_CAPABLE_LABEL = "nvidia.com/mig.capable"
MIG_CONFIG_LABEL = "nvidia.com/mig.config"
MIG_CONFIG_STATE_LABEL = "nvidia.com/mig.config.state"
MPS_CAPABLE_LABEL = "nvidia.com/mps.capable"
VGPU_HOST_DRIVER_LABEL = "nvidia.com/vgpu.host-driver-version"
DEVICE_PLUGIN_CONFIG_LABEL = "nvidia.com/device-plugin.config"
PRECOMPILED_LABEL = "nvidia.com/precompiled"

# The driver upgrade controller's labels and annotations (k8s-operator-libs).
UPGRADE_STATE_LABEL = "nvidia.com/gpu-driver-upgrade-state"
UPGRADE_SKIP_LABEL = "nvidia.com/gpu-driver-upgrade.skip"
UPGRADE_DRAIN_SKIP_LABEL = "nvidia.com/gpu-driver-upgrade-drain.skip"
UPGRADE_ENABLED_ANNOTATION = "nvidia.com/gpu-driver-upgrade-enabled"
UPGRADE_WAIT_FOR_SAFE_LOAD_ANNOTATION = "nvidia.com/gpu-driver-upgrade.driver-wait-for-safe-load"
UPGRADE_INITIAL_UNSCHEDULABLE_ANNOTATION = (
    "nvidia.com/gpu-driver-upgrade.node-initial-state.unschedulable"
)
UPGRADE_WAIT_START_ANNOTATION = "nvidia.com/gpu-driver-upgrade-wait-for-pod-completion-start-time"
UPGRADE_VALIDATION_START_ANNOTATION = "nvidia.com/gpu-driver-upgrade-validation-start-time"
UPGRADE_REQUESTED_ANNOTATION = "nvidia.com/gpu-driver-upgrade-requested"
UPGRADE_REQUESTOR_MODE_ANNOTATION = "nvidia.com/gpu-driver-upgrade-requestor-mode"

# Annotations on the objects the operator applies.
LAST_APPLIED_HASH_ANNOTATION = "nvidia.com/last-applied-hash"

# node-feature-discovery's labels that decide a GPU node, its OS and its kernel.
NFD_PREFIX = "feature.node.kubernetes.io/"
NFD_PCI_NVIDIA_LABEL = "feature.node.kubernetes.io/pci-10de.present"
NFD_PCI_3D_NVIDIA_LABEL = "feature.node.kubernetes.io/pci-0302_10de.present"
NFD_PCI_VGA_NVIDIA_LABEL = "feature.node.kubernetes.io/pci-0300_10de.present"
NFD_OS_ID_LABEL = "feature.node.kubernetes.io/system-os_release.ID"
NFD_OS_VERSION_LABEL = "feature.node.kubernetes.io/system-os_release.VERSION_ID"
NFD_KERNEL_LABEL = "feature.node.kubernetes.io/kernel-version.full"

# Extended resources, CDI kinds and the taint.
GPU_RESOURCE = "nvidia.com/gpu"
"""The device plugin's resource, and the key of the GPU taint every operand tolerates."""
SHARED_GPU_RESOURCE = "nvidia.com/gpu.shared"
"""The resource of a shared GPU renamed by default (time-slicing, MPS)."""
MIG_RESOURCE_PREFIX = "nvidia.com/mig-"
"""``nvidia.com/mig-<profile>`` under the mixed strategy."""
CDI_KIND = GPU_RESOURCE
"""The CDI kind of the devices the plugin hands out."""
MANAGEMENT_CDI_KIND = "management.nvidia.com/gpu"
"""The CDI kind of the management devices (the operator's containers, the MIG manager)."""

# Paths on the node, as the operands see them.
VALIDATIONS_DIR = "/run/nvidia/validations"
"""The ``*-ready`` status files that gate each operand."""
DRIVER_CTR_READY_FILE = f"{VALIDATIONS_DIR}/.driver-ctr-ready"
"""Written by the driver container once its modules are loaded."""
DEVICE_PLUGIN_DIR = "/var/lib/kubelet/device-plugins/"
KUBELET_SOCKET = f"{DEVICE_PLUGIN_DIR}kubelet.sock"
"""The kubelet's device plugin registration socket."""
POD_RESOURCES_DIR = "/var/lib/kubelet/pod-resources"
POD_RESOURCES_SOCKET = f"{POD_RESOURCES_DIR}/kubelet.sock"
NFD_FEATURES_DIR = "/etc/kubernetes/node-feature-discovery/features.d"
"""NFD's local feature files (GFD's output)."""


# NVIDIA's DRA driver (gpu.nvidia.com): the names of the devices it publishes, which the
# driver, the sandbox scheduler and the exporter's pod attribution all read.
def dra_gpu_device(minor: int) -> str:
    """A whole GPU: ``gpu-<minor number>`` (upstream's canonical name)."""
    return f"gpu-{minor}"


def dra_mig_device(minor: int, profile: str, profile_id: int, start: int) -> str:
    """A dynamic MIG device: ``gpu-<minor>-mig-<profile>-<GI profile id>-<start>``
    (``gpu-0-mig-3g40gb-9-4``; ``profile`` already in DNS-label form)."""
    return f"{dra_gpu_device(minor)}-mig-{profile}-{profile_id}-{start}"


def parse_dra_mig_device(name: str) -> tuple[int, int, int] | None:
    """(minor, GI profile id, start) of a dynamic MIG device name; ``None`` for any other name."""
    parts = name.split("-")
    if len(parts) < 6 or parts[0] != "gpu" or parts[2] != "mig" or not "-".join(parts[3:-2]):
        return None
    minor, profile_id, start = parts[1], parts[-2], parts[-1]
    if not (minor.isdigit() and profile_id.isdigit() and start.isdigit()):
        return None
    return int(minor), int(profile_id), int(start)
