"""containerd config edits on real-world files (1.6 and 1.7 defaults, 2.x version 3, comments,
existing runtimes, imports, version 1): our runtimes appear with the user's runc options, every
other line and comment stays, twice changes nothing, uninstall restores byte for byte."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tomlkit

from gpu_operator.toolkit.containerd_config import CRI_PLUGIN
from gpu_operator.toolkit.install import install, uninstall
from gpu_operator.toolkit.settings import ToolkitSettings

CONFIGS = Path(__file__).parents[2] / "data" / "runtime-configs"

Settings = Callable[..., ToolkitSettings]

FILES = {
    "containerd-1.6-default.toml": 2,
    "containerd-1.7-default.toml": 2,
    "containerd-2.0-default.toml": 3,
    "containerd-commented.toml": 2,
    "containerd-existing-runtimes.toml": 2,
    "containerd-imports.toml": 2,
    "containerd-v1.toml": 1,
}


def runtimes(text: str, version: int) -> dict[str, Any]:
    doc = tomlkit.parse(text).unwrap()
    cri = doc["plugins"][CRI_PLUGIN[version]]
    return dict(cri["containerd"]["runtimes"])


def removed_lines(before: str, after: str) -> list[str]:
    diff = difflib.ndiff(before.splitlines(), after.splitlines())
    return [line[2:].strip() for line in diff if line.startswith("- ")]


@pytest.mark.parametrize(("name", "version"), FILES.items())
def test_install_adds_the_three_runtimes_keeps_every_other_line_and_uninstall_restores_bytes(
    name: str, version: int, copy_config: Callable[[str], Path], containerd_settings: Settings
) -> None:
    config = copy_config(name)
    original = config.read_bytes()
    settings = containerd_settings(
        config, runtime_version="2.0.0" if version == 3 else "1.7.22", cdi_enabled=True
    )

    assert install(settings) == [config]
    after = config.read_text()

    found = runtimes(after, version)
    toolkit = settings.toolkit_dir
    assert found["nvidia"]["options"]["BinaryName"] == f"{toolkit}/nvidia-container-runtime"
    assert found["nvidia-cdi"]["options"]["BinaryName"] == f"{toolkit}/nvidia-container-runtime.cdi"
    assert found["nvidia-legacy"]["runtime_type"] == "io.containerd.runc.v2"
    cri = tomlkit.parse(after).unwrap()["plugins"][CRI_PLUGIN[version]]
    assert cri["containerd"]["default_runtime_name"] == "nvidia"
    assert cri["enable_cdi"] is True
    # only values we own may change; every comment and other line is still there
    for line in removed_lines(original.decode(), after):
        assert line.startswith(("default_runtime_name", "enable_cdi", "runtime_type", "BinaryName"))
    for comment in [x for x in original.decode().splitlines() if "#" in x]:
        assert comment in after

    assert install(settings) == [], "a second install changes nothing"
    assert uninstall(settings) == [config]
    assert config.read_bytes() == original


def test_new_runtimes_copy_the_default_runtimes_options_like_systemd_cgroup(
    copy_config: Callable[[str], Path], containerd_settings: Settings
) -> None:
    config = copy_config("containerd-existing-runtimes.toml")
    install(containerd_settings(config))
    found = runtimes(config.read_text(), 2)
    assert found["nvidia"]["options"]["SystemdCgroup"] is True, "copied from crun, the default"
    assert found["kata"]["runtime_type"] == "io.containerd.kata.v2", "other runtimes untouched"
    assert found["crun"]["options"]["BinaryName"] == "/usr/bin/crun"


def test_the_1_6_default_file_gets_exactly_the_golden_result(
    copy_config: Callable[[str], Path], containerd_settings: Settings, toolkit_root: Path
) -> None:
    config = copy_config("containerd-1.6-default.toml")
    install(containerd_settings(config, runtime_version="1.6.20"))
    golden = (CONFIGS / "expected" / "containerd-1.6-default.toml").read_text()
    assert config.read_text() == golden.replace("@TOOLKIT@", str(toolkit_root / "toolkit"))


def test_the_commented_file_gets_exactly_the_golden_result(
    copy_config: Callable[[str], Path], containerd_settings: Settings, toolkit_root: Path
) -> None:
    config = copy_config("containerd-commented.toml")
    install(containerd_settings(config, cdi_enabled=True))
    golden = (CONFIGS / "expected" / "containerd-commented.toml").read_text()
    assert config.read_text() == golden.replace("@TOOLKIT@", str(toolkit_root / "toolkit"))


def test_not_set_as_default_leaves_the_default_runtime_and_adds_no_cdi_keys(
    copy_config: Callable[[str], Path], containerd_settings: Settings
) -> None:
    config = copy_config("containerd-1.6-default.toml")
    original = config.read_text()
    install(containerd_settings(config, set_as_default=False, runtime_version="1.6.20"))
    after = config.read_text()
    assert removed_lines(original, after) == []
    assert "enable_cdi" not in after
    assert "nvidia" in runtimes(after, 2)


def test_a_user_edit_after_install_survives_uninstall_which_removes_only_our_keys(
    copy_config: Callable[[str], Path], containerd_settings: Settings
) -> None:
    config = copy_config("containerd-commented.toml")
    settings = containerd_settings(config)
    install(settings)
    edited = config.read_text().replace('level = "info"', 'level = "warn"')
    config.write_text(edited)

    uninstall(settings)
    after = config.read_text()
    assert 'level = "warn"' in after, "the user's later change is kept"
    assert set(runtimes(after, 2)) == {"runc"}
    assert 'default_runtime_name = "runc"' in after
    kept = settings.backup_dir / "containerd-commented.toml.orig"
    assert kept.read_bytes() == (CONFIGS / "containerd-commented.toml").read_bytes()


def test_a_reinstall_with_other_settings_replaces_the_first_and_uninstall_still_restores(
    copy_config: Callable[[str], Path], containerd_settings: Settings
) -> None:
    config = copy_config("containerd-1.6-default.toml")
    original = config.read_bytes()
    install(containerd_settings(config, runtime_version="1.6.20"))
    second = containerd_settings(config, runtime_version="1.6.20", set_as_default=False)
    install(second)
    assert 'default_runtime_name = "runc"' in config.read_text()
    uninstall(second)
    assert config.read_bytes() == original


def test_drop_in_mode_imports_a_file_holding_the_cri_table_and_our_runtimes(
    tmp_path: Path, copy_config: Callable[[str], Path], containerd_settings: Settings
) -> None:
    config = copy_config("containerd-imports.toml")
    original = config.read_bytes()
    drop_in = tmp_path / "etc" / "conf.d" / "99-nvidia.toml"
    settings = containerd_settings(
        config, drop_in=drop_in, drop_in_host_path=Path("/etc/containerd/conf.d/99-nvidia.toml")
    )
    assert install(settings) == [config, drop_in]

    main = tomlkit.parse(config.read_text()).unwrap()
    assert main["imports"] == [
        "/etc/containerd/conf.d/10-registry.toml",
        "/etc/containerd/conf.d/99-nvidia.toml",
    ]
    assert set(runtimes(drop_in.read_text(), 2)) == {
        "runc",
        "nvidia",
        "nvidia-cdi",
        "nvidia-legacy",
    }
    assert install(settings) == []
    uninstall(settings)
    assert config.read_bytes() == original
    assert not drop_in.exists()


def test_a_missing_config_file_is_created_and_uninstall_removes_it(
    tmp_path: Path, containerd_settings: Settings
) -> None:
    config = tmp_path / "etc" / "config.toml"
    settings = containerd_settings(config)
    install(settings)
    assert "nvidia" in runtimes(config.read_text(), 1)
    uninstall(settings)
    assert not config.exists()


def test_oci_binary_mode_points_handlers_at_the_plain_runtime_and_needs_cdi(
    copy_config: Callable[[str], Path], containerd_settings: Settings
) -> None:
    config = copy_config("containerd-1.7-default.toml")
    install(containerd_settings(config, binary_mode="oci", cdi_enabled=True))
    found = runtimes(config.read_text(), 2)
    assert set(found) == {"runc", "nvidia", "nvidia-cdi"}
    assert "BinaryName" not in found["nvidia"]["options"], "runc itself, GPUs through CDI"
