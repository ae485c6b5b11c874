"""The device plugin's and feature discovery's command lines read without typer (issue 15):
the plain tables name exactly the options the typer commands declare (so ``--help`` and the
process agree), the forms typer took are taken, anything else is a usage error, and a value
reaches its settings field (``--sleep-interval`` did not, through typer: its key was not the
field's)."""

from __future__ import annotations

from typing import Any

import pytest
import typer
import typer.main

from gpu_operator.commands.device_plugin import device_plugin_command
from gpu_operator.commands.feature_discovery import feature_discovery_command
from gpu_operator.deviceplugin import process as plugin
from gpu_operator.deviceplugin.argv import UsageError
from gpu_operator.deviceplugin.settings import resolve_settings as plugin_settings
from gpu_operator.discovery import process as discovery
from gpu_operator.discovery.settings import resolve_settings as discovery_settings
from gpu_operator.errors import ConfigError


def _declared(command: Any) -> dict[str, str]:
    app = typer.Typer(add_completion=False)
    app.command()(command)
    return {
        opt: str(param.name)
        for param in typer.main.get_command(app).params
        if param.name != "ctx"
        for opt in param.opts
    }


def test_the_plain_tables_are_the_typer_commands_options() -> None:
    assert _declared(device_plugin_command) == plugin.OPTIONS
    declared = _declared(feature_discovery_command)
    declared["--sleep-interval"] = "sleep_interval_s"  # the field it sets
    assert declared == discovery.OPTIONS


def test_values_are_taken_spaced_or_joined_and_the_last_one_wins() -> None:
    flags = plugin.parse_args(
        [
            "--mig-strategy",
            "single",
            "--nvidia-driver-root=/run/nvidia/driver",
            "--mig-strategy=mixed",
        ]
    )
    assert flags["mig_strategy"] == "mixed"
    assert flags["driver_root"] == "/run/nvidia/driver"
    assert flags["config_file"] is None
    settings = plugin_settings(flags, {})
    assert (settings.mig_strategy, settings.dev_root) == ("mixed", "/run/nvidia/driver")


def test_boolean_flags_are_bare_or_valued_and_read_by_the_settings() -> None:
    flags = plugin.parse_args(["--pass-device-specs", "--fail-on-init-error=false"])
    settings = plugin_settings(flags, {})
    assert settings.pass_device_specs is True
    assert settings.fail_on_init_error is False
    with pytest.raises(ConfigError, match="--gds-enabled"):
        plugin_settings(plugin.parse_args(["--gds-enabled=maybe"]), {})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pass-devices"], "no such option: --pass-devices"),
        (["--mig-strategy"], "option --mig-strategy requires an argument"),
        (["mixed"], "no such option: mixed"),
        (["-h"], "no such option: -h"),
    ],
)
def test_anything_else_is_a_usage_error(args: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        plugin.parse_args(args)


def test_feature_discovery_flags_reach_their_fields() -> None:
    flags = discovery.parse_args(
        ["-o", "/tmp/gfd", "--sleep-interval", "1h", "--oneshot", "--no-use-node-feature-api"]
    )
    settings = discovery_settings(flags, {})
    assert settings.output_file == "/tmp/gfd"
    assert settings.sleep_interval_s == 3600.0
    assert settings.oneshot is True
    assert settings.use_node_feature_api is False
    assert discovery.parse_args(["-o/tmp/x"])["output_file"] == "/tmp/x"  # as click took it
    assert discovery.parse_args(["-o=/tmp/y"])["output_file"] == "/tmp/y"  # as urfave/cli
    with pytest.raises(ConfigError, match="--oneshot"):
        discovery.parse_args(["--oneshot=maybe"])
    with pytest.raises(UsageError, match="no such option: --no-oneshot"):
        discovery.parse_args(["--no-oneshot"])
