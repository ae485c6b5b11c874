"""``toolkit install`` with our runtime shim: ``GPU_OPERATOR_RUNTIME_BINARY=auto`` picks it where
NVIDIA's binary is absent, so containerd 1.6, Docker 20 and CRI-O get working ``nvidia`` handlers
instead of a refusal; NVIDIA's binary, where present, is kept and used; the refusal stays where
nothing can work (the image's build command for the shim: tests/contract/toolkit/
test_shim_image_build.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import tomlkit

from gpu_operator.errors import ConfigError
from gpu_operator.toolkit.install import install, runtime_binary, uninstall
from gpu_operator.toolkit.runtime_config import ShimSettings, render
from gpu_operator.toolkit.runtime_shim import NAMES, is_ours
from gpu_operator.toolkit.settings import ToolkitSettings


@pytest.fixture(autouse=True)
def _simulated_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPU_OPERATOR_SIM", "t4")


def settings_for(
    tmp_path: Path, config: Path, shim: Path, runtime: str = "containerd", **extra: object
) -> ToolkitSettings:
    values: dict[str, object] = {
        "runtime": runtime,
        "root": tmp_path / "usr-local-nvidia",
        "config": config,
        "restart_mode": "none",
        "runtime_version": {"containerd": "1.6.20", "docker": "20.10.24", "crio": "1.24.1"}[
            runtime
        ],
        "shim_binary": shim,
        "driver_root": tmp_path / "no-driver",
    }
    values.update(extra)
    return ToolkitSettings(**values)  # type: ignore[arg-type]


def test_auto_on_containerd_1_6_installs_our_shim_and_points_the_handlers_at_it(
    tmp_path: Path, copy_config: Callable[[str], Path], shim_binary: Path
) -> None:
    config = copy_config("containerd-1.6-default.toml")
    original = config.read_bytes()
    settings = settings_for(tmp_path, config, shim_binary)
    assert runtime_binary(settings) == "gpu-operator"
    changed = install(settings)
    assert changed == [config]
    toolkit = settings.toolkit_dir
    assert all(is_ours(toolkit / name) for name in NAMES)
    runtimes = tomlkit.parse(config.read_text()).unwrap()["plugins"]["io.containerd.grpc.v1.cri"][
        "containerd"
    ]["runtimes"]
    assert runtimes["nvidia"]["options"]["BinaryName"] == str(toolkit / NAMES[0])
    assert runtimes["nvidia-cdi"]["options"]["BinaryName"] == str(toolkit / NAMES[1])
    assert runtimes["nvidia-legacy"]["options"]["BinaryName"] == str(toolkit / NAMES[2])
    assert runtime_binary(settings) == "gpu-operator", "our installed shim is not NVIDIA's"
    assert install(settings) == [], "nothing to change the second time"
    uninstall(settings)
    assert config.read_bytes() == original
    assert (toolkit / NAMES[0]).exists(), "kept: running containers' shims still exec it"


@pytest.mark.parametrize(
    ("runtime", "config_name"),
    [
        pytest.param("docker", "daemon.json", id="Docker 20"),
        pytest.param("crio", "crio.conf", id="CRI-O"),
    ],
)
def test_docker_20_and_crio_get_nvidia_handlers_running_our_shim(
    tmp_path: Path,
    copy_config: Callable[[str], Path],
    shim_binary: Path,
    runtime: str,
    config_name: str,
) -> None:
    config = copy_config(config_name)
    settings = settings_for(tmp_path, config, shim_binary, runtime)
    install(settings)
    text = config.read_text()
    binary = str(settings.toolkit_dir / NAMES[0])
    if runtime == "docker":
        assert json.loads(text)["runtimes"]["nvidia"]["path"] == binary
    else:
        runtimes = tomlkit.parse(text).unwrap()["crio"]["runtime"]["runtimes"]
        assert runtimes["nvidia"]["runtime_path"] == binary
    assert is_ours(Path(binary))


def test_nvidias_binary_where_present_is_kept_and_used(
    tmp_path: Path, copy_config: Callable[[str], Path], shim_binary: Path
) -> None:
    config = copy_config("containerd-1.6-default.toml")
    settings = settings_for(tmp_path, config, shim_binary)
    nvidia = settings.toolkit_dir / NAMES[0]
    nvidia.parent.mkdir(parents=True)
    nvidia.write_text('#!/bin/sh\nexec "$0.real" "$@"\n')
    assert runtime_binary(settings) == "nvidia"
    install(settings)
    assert nvidia.read_text().startswith("#!/bin/sh"), "NVIDIA's wrapper untouched"
    assert not (settings.toolkit_dir / ".config").exists()


def test_the_refusal_stays_where_no_runtime_binary_can_be_had(
    tmp_path: Path, copy_config: Callable[[str], Path]
) -> None:
    config = copy_config("containerd-1.6-default.toml")
    original = config.read_bytes()
    settings = settings_for(tmp_path, config, tmp_path / "image-without-shim")
    assert runtime_binary(settings) == "oci"
    with pytest.raises(ConfigError, match="plain OCI runtime gives containers no GPUs"):
        install(settings)
    assert config.read_bytes() == original


def test_asking_for_our_shim_where_the_image_lacks_it_is_one_clear_error(
    tmp_path: Path, copy_config: Callable[[str], Path]
) -> None:
    config = copy_config("containerd-1.6-default.toml")
    missing = tmp_path / "libexec" / "nvidia-container-runtime"
    settings = settings_for(tmp_path, config, missing, binary_mode="gpu-operator")
    with pytest.raises(ConfigError) as caught:
        install(settings)
    assert str(caught.value) == (
        f"GPU_OPERATOR_RUNTIME_BINARY=gpu-operator: the runtime shim {missing} is missing "
        "(GPU_OPERATOR_RUNTIME_SHIM names where this image keeps it)"
    )


def test_dry_run_names_the_shim_files_and_writes_nothing(
    tmp_path: Path, copy_config: Callable[[str], Path], shim_binary: Path
) -> None:
    config = copy_config("containerd-1.6-default.toml")
    settings = settings_for(tmp_path, config, shim_binary)
    would = install(settings, dry_run=True)
    assert settings.toolkit_dir / NAMES[0] in would
    assert config in would
    assert not settings.toolkit_dir.exists()


def test_the_shim_config_comes_from_the_installers_upstream_variables() -> None:
    settings = ToolkitSettings.from_env(
        {
            "RUNTIME": "containerd",
            "NVIDIA_CONTAINER_RUNTIME_MODE": "cdi",
            "NVIDIA_CONTAINER_RUNTIME_RUNTIMES": "crun, runc",
            "NVIDIA_CONTAINER_RUNTIME_MODES_CDI_DEFAULT_KIND": "management.nvidia.com/gpu",
            "ACCEPT_NVIDIA_VISIBLE_DEVICES_AS_VOLUME_MOUNTS": "true",
            "GPU_OPERATOR_RUNTIME_SHIM": "/opt/shim",
        }
    )
    assert settings.shim_binary == Path("/opt/shim")
    text = render(settings.runtime_shim)
    assert 'mode = "cdi"' in text
    assert 'runtimes = ["crun", "runc"]' in text
    assert 'default-kind = "management.nvidia.com/gpu"' in text
    assert "accept-nvidia-visible-devices-as-volume-mounts = true" in text
    with pytest.raises(ConfigError, match="NVIDIA_CONTAINER_RUNTIME_MODE='csv'"):
        ShimSettings.from_env({"NVIDIA_CONTAINER_RUNTIME_MODE": "csv"})
