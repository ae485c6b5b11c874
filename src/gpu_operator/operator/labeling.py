"""The node labelling rules (reference §3.2) as one pure function: from a node's labels and the
policy, the merge patch of the labels the operator owns (``gpu.present``, the
``gpu.deploy.*`` state labels, the default ``mig.config``) and the upgrade annotation.

Never overwrites a non-empty deploy label: ``false``, ``paused-for-*`` and ``pre-installed``
belong to the user, mig-manager and driver-manager."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gpu_operator.names import (
    DEPLOY_LABEL_PREFIX,
    GPU_PRODUCT_LABEL,
    MIG_CAPABLE_LABEL,
    MIG_CONFIG_LABEL,
    OPERANDS_LABEL,
    UPGRADE_ENABLED_ANNOTATION,
    VGPU_HOST_DRIVER_LABEL,
    WORKLOAD_CONFIG_LABEL,
)
from gpu_operator.nfd import is_gpu_node
from gpu_operator.operator.cluster import GPU_PRESENT
from gpu_operator.operator.policy_v1 import ClusterPolicySpec, enabled

DEPLOY_PREFIX = DEPLOY_LABEL_PREFIX
WORKLOAD_LABEL = WORKLOAD_CONFIG_LABEL
MIG_CAPABLE = MIG_CAPABLE_LABEL
MIG_CONFIG = MIG_CONFIG_LABEL
GPU_PRODUCT = GPU_PRODUCT_LABEL
VGPU_HOST_DRIVER = VGPU_HOST_DRIVER_LABEL
UPGRADE_ENABLED = UPGRADE_ENABLED_ANNOTATION

CONTAINER_STATES = (
    "driver",
    "gpu-feature-discovery",
    "container-toolkit",
    "device-plugin",
    "dcgm",
    "dcgm-exporter",
    "node-status-exporter",
    "operator-validator",
    "client",
)
WORKLOAD_STATES = {
    "container": CONTAINER_STATES,
    "vm-passthrough": (
        "sandbox-device-plugin",
        "sandbox-validator",
        "vfio-manager",
        "kata-manager",
        "cc-manager",
        "client",
    ),
    "vm-vgpu": (
        "sandbox-device-plugin",
        "vgpu-manager",
        "vgpu-device-manager",
        "sandbox-validator",
        "cc-manager",
        "client",
    ),
}
MIG_PRODUCTS = ("h100", "a100", "a30")

Patch = dict[str, str | None]


@dataclass(frozen=True)
class NodePatch:
    """What to change on one node; both maps empty means no write."""

    labels: Patch = field(default_factory=dict)
    annotations: Patch = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.labels or self.annotations)


def mig_capable(labels: Mapping[str, str]) -> bool:
    """GFD's ``mig.capable``; without it, an H100/A100/A30 product name; never a vGPU node."""
    if labels.get(VGPU_HOST_DRIVER):
        return False
    if MIG_CAPABLE in labels:
        return labels[MIG_CAPABLE] == "true"
    product = labels.get(GPU_PRODUCT, "").lower()
    return any(name in product for name in MIG_PRODUCTS)


def deploy_states(labels: Mapping[str, str], spec: ClusterPolicySpec) -> tuple[str, ...]:
    """The state labels a GPU node should carry for its workload config."""
    workload = "container"
    if spec.sandboxWorkloads.enabled:
        workload = labels.get(WORKLOAD_LABEL) or spec.sandboxWorkloads.defaultWorkload
        workload = workload if workload in WORKLOAD_STATES else "container"
    states = WORKLOAD_STATES[workload]
    if workload == "vm-passthrough" and spec.sandboxWorkloads.mode == "kata":
        states = tuple(
            "kata-sandbox-device-plugin" if s == "sandbox-device-plugin" else s for s in states
        )
    if workload == "container" and mig_capable(labels):
        states = (*states, "mig-manager")
    if workload == "container" and enabled(spec, "draDriver"):
        states = (*states, "dra-driver")  # upstream's label (its GPUCluster stack's)
    return states


def plan_node(
    labels: Mapping[str, str], annotations: Mapping[str, str], spec: ClusterPolicySpec
) -> NodePatch:
    """The patch that brings one node to the §3.2 rules (empty at steady state)."""
    patch: Patch = {}
    gpu = is_gpu_node(labels)
    present = labels.get(GPU_PRESENT)
    if gpu and present != "true":
        patch[GPU_PRESENT] = "true"
    elif not gpu and present == "true":
        patch[GPU_PRESENT] = "false"
    deploy = {
        k: v for k, v in labels.items() if k.startswith(DEPLOY_PREFIX) and k != OPERANDS_LABEL
    }
    wanted: tuple[str, ...] = ()
    if gpu and labels.get(OPERANDS_LABEL) != "false":
        wanted = deploy_states(labels, spec)
    for state in wanted:
        if not deploy.get(DEPLOY_PREFIX + state):
            patch[DEPLOY_PREFIX + state] = "true"
    wanted_keys = {DEPLOY_PREFIX + s for s in wanted}
    patch.update({key: None for key in deploy if key not in wanted_keys})
    if (
        gpu
        and "mig-manager" in wanted
        and enabled(spec, "migManager")
        and not labels.get(MIG_CONFIG)
        and ((spec.migManager.config and spec.migManager.config.default) or "all-disabled")
        == "all-disabled"
    ):
        patch[MIG_CONFIG] = "all-disabled"
    notes: Patch = {}
    policy = spec.driver.upgradePolicy
    want_upgrade = gpu and bool(policy and policy.autoUpgrade) and enabled(spec, "driver")
    if want_upgrade and annotations.get(UPGRADE_ENABLED) != "true":
        notes[UPGRADE_ENABLED] = "true"
    elif not want_upgrade and UPGRADE_ENABLED in annotations:
        notes[UPGRADE_ENABLED] = None
    return NodePatch(labels=patch, annotations=notes)


def apply_patch(current: Mapping[str, str], patch: Patch) -> dict[str, str]:
    """``current`` after a JSON merge patch of ``patch`` (what the API server would store)."""
    result = dict(current)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result
