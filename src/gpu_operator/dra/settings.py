"""The DRA driver's settings, resolved as upstream's ``gpu-kubelet-plugin`` (urfave/cli: flag >
environment variable > default) through the settings engine; flags and variables are
upstream's: ``--node-name``/``NODE_NAME`` (required), ``--namespace``/``NAMESPACE``,
``--cdi-root``/``CDI_ROOT``, ``--nvidia-driver-root``/``NVIDIA_DRIVER_ROOT``,
``HOST_DRIVER_ROOT``, ``--container-driver-root``/``DRIVER_ROOT_CTR_PATH``,
``CONTAINER_DRIVER_ROOT``, ``--nvidia-cdi-hook-path``/``NVIDIA_CDI_HOOK_PATH``,
``--kubelet-registrar-directory-path``/``KUBELET_REGISTRAR_DIRECTORY_PATH``,
``--kubelet-plugins-directory-path``/``KUBELET_PLUGINS_DIRECTORY_PATH``,
``--kubeconfig``/``KUBECONFIG``, ``--feature-gates``/``FEATURE_GATES`` (Kubernetes'
``Name=true,Other=false`` form; upstream's gate names are accepted, ``DynamicMIG`` is the one
that changes anything here). Health reads the device plugin's variables
(``DP_DISABLE_HEALTHCHECKS``, ``DP_ENABLE_HEALTHCHECKS``, ``DP_HEALTH_RECOVERY``). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpu_operator.deviceplugin.config_v1 import ConfigV1
from gpu_operator.deviceplugin.settings import HealthSettings, health_settings
from gpu_operator.dra import DRIVER_NAME
from gpu_operator.errors import ConfigError
from gpu_operator.settings_engine import Field, resolve

KUBELET_REGISTRY_DIR = "/var/lib/kubelet/plugins_registry"
"""The kubelet's plugin watcher directory (``kubeletplugin.KubeletRegistryDir``)."""
KUBELET_PLUGINS_DIR = "/var/lib/kubelet/plugins"
"""Where plugins keep their data and sockets (``kubeletplugin.KubeletPluginsDir``)."""
DYNAMIC_MIG = "DynamicMIG"
"""Upstream's feature gate: publish MIG-enabled GPUs' MIG devices, create them on prepare."""
FEATURE_GATES = (
    "TimeSlicingSettings",
    "MPSSupport",
    "IMEXDaemonsWithDNSNames",
    "PassthroughSupport",
    "NVMLDeviceHealthCheck",
    DYNAMIC_MIG,
    "ComputeDomainCliques",
    "CrashOnNVLinkFabricErrors",
)
"""The gates upstream's ``pkg/featuregates`` defines; any other name is refused, as
component-base refuses an unrecognized gate."""


@dataclass(frozen=True)
class DraSettings:
    node_name: str = ""  # NODE_NAME (required)
    namespace: str = "default"  # NAMESPACE
    cdi_root: str = "/etc/cdi"  # CDI_ROOT
    driver_root: str = "/"  # NVIDIA_DRIVER_ROOT, HOST_DRIVER_ROOT: the driver on the host
    container_driver_root: str = "/driver-root"  # DRIVER_ROOT_CTR_PATH: the same, in here
    nvidia_cdi_hook_path: str = "/usr/bin/nvidia-cdi-hook"  # NVIDIA_CDI_HOOK_PATH
    kubelet_registrar_directory_path: str = KUBELET_REGISTRY_DIR
    kubelet_plugins_directory_path: str = KUBELET_PLUGINS_DIR
    kubeconfig: str | None = None  # KUBECONFIG; unset: in-cluster
    health: HealthSettings = field(default_factory=HealthSettings)
    feature_gates: Mapping[str, bool] = field(default_factory=dict)  # FEATURE_GATES

    @property
    def dynamic_mig(self) -> bool:
        """``DynamicMIG=true``: MIG-enabled GPUs publish their MIG devices (off by default, as
        upstream's alpha gate)."""
        return bool(self.feature_gates.get(DYNAMIC_MIG, False))

    @property
    def plugin_dir(self) -> Path:
        """``<plugins>/gpu.nvidia.com``: the DRA socket and the checkpoint."""
        return Path(self.kubelet_plugins_directory_path) / DRIVER_NAME


def _absolute(text: str) -> str:
    if not text.startswith("/"):
        raise ValueError(f"{text!r} is not an absolute path")
    return text


_WORDS = {"true": True, "false": False}


def feature_gates(text: str) -> dict[str, bool]:
    """``DynamicMIG=true,MPSSupport=false`` → {name: on}; what is wrong otherwise."""
    gates: dict[str, bool] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or value.strip().lower() not in _WORDS:
            raise ValueError(f"{part!r} is not Name=true or Name=false")
        if name not in FEATURE_GATES:
            raise ValueError(
                f"unrecognized feature gate: {name} (known: {', '.join(FEATURE_GATES)})"
            )
        gates[name] = _WORDS[value.strip().lower()]
    return gates


F = Field[None]
FIELDS: dict[str, F] = {
    "node_name": F("--node-name", ("NODE_NAME",), str),
    "namespace": F("--namespace", ("NAMESPACE",), str),
    "cdi_root": F("--cdi-root", ("CDI_ROOT",), _absolute),
    "driver_root": F("--nvidia-driver-root", ("NVIDIA_DRIVER_ROOT", "HOST_DRIVER_ROOT"), _absolute),
    "container_driver_root": F(
        "--container-driver-root", ("DRIVER_ROOT_CTR_PATH", "CONTAINER_DRIVER_ROOT"), _absolute
    ),
    "nvidia_cdi_hook_path": F("--nvidia-cdi-hook-path", ("NVIDIA_CDI_HOOK_PATH",), _absolute),
    "kubelet_registrar_directory_path": F(
        "--kubelet-registrar-directory-path", ("KUBELET_REGISTRAR_DIRECTORY_PATH",), _absolute
    ),
    "kubelet_plugins_directory_path": F(
        "--kubelet-plugins-directory-path", ("KUBELET_PLUGINS_DIRECTORY_PATH",), _absolute
    ),
    "kubeconfig": F("--kubeconfig", ("KUBECONFIG",), str, empty_is_unset=True),
    "feature_gates": F("--feature-gates", ("FEATURE_GATES",), feature_gates, empty_is_unset=True),
}
"""Field → its flag, variables (first set wins) and reader (``gpu_operator.settings_engine``)."""


def resolve_settings(flags: Mapping[str, Any], env: Mapping[str, str]) -> DraSettings:
    """Settings from CLI ``flags`` (field → text; ``None`` = not given) and ``env``."""
    values = resolve(FIELDS, flags, env, None).values
    if not values.get("node_name"):
        raise ConfigError("--node-name (NODE_NAME): required, the name of this node")
    return DraSettings(**values, health=health_settings(env, ConfigV1()))
