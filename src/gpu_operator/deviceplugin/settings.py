"""The device plugin's settings: one frozen object, resolved with upstream's precedence
(command-line flag > environment variable > config file > default).

``resolve_settings(flags, env, config)`` is pure: flags are what the CLI parsed (``None`` = not
given), env a mapping, config a parsed ``ConfigV1``. Values are validated here, so a bad
``MIG_STRATEGY`` is a ``ConfigError`` that names the variable, whichever way it came in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from gpu_operator.booleans import ACCEPTED, FALSE_WORDS, TRUE_WORDS
from gpu_operator.deviceplugin.config_v1 import (
    AllocationPolicy,
    ConfigV1,
    DeviceIdStrategy,
    DeviceListStrategy,
    DiscoveryStrategy,
    MigStrategy,
    Resources,
    Sharing,
    load_config,
    parse_duration,
)
from gpu_operator.errors import ConfigError
from gpu_operator.names import DEVICE_PLUGIN_DIR
from gpu_operator.names import KUBELET_SOCKET as REGISTRATION_SOCKET
from gpu_operator.settings_engine import Field, resolve

log = logging.getLogger(__name__)

DEVICE_PLUGIN_PATH = DEVICE_PLUGIN_DIR
KUBELET_SOCKET = REGISTRATION_SOCKET
DEFAULT_IGNORED_XIDS = frozenset({13, 31, 43, 45, 68, 109})
"""Application errors that don't make a device unhealthy (upstream ``internal/rm/health.go``)."""


@dataclass(frozen=True)
class HealthSettings:
    """Which XIDs make a device unhealthy, and whether it may come back."""

    enabled: bool = True
    """False with ``DP_DISABLE_HEALTHCHECKS=all`` (or ``xids``): no event watching at all."""
    ignored_xids: frozenset[int] = DEFAULT_IGNORED_XIDS
    """Default list + ``DP_DISABLE_HEALTHCHECKS`` list − ``DP_ENABLE_HEALTHCHECKS`` list."""
    recovery_quiet_period_s: float | None = None
    """Ours: seconds without a critical XID, and a passing NVML check, after which an unhealthy
    device is Healthy again (``DP_HEALTH_RECOVERY`` or ``health.recoveryQuietPeriod``);
    ``None`` = upstream behaviour, unhealthy until restart."""
    event_wait_ms: int = 100
    """How long one NVML event wait blocks (upstream: 5000 ms); bounds shutdown latency."""

    def is_critical(self, xid: int) -> bool:
        return self.enabled and xid not in self.ignored_xids


@dataclass(frozen=True)
class PluginSettings:
    mig_strategy: MigStrategy = "none"  # MIG_STRATEGY
    fail_on_init_error: bool = True  # FAIL_ON_INIT_ERROR; false = log and wait (GPU-less nodes)
    driver_root: str = "/"  # NVIDIA_DRIVER_ROOT: where the driver's files are on the host
    dev_root: str = "/"  # NVIDIA_DEV_ROOT: where /dev/nvidia* are on the host (= driver root)
    pass_device_specs: bool = False  # PASS_DEVICE_SPECS: also return DeviceSpecs (CPUManager)
    device_list_strategy: tuple[DeviceListStrategy, ...] = ("envvar",)  # DEVICE_LIST_STRATEGY
    device_id_strategy: DeviceIdStrategy = "uuid"  # DEVICE_ID_STRATEGY
    gdrcopy_enabled: bool = False  # GDRCOPY_ENABLED
    gds_enabled: bool = False  # GDS_ENABLED
    mofed_enabled: bool = False  # MOFED_ENABLED
    cdi_annotation_prefix: str = "cdi.k8s.io/"  # CDI_ANNOTATION_PREFIX
    nvidia_cdi_hook_path: str = "/usr/bin/nvidia-ctk"  # NVIDIA_CDI_HOOK_PATH, NVIDIA_CTK_PATH
    driver_root_ctr_path: str = "/driver-root"  # DRIVER_ROOT_CTR_PATH, CONTAINER_DRIVER_ROOT
    mps_root: str | None = None  # MPS_ROOT: required for MPS sharing
    shared_devices_allocation_policy: AllocationPolicy = "distributed"
    device_discovery_strategy: DiscoveryStrategy = "auto"  # DEVICE_DISCOVERY_STRATEGY
    imex_channel_ids: tuple[int, ...] = ()  # IMEX_CHANNEL_IDS
    imex_required: bool = False  # IMEX_REQUIRED
    kubelet_socket: str = KUBELET_SOCKET  # KUBELET_SOCKET; "" = serve but don't register
    config_file: str | None = None  # CONFIG_FILE
    cdi_feature_flags: tuple[str, ...] = ()  # CDI_FEATURE_FLAGS
    cdi_disable_hooks: tuple[str, ...] = ()  # CDI_DISABLE_HOOKS
    sharing: Sharing = field(default_factory=Sharing)  # config file only
    resources: Resources = field(default_factory=Resources)  # config file only
    health: HealthSettings = field(default_factory=HealthSettings)  # DP_* env vars


