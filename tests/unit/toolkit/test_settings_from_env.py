"""The installer's settings resolve through the one settings engine: every variable it reads is
in its table (``variables(runtime)`` and the shim's ``VARIABLES``), the runtime's own aliases
count only for that runtime, the first variable set wins, an empty one is unset, and a bad
value is refused in one line naming the variable and what it accepts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gpu_operator.errors import ConfigError
from gpu_operator.toolkit import runtime_config
from gpu_operator.toolkit.runtime_config import ShimSettings
from gpu_operator.toolkit.settings import RUNTIMES, ToolkitSettings, variables

GO_WORDS = "use one of 1, t, T, TRUE, true, True or 0, f, F, FALSE, false, False"

REFUSED = [
    (
        {"RUNTIME_RESTART_MODE": "sometimes"},
        "RUNTIME_RESTART_MODE='sometimes': expected one of signal, systemd, none",
    ),
    ({"CDI_ENABLED": "yesplease"}, f"CDI_ENABLED='yesplease': not a boolean; {GO_WORDS}"),
    ({"ENABLE_CDI": "on"}, f"ENABLE_CDI='on': not a boolean; {GO_WORDS}"),
    ({"NO_DAEMON": "no"}, f"NO_DAEMON='no': not a boolean; {GO_WORDS}"),
    ({"NO_RUNTIME_CONFIG": "y"}, f"NO_RUNTIME_CONFIG='y': not a boolean; {GO_WORDS}"),
    (
        {"RUNTIME": "containerd", "CONTAINERD_SET_AS_DEFAULT": "yes"},
        f"CONTAINERD_SET_AS_DEFAULT='yes': not a boolean; {GO_WORDS}",
    ),
    ({"RUNTIME": "podman"}, "RUNTIME='podman': expected one of containerd, crio, docker"),
    (
        {"GPU_OPERATOR_RUNTIME_BINARY": "shim"},
        "GPU_OPERATOR_RUNTIME_BINARY='shim': expected one of auto, nvidia, gpu-operator, oci",
    ),
    (
        {"NVIDIA_CONTAINER_RUNTIME_MODE": "csv"},
        "NVIDIA_CONTAINER_RUNTIME_MODE='csv': expected one of auto, cdi, legacy, jit-cdi",
    ),
    (
        {"NVIDIA_CONTAINER_RUNTIME_LOG_LEVEL": "trace"},
        "NVIDIA_CONTAINER_RUNTIME_LOG_LEVEL='trace': expected one of debug, info, warning, error",
    ),
    (
        {"ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED": "enabled"},
        "ACCEPT_NVIDIA_VISIBLE_DEVICES_ENVVAR_WHEN_UNPRIVILEGED='enabled': not a boolean; "
        + GO_WORDS,
    ),
    (
        {"NVIDIA_CONTAINER_RUNTIME_MODES_CDI_DEFAULT_KIND": "gpu"},
        "NVIDIA_CONTAINER_RUNTIME_MODES_CDI_DEFAULT_KIND='gpu': expected vendor/class",
    ),
]


@pytest.mark.parametrize(("env", "message"), REFUSED, ids=[m.split("=")[0] for _, m in REFUSED])
def test_a_bad_value_is_refused_in_one_line_naming_the_variable_and_what_it_accepts(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        ToolkitSettings.from_env(env)
    assert str(caught.value) == message
    assert "\n" not in str(caught.value)


def test_no_variable_gives_the_dataclass_defaults() -> None:
    assert ToolkitSettings.from_env({}) == ToolkitSettings()
    assert ShimSettings.from_env({}) == ShimSettings()


@pytest.mark.parametrize(
    ("runtime", "config", "socket", "restart"),
    [
        ("containerd", "/etc/containerd/config.toml", "/run/containerd/containerd.sock", "signal"),
        ("crio", "/etc/crio/crio.conf", "/var/run/crio/crio.sock", "systemd"),
        ("docker", "/etc/docker/daemon.json", "/var/run/docker.sock", "signal"),
    ],
)
def test_each_runtime_has_its_own_defaults(
    runtime: str, config: str, socket: str, restart: str
) -> None:
    settings = ToolkitSettings.from_env({"RUNTIME": runtime})
    assert (settings.config, settings.socket) == (Path(config), Path(socket))
    assert settings.restart_mode == restart


def test_a_runtime_s_own_variables_count_only_for_that_runtime() -> None:
    other = {
        "CONTAINERD_CONFIG": "/c/config.toml",
        "CONTAINERD_SOCKET": "/c/containerd.sock",
        "CONTAINERD_RUNTIME_CLASS": "nvidia-c",
        "CONTAINERD_SET_AS_DEFAULT": "false",
        "DOCKER_RUNTIME_NAME": "nvidia-d",
        "DOCKER_SET_AS_DEFAULT": "false",
    }
    docker = ToolkitSettings.from_env({"RUNTIME": "docker", **other})
    assert docker.config == Path("/etc/docker/daemon.json")
    assert docker.socket == Path("/var/run/docker.sock")
    assert (docker.runtime_name, docker.set_as_default) == ("nvidia-d", False)

    crio = ToolkitSettings.from_env({"RUNTIME": "crio", **other})
    assert (crio.runtime_name, crio.set_as_default) == ("nvidia", True)
    assert crio.config == Path("/etc/crio/crio.conf")

    containerd = ToolkitSettings.from_env({"RUNTIME": "containerd", **other})
    assert containerd.config == Path("/c/config.toml")
    assert containerd.socket == Path("/c/containerd.sock")
    assert (containerd.runtime_name, containerd.set_as_default) == ("nvidia-c", False)


def test_the_first_variable_set_wins_and_an_empty_one_is_unset() -> None:
    settings = ToolkitSettings.from_env(
        {
            "RUNTIME": "containerd",
            "RUNTIME_CONFIG": "/generic/config.toml",
            "CONTAINERD_CONFIG": "/own/config.toml",
            "NVIDIA_RUNTIME_NAME": "",
            "CONTAINERD_RUNTIME_CLASS": "nvidia-gpu",
            "CDI_ENABLED": "",
            "ENABLE_CDI": "0",
            "RUNTIME_ENABLE_CDI": "true",
            "ROOT": "",
            "TOOLKIT_INSTALL_DIR": "/opt/nvidia",
            "NVIDIA_DRIVER_ROOT": "/",
            "DRIVER_ROOT": "/run/nvidia/driver",
            "TOOLKIT_PID_FILE": "",
            "PID_FILE": "/run/toolkit.pid",
            "RUNTIME_RESTART_MODE": "",
            "NO_DAEMON": "",
        }
    )
    assert settings.config == Path("/generic/config.toml")
    assert settings.runtime_name == "nvidia-gpu"
    assert settings.cdi_enabled is False, "ENABLE_CDI=0 is the first set"
    assert settings.root == Path("/opt/nvidia")
    assert settings.driver_root == Path("/")
    assert settings.pid_file == Path("/run/toolkit.pid")
    assert settings.restart_mode == "signal"
    assert settings.no_daemon is True


def test_the_drop_in_s_host_path_defaults_to_the_drop_in() -> None:
    drop_in = {"RUNTIME": "containerd", "RUNTIME_DROP_IN_CONFIG": "/etc/containerd/conf.d/n.toml"}
    assert ToolkitSettings.from_env(drop_in).drop_in_host_path == Path(
        "/etc/containerd/conf.d/n.toml"
    )
    host = {**drop_in, "RUNTIME_DROP_IN_CONFIG_HOST_PATH": "/host/n.toml"}
    assert ToolkitSettings.from_env(host).drop_in_host_path == Path("/host/n.toml")


def test_a_list_of_only_commas_is_unset_like_an_empty_one() -> None:
    shim = ShimSettings.from_env(
        {
            "NVIDIA_CONTAINER_RUNTIME_RUNTIMES": " , ,",
            "NVIDIA_CONTAINER_RUNTIME_MODES_CDI_ANNOTATION_PREFIXES": "",
        }
    )
    assert shim.runtimes == runtime_config.DEFAULT_RUNTIMES
    assert shim.annotation_prefixes == ("cdi.k8s.io/",)


class Recording(dict[str, str]):
    """An environment that remembers every name looked up."""

    def __init__(self) -> None:
        super().__init__()
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self.read.add(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return super().__contains__(key)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_every_variable_read_is_in_the_table(runtime: str) -> None:
    env = Recording()
    env["RUNTIME"] = runtime
    ToolkitSettings.from_env(env)
    table = {
        name
        for fields in (variables(runtime), runtime_config.VARIABLES)
        for field in fields.values()
        for name in field.env
    }
    assert env.read == table
