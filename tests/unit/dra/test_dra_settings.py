"""The DRA driver's settings as upstream's gpu-kubelet-plugin takes them: flag > variable >
default, upstream's variable aliases in order, a missing node name or a relative path refused in
one line naming the flag or variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpu_operator.dra.settings import resolve_settings
from gpu_operator.errors import ConfigError


def test_defaults_are_upstreams() -> None:
    settings = resolve_settings({}, {"NODE_NAME": "n1"})
    assert (settings.node_name, settings.namespace, settings.cdi_root) == (
        "n1",
        "default",
        "/etc/cdi",
    )
    assert settings.driver_root == "/"
    assert settings.container_driver_root == "/driver-root"
    assert settings.kubelet_registrar_directory_path == "/var/lib/kubelet/plugins_registry"
    assert settings.plugin_dir == Path("/var/lib/kubelet/plugins/gpu.nvidia.com")
    assert settings.health.is_critical(48)
    assert not settings.health.is_critical(13)


def test_a_flag_beats_its_variable_and_the_first_alias_set_wins() -> None:
    settings = resolve_settings(
        {"cdi_root": "/run/cdi", "node_name": None},
        {
            "NODE_NAME": "n2",
            "CDI_ROOT": "/var/run/cdi",
            "HOST_DRIVER_ROOT": "/run/nvidia/driver",
            "DRIVER_ROOT_CTR_PATH": "/a",
            "CONTAINER_DRIVER_ROOT": "/b",
            "KUBELET_PLUGINS_DIRECTORY_PATH": "/k/plugins",
            "DP_DISABLE_HEALTHCHECKS": "48",
        },
    )
    assert settings.node_name == "n2"
    assert settings.cdi_root == "/run/cdi"
    assert settings.driver_root == "/run/nvidia/driver"
    assert settings.container_driver_root == "/a"
    assert settings.plugin_dir == Path("/k/plugins/gpu.nvidia.com")
    assert not settings.health.is_critical(48)


@pytest.mark.parametrize(
    ("flags", "env", "message"),
    [
        ({}, {}, "--node-name (NODE_NAME): required, the name of this node"),
        ({}, {"NODE_NAME": "n", "CDI_ROOT": "cdi"}, "CDI_ROOT: 'cdi' is not an absolute path"),
        (
            {"kubelet_plugins_directory_path": "plugins"},
            {"NODE_NAME": "n"},
            "--kubelet-plugins-directory-path: 'plugins' is not an absolute path",
        ),
        (
            {},
            {"NODE_NAME": "n", "DP_DISABLE_HEALTHCHECKS": "4x"},
            "DP_DISABLE_HEALTHCHECKS: '4x' is not an XID (a positive integer) or 'all'",
        ),
    ],
)
def test_bad_input_is_one_line_naming_where(
    flags: dict[str, str], env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        resolve_settings(flags, env)
    assert str(error.value) == message
