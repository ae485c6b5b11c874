"""The v1 config file and the settings: strict parsing with errors that name file, line and
key; flag > env > file precedence; upstream's health-check environment variables."""

from __future__ import annotations

import pytest

from gpu_operator.deviceplugin.config_v1 import load_config
from gpu_operator.deviceplugin.settings import (
    DEFAULT_IGNORED_XIDS,
    PluginSettings,
    health_settings,
    resolve_settings,
)
from gpu_operator.errors import ConfigError

pytestmark = pytest.mark.timeout(10)

FULL = """\
version: v1
flags:
  migStrategy: mixed
  failOnInitError: false
  nvidiaDriverRoot: /run/nvidia/driver
  mpsRoot: /run/nvidia/mps
  gdrcopyEnabled: true
  plugin:
    passDeviceSpecs: true
    deviceListStrategy: [envvar, cdi-cri]
    deviceIDStrategy: index
    sharedDevicesAllocationPolicy: packed
  gfd:
    oneshot: true
    sleepInterval: 60s
resources:
  gpus: [{pattern: "*", name: gpu}]
sharing:
  timeSlicing:
    renameByDefault: true
    resources:
    - name: gpu
      replicas: 10
imex:
  channelIDs: [0]
"""


def test_a_full_upstream_config_parses_with_short_resource_names_qualified() -> None:
    config = load_config(FULL, source="plugin.yaml")
    assert config.flags.migStrategy == "mixed"
    assert config.flags.plugin.deviceListStrategy == ["envvar", "cdi-cri"]
    assert config.sharing.timeSlicing is not None
    assert config.sharing.timeSlicing.resources[0].name == "nvidia.com/gpu"
    assert config.sharing.timeSlicing.resources[0].replicas == 10