def _choice(allowed: Any) -> Callable[[str], str]:
    values = get_args(allowed)

    def parse(text: str) -> str:
        if text not in values:
            raise ValueError(f"{text!r} is not one of {', '.join(values)}")
        return text

    return parse


def _list(item: Callable[[str], Any]) -> Callable[[str], tuple[Any, ...]]:
    def parse(text: str) -> tuple[Any, ...]:
        return tuple(item(t.strip()) for t in text.split(",") if t.strip())

    return parse


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an integer") from None


F = Field[ConfigV1]
_FIELDS: dict[str, F] = {
    "mig_strategy": F(
        "--mig-strategy", ("MIG_STRATEGY",), _choice(MigStrategy), lambda c: c.flags.migStrategy
    ),
    "fail_on_init_error": F(
        "--fail-on-init-error", ("FAIL_ON_INIT_ERROR",), bool, lambda c: c.flags.failOnInitError
    ),
    "driver_root": F(
        "--driver-root", ("NVIDIA_DRIVER_ROOT",), str, lambda c: c.flags.nvidiaDriverRoot
    ),
    "dev_root": F("--dev-root", ("NVIDIA_DEV_ROOT",), str, lambda c: c.flags.nvidiaDevRoot),
    "pass_device_specs": F(
        "--pass-device-specs",
        ("PASS_DEVICE_SPECS",),
        bool,
        lambda c: c.flags.plugin.passDeviceSpecs,
    ),
    "device_list_strategy": F(
        "--device-list-strategy",
        ("DEVICE_LIST_STRATEGY",),
        _list(_choice(DeviceListStrategy)),
        lambda c: tuple(c.flags.plugin.deviceListStrategy or ()) or None,
    ),
    "device_id_strategy": F(
        "--device-id-strategy",
        ("DEVICE_ID_STRATEGY",),
        _choice(DeviceIdStrategy),
        lambda c: c.flags.plugin.deviceIDStrategy,
    ),
    "gdrcopy_enabled": F(
        "--gdrcopy-enabled", ("GDRCOPY_ENABLED",), bool, lambda c: c.flags.gdrcopyEnabled
    ),
    "gds_enabled": F("--gds-enabled", ("GDS_ENABLED",), bool, lambda c: c.flags.gdsEnabled),
    "mofed_enabled": F("--mofed-enabled", ("MOFED_ENABLED",), bool, lambda c: c.flags.mofedEnabled),
    "cdi_annotation_prefix": F(
        "--cdi-annotation-prefix",
        ("CDI_ANNOTATION_PREFIX",),
        str,
        lambda c: c.flags.plugin.cdiAnnotationPrefix,
    ),
    "nvidia_cdi_hook_path": F(
        "--nvidia-cdi-hook-path",
        ("NVIDIA_CDI_HOOK_PATH", "NVIDIA_CTK_PATH"),
        str,
        lambda c: c.flags.plugin.nvidiaCTKPath,
    ),
    "driver_root_ctr_path": F(
        "--driver-root-ctr-path",
        ("DRIVER_ROOT_CTR_PATH", "CONTAINER_DRIVER_ROOT"),
        str,
        lambda c: c.flags.plugin.containerDriverRoot,
    ),
    "mps_root": F("--mps-root", ("MPS_ROOT",), str, lambda c: c.flags.mpsRoot),
    "shared_devices_allocation_policy": F(
        "--shared-devices-allocation-policy",
        ("SHARED_DEVICES_ALLOCATION_POLICY",),
        _choice(AllocationPolicy),
        lambda c: c.flags.plugin.sharedDevicesAllocationPolicy,
    ),
    "device_discovery_strategy": F(
        "--device-discovery-strategy",
        ("DEVICE_DISCOVERY_STRATEGY",),
        _choice(DiscoveryStrategy),
        lambda c: c.flags.deviceDiscoveryStrategy,
    ),
    "imex_channel_ids": F(
        "--imex-channel-ids",
        ("IMEX_CHANNEL_IDS",),
        _list(_int),
        lambda c: tuple(c.imex.channelIDs) or None,
    ),
    "imex_required": F("--imex-required", ("IMEX_REQUIRED",), bool, lambda c: c.imex.required),
    "kubelet_socket": F("--kubelet-socket", ("KUBELET_SOCKET",), str),
    "config_file": F("--config-file", ("CONFIG_FILE",), str),
    "cdi_feature_flags": F("--cdi-feature-flags", ("CDI_FEATURE_FLAGS",), _list(str)),
    "cdi_disable_hooks": F("--cdi-disable-hooks", ("CDI_DISABLE_HOOKS",), _list(str)),
}
"""Field → its flag, variables, config key and reader (``gpu_operator.settings_engine``)."""


