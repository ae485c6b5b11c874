"""Feature discovery's settings: one frozen object, resolved with upstream's precedence
(command-line flag > environment variable > config file > default), flags and variables spelled
as gpu-feature-discovery spells them.

``resolve_settings(flags, env, config)`` is pure; ``load_settings`` reads the config file that
``--config-file`` / ``GFD_CONFIG_FILE`` / ``CONFIG_FILE`` names (the device plugin's v1 file,
whose ``flags.gfd`` section is ours to read).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from gpu_operator.deviceplugin.config_v1 import (
    ConfigV1,
    MigStrategy,
    Resources,
    Sharing,
    parse_duration,
)
from gpu_operator.deviceplugin.settings import read_config
from gpu_operator.names import NFD_FEATURES_DIR
from gpu_operator.settings_engine import Field, resolve

DEFAULT_OUTPUT_FILE = f"{NFD_FEATURES_DIR}/gfd"
DEFAULT_MACHINE_TYPE_FILE = "/sys/class/dmi/id/product_name"


@dataclass(frozen=True)
class DiscoverySettings:
    """How ``gpu-operator feature-discovery`` runs (upstream env var in brackets)."""

    mig_strategy: MigStrategy = "none"
    """How MIG devices are labelled [GFD_MIG_STRATEGY, MIG_STRATEGY]."""
    fail_on_init_error: bool = True
    """Exit when NVML can't start; false: label nothing and wait [GFD_FAIL_ON_INIT_ERROR]."""
    oneshot: bool = False
    """Label once and exit [GFD_ONESHOT]."""
    no_timestamp: bool = False
    """Leave out ``nvidia.com/gfd.timestamp`` [GFD_NO_TIMESTAMP]."""
    sleep_interval_s: float | None = 60.0
    """Seconds between labelling runs; ``None`` = ``infinite`` (label once, then wait for a
    signal) [GFD_SLEEP_INTERVAL, a Go duration]."""
    output_file: str = DEFAULT_OUTPUT_FILE
    """NFD local feature file; ``""`` or ``-`` = stdout [GFD_OUTPUT_FILE]."""
    machine_type_file: Path = Path(DEFAULT_MACHINE_TYPE_FILE)
    """Where ``nvidia.com/gpu.machine`` comes from [GFD_MACHINE_TYPE_FILE]."""
    use_node_feature_api: bool = True
    """Write a ``NodeFeature`` object instead of the file (upstream default since v0.19.0)
    [GFD_USE_NODE_FEATURE_API, USE_NODE_FEATURE_API]. Ours: when it is not set anywhere, an
    output file given by flag or environment selects the file writer (asking for a file means
    a file; upstream would ignore it)."""
    write_node_labels: bool = False
    """Ours, for clusters without NFD: patch the node's labels directly, touching only the
    ``nvidia.com/`` keys this writer owns [GPU_OPERATOR_GFD_NODE_LABELS]."""
    config_file: str | None = None
    """The device plugin's v1 config [GFD_CONFIG_FILE, CONFIG_FILE]."""
    node_name: str | None = None
    """This node [NODE_NAME]; needed by the NodeFeature and node-label writers."""
    namespace: str = "default"
    """Where the NodeFeature object lives [NAMESPACE]."""
    pod_name: str | None = None
    """This pod, for the NodeFeature's owner references [POD_NAME]."""
    sharing: Sharing = field(default_factory=Sharing)
    """From the config file only."""
    resources: Resources = field(default_factory=Resources)
    """From the config file only."""

    @property
    def to_stdout(self) -> bool:
        return self.output_file in ("", "-")


def _strategy(text: str) -> str:
    if text not in get_args(MigStrategy):
        raise ValueError(f"{text!r} is not one of {', '.join(get_args(MigStrategy))}")
    return text


def _interval(text: str) -> float | None:
    if text.strip() == "infinite":
        return None
    seconds = parse_duration(text.strip())
    if seconds <= 0:
        raise ValueError(f"{text!r} must be positive (or 'infinite')")
    return seconds


F = Field[ConfigV1]
_FIELDS: dict[str, F] = {
    "mig_strategy": F(
        "--mig-strategy",
        ("GFD_MIG_STRATEGY", "MIG_STRATEGY"),
        _strategy,
        lambda c: c.flags.migStrategy,
    ),
    "fail_on_init_error": F(
        "--fail-on-init-error",
        ("GFD_FAIL_ON_INIT_ERROR",),
        bool,
        lambda c: c.flags.failOnInitError,
    ),
    "oneshot": F("--oneshot", ("GFD_ONESHOT",), bool, lambda c: c.flags.gfd.oneshot),
    "no_timestamp": F(
        "--no-timestamp", ("GFD_NO_TIMESTAMP",), bool, lambda c: c.flags.gfd.noTimestamp
    ),
    "sleep_interval_s": F(
        "--sleep-interval", ("GFD_SLEEP_INTERVAL",), _interval, lambda c: c.flags.gfd.sleepInterval
    ),
    "output_file": F("--output-file", ("GFD_OUTPUT_FILE",), str, lambda c: c.flags.gfd.outputFile),
    "machine_type_file": F(
        "--machine-type-file",
        ("GFD_MACHINE_TYPE_FILE",),
        Path,
        lambda c: c.flags.gfd.machineTypeFile,
    ),
    "use_node_feature_api": F(
        "--use-node-feature-api",
        ("GFD_USE_NODE_FEATURE_API", "USE_NODE_FEATURE_API"),
        bool,
        lambda c: c.flags.useNodeFeatureAPI,
    ),
    "write_node_labels": F("--write-node-labels", ("GPU_OPERATOR_GFD_NODE_LABELS",), bool),
    "config_file": F("--config-file", ("GFD_CONFIG_FILE", "CONFIG_FILE"), str),
    "node_name": F("--node-name", ("NODE_NAME",), str),
    "namespace": F("--namespace", ("NAMESPACE",), str),
    "pod_name": F("--pod-name", ("POD_NAME",), str),
}
"""Field → its flag, variables, config key and reader (``gpu_operator.settings_engine``)."""
FLAG_ENV = {name: field.env for name, field in _FIELDS.items()}
"""Field → env vars, for the CLI's help and tests."""


def resolve_settings(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config: ConfigV1 | None = None,
) -> DiscoverySettings:
    """Settings from CLI ``flags`` (field → text or value; ``None`` = not given), ``env`` and
    ``config``, highest first; ``ConfigError`` names the flag or variable of a bad value."""
    config = config or ConfigV1()
    resolved = resolve(_FIELDS, flags or {}, env or {}, config)
    values = resolved.values
    if "use_node_feature_api" not in resolved.sources and resolved.given_by_user("output_file"):
        values["use_node_feature_api"] = False
    if values.get("namespace") == "":
        values["namespace"] = "default"
    for optional in ("node_name", "pod_name", "config_file"):
        if values.get(optional) == "":
            values[optional] = None
    return DiscoverySettings(**values, sharing=config.sharing, resources=config.resources)


def load_settings(
    flags: Mapping[str, Any],
    env: Mapping[str, str],
    locate: Callable[[str], str] = lambda path: path,
) -> DiscoverySettings:
    """Resolve settings, reading the config file the flags or environment name (at
    ``locate(path)``: where this host has a container path)."""
    path = flags.get("config_file") or next(
        (env[e] for e in FLAG_ENV["config_file"] if env.get(e)), None
    )
    return resolve_settings(flags, env, read_config(locate(path) if path else None))