def test_an_empty_version_means_v1_and_a_single_list_strategy_string_is_a_list() -> None:
    config = load_config("version: ''\nflags:\n  plugin:\n    deviceListStrategy: volume-mounts\n")
    assert config.version == "v1"
    assert config.flags.plugin.deviceListStrategy == ["volume-mounts"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "version: v2\n", "plugin.yaml:1: version: 'v2' is not allowed", id="wrong version"
        ),
        pytest.param(
            "version: v1\nflags:\n  migStrategy: mixd\n",
            "plugin.yaml:3: flags.migStrategy: 'mixd' is not allowed",
            id="misspelt MIG strategy",
        ),
        pytest.param(
            "version: v1\nflags:\n  renameByDefault: true\n",
            "plugin.yaml:3: flags.renameByDefault: unknown key",
            id="renameByDefault under flags (upstream issue 1433)",
        ),
        pytest.param(
            "sharing:\n  timeSlicing:\n    resources:\n    - name: gpu\n      replicas: 1\n",
            "plugin.yaml:5: sharing.timeSlicing.resources[0].replicas: Input should be greater "
            "than or equal to 2",
            id="one replica",
        ),
        pytest.param(
            "imex:\n  channelIDs: [1]\n",
            "plugin.yaml:2: imex.channelIDs: only [] or [0] are valid channel ids",
            id="imex channel 1",
        ),
        pytest.param("flags: [1\n", "plugin.yaml:2: not valid YAML or JSON", id="broken YAML"),
    ],
)
def test_a_bad_config_is_refused_naming_file_line_and_key(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(text, source="plugin.yaml")
    assert str(caught.value).startswith(expected)


def test_without_flags_env_or_file_the_settings_are_upstreams_defaults() -> None:
    settings = resolve_settings()
    assert settings == PluginSettings()
    assert settings.mig_strategy == "none"
    assert settings.fail_on_init_error is True
    assert settings.device_list_strategy == ("envvar",)
    assert settings.kubelet_socket == "/var/lib/kubelet/device-plugins/kubelet.sock"
    assert settings.health.ignored_xids == {13, 31, 43, 45, 68, 109}


def test_a_flag_beats_the_environment_which_beats_the_file() -> None:
    config = load_config(FULL)
    from_file = resolve_settings(config=config)
    assert from_file.mig_strategy == "mixed"
    assert from_file.device_id_strategy == "index"
    from_env = resolve_settings(env={"MIG_STRATEGY": "single"}, config=config)
    assert from_env.mig_strategy == "single"
    from_flag = resolve_settings({"mig_strategy": "none"}, {"MIG_STRATEGY": "single"}, config)
    assert from_flag.mig_strategy == "none"


def test_environment_values_are_parsed_as_upstream_spells_them() -> None:
    settings = resolve_settings(
        env={
            "FAIL_ON_INIT_ERROR": "false",
            "PASS_DEVICE_SPECS": "true",
            "DEVICE_LIST_STRATEGY": "volume-mounts,cdi-cri",
            "NVIDIA_DRIVER_ROOT": "/run/nvidia/driver",
            "NVIDIA_CTK_PATH": "/usr/local/bin/nvidia-ctk",
            "CONTAINER_DRIVER_ROOT": "/host-driver",
            "IMEX_CHANNEL_IDS": "0",
        }
    )
    assert settings.fail_on_init_error is False
    assert settings.pass_device_specs is True
    assert settings.device_list_strategy == ("volume-mounts", "cdi-cri")
    assert settings.dev_root == "/run/nvidia/driver"  # follows the driver root
    assert settings.nvidia_cdi_hook_path == "/usr/local/bin/nvidia-ctk"
    assert settings.driver_root_ctr_path == "/host-driver"
    assert settings.imex_channel_ids == (0,)


@pytest.mark.parametrize(
    ("flags", "env", "expected"),
    [
        ({}, {"MIG_STRATEGY": "mix"}, "MIG_STRATEGY: 'mix' is not one of none, single, mixed"),
        ({"device_id_strategy": "serial"}, {}, "--device-id-strategy: 'serial' is not one of"),
        (
            {},
            {"PASS_DEVICE_SPECS": "maybe"},
            "PASS_DEVICE_SPECS='maybe': not a boolean; use one of",
        ),
        (
            {"device_list_strategy": "cdi-annotations,cdi-cri"},
            {},
            "DEVICE_LIST_STRATEGY: cdi-annotations and cdi-cri can't be combined",
        ),
        ({}, {"DEVICE_DISCOVERY_STRATEGY": "tegra"}, "DEVICE_DISCOVERY_STRATEGY: tegra is not"),
        ({"imex_required": "true"}, {}, "IMEX_REQUIRED: IMEX channels are required"),
    ],
    ids=["bad env", "bad flag", "bad boolean", "two CDI strategies", "tegra", "IMEX required"],
)
def test_bad_flags_and_variables_name_themselves(
    flags: dict[str, str], env: dict[str, str], expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_settings(flags, env)
    assert str(caught.value).startswith(expected)


def test_mps_is_refused_with_the_mixed_strategy_and_needs_an_mps_root() -> None:
    mps = "sharing:\n  mps:\n    resources:\n    - name: gpu\n      replicas: 2\n"
    with pytest.raises(ConfigError, match="using --mig-strategy=mixed is not supported with MPS"):
        resolve_settings({"mig_strategy": "mixed", "mps_root": "/run/mps"}, {}, load_config(mps))
    with pytest.raises(ConfigError, match="using MPS requires --mps-root"):
        resolve_settings({}, {}, load_config(mps))


@pytest.mark.parametrize(
    ("env", "critical", "ignored", "enabled"),
    [
        pytest.param({}, {48, 79, 94}, DEFAULT_IGNORED_XIDS, True, id="defaults"),
        pytest.param(
            {"DP_DISABLE_HEALTHCHECKS": "94,109"}, {48}, {94, 13, 109}, True, id="extra ignored"
        ),
        pytest.param(
            {"DP_ENABLE_HEALTHCHECKS": "13,31"}, {13, 31, 48}, {43, 45, 68, 109}, True, id="forced"
        ),
        pytest.param({"DP_DISABLE_HEALTHCHECKS": "all"}, set(), {48, 79}, False, id="all off"),
        pytest.param(
            {"DP_DISABLE_HEALTHCHECKS": "xids", "DP_ENABLE_HEALTHCHECKS": "48"},
            {48},
            {79, 13, 94},
            True,
            id="all off but 48",
        ),
    ],
)
def test_health_check_variables_choose_the_critical_xids(
    env: dict[str, str], critical: set[int], ignored: set[int], enabled: bool
) -> None:
    health = health_settings(env, load_config(""))
    assert health.enabled is enabled
    assert all(health.is_critical(x) for x in critical)
    assert not any(health.is_critical(x) for x in ignored)


def test_a_bad_xid_token_is_an_error_not_silently_dropped() -> None:
    with pytest.raises(ConfigError, match="DP_DISABLE_HEALTHCHECKS: '9x4' is not an XID"):
        health_settings({"DP_DISABLE_HEALTHCHECKS": "9x4"}, load_config(""))


def test_health_recovery_is_off_by_default_and_set_by_env_or_config() -> None:
    assert health_settings({}, load_config("")).recovery_quiet_period_s is None
    assert (
        health_settings({"DP_HEALTH_RECOVERY": "true"}, load_config("")).recovery_quiet_period_s
        == 30
    )
    from_file = load_config("health:\n  recoveryQuietPeriod: 2m\n")
    assert health_settings({}, from_file).recovery_quiet_period_s == 120
    assert (
        health_settings({"DP_HEALTH_RECOVERY": "500ms"}, from_file).recovery_quiet_period_s == 0.5
    )
    with pytest.raises(ConfigError, match="DP_HEALTH_RECOVERY"):
        health_settings({"DP_HEALTH_RECOVERY": "soon"}, from_file)


def test_boolean_flags_are_taken_bare_or_with_a_value_as_urfave_cli_does() -> None:
    import typer

    from gpu_operator.commands.device_plugin import bool_flags

    assert bool_flags(["--pass-device-specs", "--fail-on-init-error=false"]) == {
        "pass_device_specs": "true",
        "fail_on_init_error": "false",
    }
    with pytest.raises(typer.BadParameter, match="no such option: --pass-devices"):
        bool_flags(["--pass-devices"])