def read_config(path: str | None) -> ConfigV1 | None:
    """The v1 config file at ``path`` (``None``: no config file); errors name the file. Shared
    by the device plugin and feature discovery, which read the same file."""
    if not path:
        return None
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the config file: {error.strerror}") from error
    config = load_config(text, source=path)
    for notice in config.ignored:
        log.warning("%s", notice)
    return config


def resolve_settings(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config: ConfigV1 | None = None,
    *,
    config_source: str = "config file",
) -> PluginSettings:
    """Settings from CLI ``flags`` (field name → parsed value or flag text; ``None`` = not
    given), ``env`` and ``config``, highest first."""
    env = env or {}
    config = config or ConfigV1()
    values = resolve(_FIELDS, flags or {}, env, config, config_source=config_source).values
    if "dev_root" not in values and "driver_root" in values:
        values["dev_root"] = values["driver_root"]
    if not values.get("device_list_strategy", True):
        raise ConfigError("DEVICE_LIST_STRATEGY: at least one device list strategy is needed")
    health = health_settings(env, config)
    settings = PluginSettings(
        **values, sharing=config.sharing, resources=config.resources, health=health
    )
    _cross_check(settings, config_source)
    return settings


def _xid_list(text: str, var: str) -> frozenset[int]:
    xids = set()
    for token in text.split(","):
        token = token.strip()
        if not token:
            continue
        # Upstream drops tokens it can't parse; a typo would silently re-enable nothing.
        if not token.isdigit() or int(token) <= 0:
            raise ConfigError(f"{var}: {token!r} is not an XID (a positive integer) or 'all'")
        xids.add(int(token))
    return frozenset(xids)


def health_settings(env: Mapping[str, str], config: ConfigV1) -> HealthSettings:
    """``DP_DISABLE_HEALTHCHECKS`` / ``DP_ENABLE_HEALTHCHECKS`` as upstream reads them, plus our
    ``DP_HEALTH_RECOVERY`` (a Go duration, or a Go boolean: true for 30s, false for never)."""
    disabled = env.get("DP_DISABLE_HEALTHCHECKS", "").strip()
    enabled_xids = _xid_list(env.get("DP_ENABLE_HEALTHCHECKS", ""), "DP_ENABLE_HEALTHCHECKS")
    tokens = {t.strip().lower() for t in disabled.split(",")}
    everything = bool(tokens & {"all", "xids"})
    if everything and not enabled_xids:
        ignored: frozenset[int] = frozenset()
        enabled = False
    else:
        enabled = True
        extra = "" if everything else disabled
        ignored = (DEFAULT_IGNORED_XIDS | _xid_list(extra, "DP_DISABLE_HEALTHCHECKS")) - (
            enabled_xids
        )
        if everything:
            # 'all' with an enable list: only the listed XIDs are checked.
            ignored = frozenset(range(1, 1024)) - enabled_xids
    recovery: float | None = None
    raw = env.get("DP_HEALTH_RECOVERY")
    if raw:
        try:
            if raw in TRUE_WORDS:
                recovery = 30.0
            elif raw not in FALSE_WORDS:
                recovery = parse_duration(raw)
        except ValueError as error:
            raise ConfigError(
                f"DP_HEALTH_RECOVERY={raw!r}: {error}; or a boolean: {ACCEPTED}"
            ) from error
    elif config.health.recoveryQuietPeriod is not None:
        recovery = parse_duration(config.health.recoveryQuietPeriod)
    return HealthSettings(enabled=enabled, ignored_xids=ignored, recovery_quiet_period_s=recovery)


def _cross_check(settings: PluginSettings, source: str) -> None:
    strategies = settings.device_list_strategy
    if "cdi-annotations" in strategies and "cdi-cri" in strategies:
        raise ConfigError(
            "DEVICE_LIST_STRATEGY: cdi-annotations and cdi-cri can't be combined "
            "(the kubelet already turns cdi_devices into annotations)"
        )
    if settings.device_discovery_strategy == "tegra":
        raise ConfigError("DEVICE_DISCOVERY_STRATEGY: tegra is not supported; use auto or nvml")
    if settings.imex_required and not settings.imex_channel_ids:
        raise ConfigError("IMEX_REQUIRED: IMEX channels are required but none are configured")
    mps = settings.sharing.mps
    if mps is not None:
        if settings.mig_strategy == "mixed":
            raise ConfigError(f"{source}: using --mig-strategy=mixed is not supported with MPS")
        if not settings.mps_root:
            raise ConfigError(f"{source}: using MPS requires --mps-root (MPS_ROOT)")
