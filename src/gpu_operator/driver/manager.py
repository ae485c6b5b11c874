"""The driver manager's pure core (k8s-driver-manager, reference §2.4 and the validator notes
§5): its settings from upstream's env vars, what to do on this node (``decide``), and the label
arithmetic of pausing and restoring the operands. The shell (``driver.managing``) does the waits,
evictions and host commands in the order ``decide`` names.

Pausing appends to an existing pause as upstream: ``true`` → ``paused-for-driver-upgrade``,
``paused-for-mig-change`` → ``paused-for-mig-change_paused-for-driver-upgrade``; ``false`` and
absent labels stay. Restoring undoes exactly that, so a manager that crashed mid-run restores
what it paused on its next start, without any memory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from gpu_operator.driver.upgrade_model import UPGRADE_ENABLED
from gpu_operator.errors import ConfigError
from gpu_operator.labelselectors import Selector, parse_selector
from gpu_operator.names import DEPLOY_LABEL_PREFIX
from gpu_operator.settings_engine import from_env, variable

PAUSED = "paused-for-driver-upgrade"
PRE_INSTALLED = "pre-installed"
DEPLOY_PREFIX = DEPLOY_LABEL_PREFIX
DRIVER_LABEL = f"{DEPLOY_PREFIX}driver"
OPERANDS = (
    "operator-validator",
    "container-toolkit",
    "device-plugin",
    "gpu-feature-discovery",
    "dcgm-exporter",
    "dcgm",
    "mig-manager",
    "nvsm",
    "node-status-exporter",
    "sandbox-device-plugin",
    "sandbox-validator",
    "vgpu-device-manager",
    "dra-driver",
    "dra-validator",
)
# The operand pods that must leave before the modules can be unloaded (their ``app`` labels).
OPERAND_APPS = (
    "nvidia-operator-validator",
    "nvidia-container-toolkit-daemonset",
    "nvidia-device-plugin-daemonset",
    "nvidia-device-plugin-mps-control-daemon",
    "gpu-feature-discovery",
    "nvidia-dcgm-exporter",
    "nvidia-dcgm",
    "nvidia-mig-manager",
    "nvidia-node-status-exporter",
)
FAILURE_ANNOTATION = "gpu-operator.nvidia.com/driver-manager-failure"
"""Ours: why the last run failed (removed by a run that succeeds)."""
STALE_REASON = "DriverPreInstalledLabelStale"
FAILED_REASON = "DriverManagerFailed"
MODULES = (
    "nvidia_modeset",
    "nvidia_uvm",
    "nvidia_peermem",
    "nvidia_fs",
    "nvidia_vgpu_vfio",
    "nvidia",
)


def _seconds(text: str) -> float:
    try:
        value = float(text.strip().removesuffix("s"))
    except ValueError:
        raise ValueError(f"{text!r} is not seconds, e.g. 300 or 300s") from None
    if value < 0:
        raise ValueError(f"{text!r} must be 0 or more")
    return value


def _selector(text: str) -> Selector:
    return parse_selector(text, source="DRAIN_POD_SELECTOR_LABEL")


_VARIABLES = {
    "node_name": variable("NODE_NAME"),
    "namespace": variable("OPERATOR_NAMESPACE"),
    "gpu_pod_eviction": variable("ENABLE_GPU_POD_EVICTION", parse=bool),
    "auto_drain": variable("ENABLE_AUTO_DRAIN", parse=bool),
    "drain_force": variable("DRAIN_USE_FORCE", parse=bool),
    "drain_selector": variable("DRAIN_POD_SELECTOR_LABEL", parse=_selector),
    "drain_timeout_s": variable("DRAIN_TIMEOUT_SECONDS", parse=_seconds),
    "drain_empty_dir": variable("DRAIN_DELETE_EMPTYDIR_DATA", parse=bool),
    "force_reinstall": variable("FORCE_REINSTALL", parse=bool),
    "config_digest": variable("DRIVER_CONFIG_DIGEST"),
    "operand_wait_s": variable("OPERAND_WAIT_TIMEOUT_SECONDS", parse=_seconds),
    "unload_retry_s": variable("UNLOAD_RETRY_SECONDS", parse=_seconds),
    "max_wait_s": variable("MAX_WAIT_SECONDS", parse=_seconds),
    "host_root": variable("HOST_ROOT"),
    "unload_command": variable("UNLOAD_COMMAND"),
}
"""Field → its variable and reader (``gpu_operator.settings_engine``); an empty one is unset."""


@dataclass(frozen=True)
class ManagerSettings:
    """Upstream's env vars (the operator sets most of them on the init container)."""

    node_name: str
    """``NODE_NAME`` (required)."""
    namespace: str = "gpu-operator"
    """``OPERATOR_NAMESPACE``: where the operand pods run."""
    gpu_pod_eviction: bool = True
    """``ENABLE_GPU_POD_EVICTION``: delete pods using GPUs before unloading."""
    auto_drain: bool = False
    """``ENABLE_AUTO_DRAIN`` (the operator sets false; upstream's binary defaults to true)."""
    drain_force: bool = False
    """``DRAIN_USE_FORCE``: also delete pods without a controller."""
    drain_selector: Selector = field(default_factory=Selector)
    """``DRAIN_POD_SELECTOR_LABEL``."""
    drain_timeout_s: float = 0.0
    """``DRAIN_TIMEOUT_SECONDS`` (``0s`` upstream = no limit; we bound it by ``max_wait_s``)."""
    drain_empty_dir: bool = False
    """``DRAIN_DELETE_EMPTYDIR_DATA``."""
    force_reinstall: bool = False
    """``FORCE_REINSTALL``: reinstall even when ``DRIVER_CONFIG_DIGEST`` is unchanged."""
    config_digest: str = ""
    """``DRIVER_CONFIG_DIGEST``, computed by the operator (``driver.startup.config_digest``)."""
    operand_wait_s: float = 300.0
    """``OPERAND_WAIT_TIMEOUT_SECONDS`` (ours): how long operand pods get to leave (5 min)."""
    unload_retry_s: float = 30.0
    """``UNLOAD_RETRY_SECONDS`` (ours): how long to retry the unload after a drain."""
    max_wait_s: float = 600.0
    """``MAX_WAIT_SECONDS`` (ours): the bound on every wait upstream leaves unlimited."""
    host_root: str = "/host"
    """``HOST_ROOT`` (ours): the host's root filesystem, mounted into the init container."""
    unload_command: str = ""
    """``UNLOAD_COMMAND`` (ours): how to unload the modules on the host; default: ``chroot
    <host_root> rmmod`` of each loaded module, then unmount the driver root."""

    def wait_limit(self, requested_s: float) -> float:
        return min(requested_s, self.max_wait_s) if requested_s > 0 else self.max_wait_s

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ManagerSettings:
        env = os.environ if env is None else env
        values = from_env(_VARIABLES, env)
        if not values.get("node_name"):
            raise ConfigError("NODE_NAME must be set to the name of this node")
        return cls(**values)


