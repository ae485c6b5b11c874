"""config-manager's selection of a node's named config, its install, and how it finds the
process to signal (that, and the init container run as a process: tests/cli/deviceplugin)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpu_operator.deviceplugin.configselect import (
    EMPTY,
    available,
    install,
    parse_fallbacks,
    select,
)
from gpu_operator.errors import ConfigError
from helpers.deviceplugin_configs import configmap_volume

LABEL = "nvidia.com/device-plugin.config"
WHERE = f"label {LABEL} on node n1"


@pytest.fixture
def srcdir(tmp_path: Path) -> Path:
    return configmap_volume(tmp_path)


def test_available_lists_the_keys_and_not_the_kubelet_links(srcdir: Path) -> None:
    assert available(srcdir) == ["default", "ts-4"]


def test_a_missing_source_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"CONFIG_FILE_SRCDIR .*/nope: no such directory"):
        available(tmp_path / "nope")


def test_the_label_wins_over_the_default_and_the_default_over_fallbacks() -> None:
    names = ["a", "b", "default"]
    assert select("b", "a", ["named"], names, where=WHERE).name == "b"
    assert select("", "a", ["named"], names, where=WHERE).name == "a"
    assert select("", "", ["named"], names, where=WHERE).name == "default"


def test_fallbacks_are_tried_in_order() -> None:
    assert select("", "", ["named", "single"], ["only"], where=WHERE).name == "only"
    assert select("", "", ["single", "empty"], ["a", "b"], where=WHERE).name == EMPTY
    with pytest.raises(ConfigError, match=r"no fallback strategy \(named, single\) chose"):
        select("", "", ["named", "single"], ["a", "b"], where=WHERE)


def test_a_label_naming_a_missing_config_names_the_label_and_what_exists() -> None:
    with pytest.raises(ConfigError) as error:
        select("ts-8", "", ["named"], ["default", "ts-4"], where=WHERE)
    assert str(error.value) == (
        "label nvidia.com/device-plugin.config on node n1 asks for config 'ts-8', which the "
        "ConfigMap does not have (it has: default, ts-4)"
    )


def test_a_missing_default_config_is_an_error_too() -> None:
    with pytest.raises(ConfigError, match=r"DEFAULT_CONFIG 'x' is not in the ConfigMap"):
        select("", "x", [], ["a"], where=WHERE)


def test_unknown_fallback_strategies_are_refused() -> None:
    assert parse_fallbacks(" named, single ") == ("named", "single")
    with pytest.raises(ConfigError, match="unknown strategy newest"):
        parse_fallbacks("named,newest")


def test_install_reports_a_change_only_when_the_content_differs(
    srcdir: Path, tmp_path: Path
) -> None:
    dst = tmp_path / "config" / "config.yaml"
    ts = select("ts-4", "", [], available(srcdir), where=WHERE)
    assert install(srcdir, ts, dst) is True
    assert dst.read_text() == (srcdir / "ts-4").read_text()
    assert install(srcdir, ts, dst) is False
    assert install(srcdir, select("", "", ["empty"], [], where=WHERE), dst) is True
    assert dst.read_bytes() == b""
    assert sorted(p.name for p in dst.parent.iterdir()) == ["config.yaml"]
