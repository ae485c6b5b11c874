"""Every agent reads a boolean setting with the one parser (``gpu_operator.booleans``): Go's
words are taken, a word another parser used to accept (``yes``, ``on``) is refused in one line
naming the flag or variable and the accepted words, whichever agent reads it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from gpu_operator import cli_params
from gpu_operator.deviceplugin.config_v1 import load_config
from gpu_operator.deviceplugin.settings import health_settings
from gpu_operator.deviceplugin.settings import resolve_settings as plugin_settings
from gpu_operator.discovery.settings import resolve_settings as discovery_settings
from gpu_operator.driver.manager import ManagerSettings
from gpu_operator.errors import ConfigError
from gpu_operator.toolkit.runtime_config import ShimSettings
from gpu_operator.toolkit.settings import ToolkitSettings

WORDS = "use one of 1, t, T, TRUE, true, True or 0, f, F, FALSE, false, False"

READERS: list[tuple[str, Callable[[dict[str, str]], Any]]] = [
    ("PASS_DEVICE_SPECS", lambda env: plugin_settings(env=env)),
    ("GFD_ONESHOT", lambda env: discovery_settings(env=env)),
    ("CDI_ENABLED", ToolkitSettings.from_env),
    ("ACCEPT_NVIDIA_VISIBLE_DEVICES_AS_VOLUME_MOUNTS", ShimSettings.from_env),
    ("ENABLE_AUTO_DRAIN", lambda env: ManagerSettings.from_env({"NODE_NAME": "n", **env})),
]


@pytest.mark.parametrize(("variable", "read"), READERS, ids=[v for v, _ in READERS])
@pytest.mark.parametrize("word", ["yes", "on", "y"])
def test_a_word_outside_go_s_is_refused_naming_the_variable_and_the_words(
    variable: str, read: Callable[[dict[str, str]], Any], word: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        read({variable: word})
    assert str(caught.value) == f"{variable}={word!r}: not a boolean; {WORDS}"


@pytest.mark.parametrize(("variable", "read"), READERS, ids=[v for v, _ in READERS])
def test_go_s_words_are_taken(variable: str, read: Callable[[dict[str, str]], Any]) -> None:
    read({variable: "T"})
    read({variable: "False"})


def test_the_plugin_s_health_recovery_takes_a_duration_or_a_go_boolean() -> None:
    config = load_config("")
    assert health_settings({"DP_HEALTH_RECOVERY": "T"}, config).recovery_quiet_period_s == 30.0
    assert health_settings({"DP_HEALTH_RECOVERY": "0"}, config).recovery_quiet_period_s is None
    with pytest.raises(ConfigError, match=r"DP_HEALTH_RECOVERY='on': .* or a boolean: 1, t"):
        health_settings({"DP_HEALTH_RECOVERY": "on"}, config)


def test_typer_boolean_options_read_go_s_words() -> None:
    assert cli_params._to_bool("True") is True
    assert cli_params._to_bool("0") is False
    with pytest.raises(ValueError, match=f"'yes' is not a boolean; {WORDS}"):
        cli_params._to_bool("yes")
