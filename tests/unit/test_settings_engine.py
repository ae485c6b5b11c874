"""The one precedence engine: flag > environment variable (first alias set wins) > config file >
default, each value read at one place, a bad one named by its flag, variable or config key (a
boolean with Go's accepted words), and where each value came from."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from gpu_operator.driver.manager import ManagerSettings as DriverManagerSettings
from gpu_operator.errors import ConfigError
from gpu_operator.mig.manager import ManagerSettings as MigManagerSettings
from gpu_operator.settings_engine import Field, from_env, resolve, variable


@dataclass
class Config:
    strategy: str | None = None
    verbose: bool | None = None
    items: list[str] | None = None


def _upper(text: str) -> str:
    if not text.isalpha():
        raise ValueError(f"{text!r} is not a word")
    return text.upper()


F = Field[Config]
FIELDS = {
    "strategy": F("--strategy", ("NEW_STRATEGY", "OLD_STRATEGY"), _upper, lambda c: c.strategy),
    "verbose": F("--verbose", ("VERBOSE",), bool, lambda c: c.verbose),
    "items": F("--items", ("ITEMS",), lambda t: tuple(t.split(",")), lambda c: c.items),
    "socket": F("--socket", ("SOCKET",), str),
}


def test_a_flag_beats_a_variable_which_beats_the_file_which_beats_the_default() -> None:
    config = Config(strategy="file", verbose=True)
    env = {"OLD_STRATEGY": "env"}

    assert resolve(FIELDS, {"strategy": "flag"}, env, config).values["strategy"] == "FLAG"
    assert resolve(FIELDS, {"strategy": None}, env, config).values["strategy"] == "ENV"
    assert resolve(FIELDS, {}, {}, config).values["strategy"] == "FILE"
    assert "strategy" not in resolve(FIELDS, {}, {}, Config()).values, "left to the default"


def test_the_first_variable_set_wins_and_sources_are_reported() -> None:
    resolved = resolve(
        FIELDS,
        {"verbose": "false"},
        {"NEW_STRATEGY": "new", "OLD_STRATEGY": "old"},
        Config(items=["a", "b"]),
    )

    assert resolved.values == {"strategy": "NEW", "verbose": False, "items": ("a", "b")}
    assert resolved.sources == {"strategy": "env", "verbose": "flag", "items": "config"}
    assert resolved.given_by_user("strategy")
    assert resolved.given_by_user("verbose")
    assert not resolved.given_by_user("items")
    assert not resolved.given_by_user("socket")


def test_an_already_read_flag_value_is_taken_as_it_is() -> None:
    assert resolve(FIELDS, {"verbose": True}, {"VERBOSE": "0"}, Config()).values["verbose"] is True


def test_an_empty_string_variable_is_a_value_but_an_empty_boolean_is_unset() -> None:
    resolved = resolve(FIELDS, {}, {"SOCKET": "", "VERBOSE": ""}, Config(verbose=True))

    assert resolved.values["socket"] == "", "'' means something (e.g. serve, don't register)"
    assert resolved.values["verbose"] is True
    assert resolved.sources["verbose"] == "config"


@pytest.mark.parametrize(
    ("flags", "env", "config", "message"),
    [
        pytest.param(
            {},
            {"VERBOSE": "yes"},
            Config(),
            "VERBOSE='yes': not a boolean; use one of 1, t, T, TRUE, true, True "
            "or 0, f, F, FALSE, false, False",
            id="variable",
        ),
        pytest.param(
            {"verbose": "on"}, {}, Config(), "--verbose='on': not a boolean; use one of", id="flag"
        ),
        pytest.param({}, {"OLD_STRATEGY": "a-b"}, Config(), "OLD_STRATEGY: 'a-b' is not a word"),
        pytest.param(
            {},
            {},
            Config(strategy="x1"),
            "plugin.yaml: strategy: 'x1' is not a word",
            id="config key",
        ),
    ],
)
def test_a_bad_value_is_one_line_naming_where_it_came_from(
    flags: dict[str, str], env: dict[str, str], config: Config, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve(FIELDS, flags, env, config, config_source="plugin.yaml")

    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_an_agent_without_flags_reads_its_variables_first_set_wins_empty_unset() -> None:
    fields = {
        "root": variable("DRIVER_ROOT_CTR_PATH", "NVIDIA_DRIVER_ROOT"),
        "socket": variable("SOCKET", empty_is_unset=False),
        "wait_s": variable("WAIT_SECONDS", parse=float),
    }

    assert from_env(fields, {"DRIVER_ROOT_CTR_PATH": "", "NVIDIA_DRIVER_ROOT": "/run"}) == {
        "root": "/run"
    }
    assert from_env(fields, {"SOCKET": "", "WAIT_SECONDS": ""}) == {"socket": ""}
    with pytest.raises(ConfigError, match=r"^WAIT_SECONDS: could not convert"):
        from_env(fields, {"WAIT_SECONDS": "soon"})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        pytest.param({}, "NODE_NAME must be set to the name of this node", id="no node"),
        pytest.param(
            {"NODE_NAME": "n", "MAX_WAIT_SECONDS": "soon"},
            "MAX_WAIT_SECONDS: 'soon' is not seconds, e.g. 300 or 300s",
            id="seconds",
        ),
        pytest.param(
            {"NODE_NAME": "n", "DRAIN_TIMEOUT_SECONDS": "-1s"},
            "DRAIN_TIMEOUT_SECONDS: '-1s' must be 0 or more",
            id="negative",
        ),
    ],
)
def test_the_driver_manager_reads_its_variables_through_the_engine(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        DriverManagerSettings.from_env(env)
    assert str(caught.value) == message


def test_the_driver_manager_s_empty_variables_keep_their_defaults() -> None:
    settings = DriverManagerSettings.from_env(
        {"NODE_NAME": "n", "OPERATOR_NAMESPACE": "", "HOST_ROOT": "", "MAX_WAIT_SECONDS": "90s"}
    )
    assert settings == DriverManagerSettings(node_name="n", max_wait_s=90.0)


def test_the_mig_manager_reads_its_variables_through_the_engine() -> None:
    settings = MigManagerSettings.from_env(
        {
            "NODE_NAME": "n",
            "WITH_REBOOT": "true",
            "MIG_MANAGER_POD_WAIT_S": "5",
            "DRIVER_ROOT_CTR_PATH": "",
            "NVIDIA_DRIVER_ROOT": "/run/nvidia/driver-host",
            "HOST_ROOT_MOUNT": "",
        }
    )
    assert settings.protocol.with_reboot is True
    assert settings.protocol.pod_wait_s == 5.0
    assert str(settings.driver_root) == "/run/nvidia/driver-host", "the next variable set"
    assert str(settings.host_root) == "/host", "empty: the default"
    with pytest.raises(ConfigError, match=r"^MIG_MANAGER_RETRY_BASE_S: could not convert"):
        MigManagerSettings.from_env({"NODE_NAME": "n", "MIG_MANAGER_RETRY_BASE_S": "x"})