@dataclass(frozen=True)
class HostFacts:
    """What the shell found on the host."""

    host_driver: bool
    """A driver installed on the host itself (``nvidia-smi`` under the host root, not ours)."""
    module_loaded: bool
    """``/sys/module/nvidia/refcnt`` exists."""
    stored_digest: str | None = None
    """``DRIVER_CONFIG_DIGEST`` in ``/run/nvidia/nvidia-driver.state``."""


class Mode(StrEnum):
    PRE_INSTALLED = "pre-installed"
    """Host driver: set the node's driver deploy label (``names.DEPLOY_LABEL_PREFIX``) to
    ``pre-installed`` and stop."""
    CLEAN = "clean"
    """No driver loaded: clean up stale state, restore what an earlier run paused."""
    UNCHANGED = "unchanged"
    """Loaded with the same config digest: keep it, restore what an earlier run paused."""
    REINSTALL = "reinstall"
    """Loaded and the config changed: pause operands, evict, unload, restore."""


def decide(host: HostFacts, settings: ManagerSettings) -> Mode:
    if host.host_driver:
        return Mode.PRE_INSTALLED
    if not host.module_loaded:
        return Mode.CLEAN
    same = bool(settings.config_digest) and host.stored_digest == settings.config_digest
    if same and not settings.force_reinstall:
        return Mode.UNCHANGED
    return Mode.REINSTALL


def upgrade_controller_owns_eviction(annotations: Mapping[str, str]) -> bool:
    """With ``driver.upgradePolicy.autoUpgrade`` the upgrade controller has already deleted
    GPU pods and drained; the manager must not do it again."""
    return annotations.get(UPGRADE_ENABLED) == "true"


def _deploy_labels(labels: Mapping[str, str]) -> list[str]:
    return [f"{DEPLOY_PREFIX}{o}" for o in OPERANDS if f"{DEPLOY_PREFIX}{o}" in labels]


def pause(labels: Mapping[str, str]) -> dict[str, str]:
    """The deploy-label patch that pauses every operand (nothing for ``false``, absent, or
    already paused by us)."""
    patch = {}
    for key in _deploy_labels(labels):
        value = labels[key]
        if value in ("false", "") or value.endswith(PAUSED):
            continue
        patch[key] = PAUSED if value == "true" else f"{value}_{PAUSED}"
    return patch


def restore(labels: Mapping[str, str]) -> dict[str, str]:
    """The patch that undoes ``pause`` — from the labels alone."""
    patch = {}
    for key in _deploy_labels(labels):
        value = labels[key]
        if value == PAUSED:
            patch[key] = "true"
        elif value.endswith(f"_{PAUSED}"):
            patch[key] = value.removesuffix(f"_{PAUSED}")
    return patch


def stale_pre_installed(labels: Mapping[str, str], host: HostFacts) -> bool:
    """Beyond upstream (#504): the node says ``pre-installed`` but the host has no driver, so
    the driver DaemonSet stays away from a node with no driver at all."""
    return labels.get(DRIVER_LABEL) == PRE_INSTALLED and not host.host_driver


def unload_commands(loaded: Mapping[str, bool], host_root: str) -> list[list[str]]:
    """``rmmod`` for each loaded module, dependents first (upstream's order), then unmount the
    containerised driver root."""
    commands = [["chroot", host_root, "rmmod", m] for m in MODULES if loaded.get(m)]
    commands.append(["sh", "-c", "umount -l /run/nvidia/driver 2>/dev/null || true"])
    return commands
