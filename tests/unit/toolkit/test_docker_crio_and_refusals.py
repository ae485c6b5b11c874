"""Docker's daemon.json and CRI-O's drop-in; malformed files refused untouched with file:line;
runtime capabilities refused with a reason."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import tomlkit

from gpu_operator.errors import ConfigError
from gpu_operator.toolkit.capabilities import parse_version, refusal
from gpu_operator.toolkit.install import install, uninstall
from gpu_operator.toolkit.settings import ToolkitSettings


def test_docker_gets_runtimes_default_runtime_and_cdi_keeping_its_keys_in_order(
    copy_config: Callable[[str], Path], toolkit_root: Path
) -> None:
    config = copy_config("daemon.json")
    original = config.read_bytes()
    settings = ToolkitSettings(
        runtime="docker",
        root=toolkit_root,
        config=config,
        restart_mode="none",
        cdi_enabled=True,
        runtime_version="27.3.1",
    )
    install(settings)
    doc = json.loads(config.read_text())
    assert list(doc)[:5] == ["log-driver", "log-opts", "exec-opts", "runtimes", "storage-driver"]
    assert doc["runtimes"]["crun"] == {"path": "/usr/bin/crun"}
    assert doc["runtimes"]["nvidia"] == {
        "path": f"{toolkit_root}/toolkit/nvidia-container-runtime",
        "args": [],
    }
    assert doc["default-runtime"] == "nvidia"
    assert doc["features"] == {"cdi": True}
    assert config.read_text().startswith('{\n  "log-driver"'), "the file's 2-space indent"
    assert install(settings) == []
    uninstall(settings)
    assert config.read_bytes() == original


def test_crio_gets_a_drop_in_with_oci_runtimes_and_uninstall_deletes_it(
    tmp_path: Path, copy_config: Callable[[str], Path], toolkit_root: Path
) -> None:
    main = copy_config("crio.conf")
    original = main.read_bytes()
    drop_in = tmp_path / "etc" / "crio.conf.d" / "99-nvidia.toml"
    settings = ToolkitSettings(
        runtime="crio", root=toolkit_root, config=main, drop_in=drop_in, restart_mode="none"
    )
    install(settings)
    doc = tomlkit.parse(drop_in.read_text()).unwrap()
    runtime = doc["crio"]["runtime"]
    assert runtime["default_runtime"] == "nvidia"
    assert runtime["runtimes"]["nvidia"] == {
        "runtime_path": f"{toolkit_root}/toolkit/nvidia-container-runtime",
        "runtime_type": "oci",
    }
    assert set(runtime["runtimes"]) == {"nvidia", "nvidia-cdi", "nvidia-legacy"}
    assert main.read_bytes() == original, "CRI-O merges drop-ins itself: crio.conf untouched"
    uninstall(settings)
    assert not drop_in.exists()


@pytest.mark.parametrize(
    ("name", "runtime", "where"),
    [
        ("containerd-malformed.toml", "containerd", "containerd-malformed.toml:5:"),
        ("daemon-malformed.json", "docker", "daemon-malformed.json:4:"),
    ],
)
def test_a_malformed_file_is_refused_naming_file_and_line_and_nothing_is_written(
    name: str, runtime: str, where: str, copy_config: Callable[[str], Path], toolkit_root: Path
) -> None:
    config = copy_config(name)
    before = (config.read_bytes(), os.stat(config).st_mtime_ns)
    settings = ToolkitSettings(
        runtime=runtime, root=toolkit_root, config=config, restart_mode="none"
    )
    with pytest.raises(ConfigError, match=where):
        install(settings)
    assert (config.read_bytes(), os.stat(config).st_mtime_ns) == before
    assert not settings.backup_dir.exists()


def test_a_wrong_version_key_is_refused_naming_the_key(tmp_path: Path, toolkit_root: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('version = "two"\n')
    settings = ToolkitSettings(
        runtime="containerd", root=toolkit_root, config=config, restart_mode="none"
    )
    with pytest.raises(ConfigError, match=r"config.toml:1: version = 'two': expected 1, 2 or 3"):
        install(settings)
    assert config.read_text() == 'version = "two"\n'


def test_runtime_versions_are_read_from_real_version_lines() -> None:
    assert parse_version("containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1") == (
        1,
        6,
        20,
    )
    assert parse_version("containerd containerd.io v2.0.4 1a43cb6a") == (2, 0, 4)
    assert parse_version("Docker version 24.0.7, build afdd53b") == (24, 0, 7)


def test_cdi_on_containerd_1_6_docker_24_and_v3_files_on_1_x_are_refused_with_the_way_out() -> None:
    message = refusal("containerd", (1, 6, 20), cdi=True)
    assert message is not None
    assert "containerd >= 1.7" in message
    assert "1.6.20" in message
    assert "CDI_ENABLED=false" in message
    assert "Docker >= 25" in (refusal("docker", (24, 0, 7), cdi=True) or "")
    assert "version 3" in (refusal("containerd", (1, 7, 2), cdi=False, config_version=3) or "")
    assert refusal("containerd", (1, 7, 0), cdi=True) is None
    assert refusal("containerd", None, cdi=True) is None, "unknown version: not refused"
    assert "CDI" in (refusal("containerd", (2, 0, 0), cdi=False, oci_binary=True) or "")


def test_install_refuses_cdi_on_containerd_1_6_before_touching_the_file(
    copy_config: Callable[[str], Path], toolkit_root: Path
) -> None:
    config = copy_config("containerd-1.6-default.toml")
    before = config.read_bytes()
    settings = ToolkitSettings(
        runtime="containerd",
        root=toolkit_root,
        config=config,
        restart_mode="none",
        cdi_enabled=True,
        runtime_version="1.6.20",
    )
    with pytest.raises(ConfigError, match="refusing to configure the runtime"):
        install(settings)
    assert config.read_bytes() == before


def test_settings_come_from_the_upstream_environment_variables() -> None:
    settings = ToolkitSettings.from_env(
        {
            "RUNTIME": "containerd",
            "CONTAINERD_CONFIG": "/runtime/config-dir/config.toml",
            "CONTAINERD_SOCKET": "/runtime/sock-dir/containerd.sock",
            "CONTAINERD_RUNTIME_CLASS": "nvidia-gpu",
            "NVIDIA_RUNTIME_SET_AS_DEFAULT": "false",
            "CDI_ENABLED": "true",
            "RUNTIME_DROP_IN_CONFIG": "/runtime/config-dir.d/99-nvidia.toml",
            "RUNTIME_DROP_IN_CONFIG_HOST_PATH": "/etc/containerd/conf.d/99-nvidia.toml",
            "ROOT": "/usr/local/nvidia",
        }
    )
    assert settings.config == Path("/runtime/config-dir/config.toml")
    assert settings.socket == Path("/runtime/sock-dir/containerd.sock")
    assert settings.runtime_name == "nvidia-gpu"
    assert settings.set_as_default is False
    assert settings.cdi_enabled is True
    assert settings.restart_mode == "signal"
    assert settings.drop_in_host_path == Path("/etc/containerd/conf.d/99-nvidia.toml")
    assert ToolkitSettings.from_env({"RUNTIME": "crio"}).restart_mode == "systemd"
    with pytest.raises(ConfigError, match="RUNTIME='podman'"):
        ToolkitSettings.from_env({"RUNTIME": "podman"})
    with pytest.raises(ConfigError, match="CDI_ENABLED='maybe'"):
        ToolkitSettings.from_env({"RUNTIME": "docker", "CDI_ENABLED": "maybe"})
