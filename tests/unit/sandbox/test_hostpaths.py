"""The one path-remapping rule of containers run as local processes (gpu_operator.hostpaths)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from gpu_operator.errors import ConfigError
from gpu_operator.hostpaths import MOUNTS_ENV, host_path, remap

MOUNTS = {
    "/run/nvidia": "/node/run/nvidia",
    "/run/nvidia/validations": "/node/validations",
    "/host": "/node",
}


def env(mounts: dict[str, str] = MOUNTS) -> dict[str, str]:
    return {MOUNTS_ENV: json.dumps(mounts)}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param(
            "/run/nvidia/validations/toolkit-ready",
            "/node/validations/toolkit-ready",
            id="the longest mount wins",
        ),
        pytest.param(
            "/run/nvidia/driver", "/node/run/nvidia/driver", id="a shorter mount covers the rest"
        ),
        pytest.param("/host", "/node", id="the mount point itself"),
        pytest.param("/host/etc/os-release", "/node/etc/os-release", id="below the host root"),
        pytest.param(
            "/hostname", "/hostname", id="a name that only starts like a mount is not under it"
        ),
        pytest.param(
            "/etc/containerd/config.toml",
            "/etc/containerd/config.toml",
            id="unmounted paths are unchanged",
        ),
        pytest.param("relative/file", "relative/file", id="relative paths are unchanged"),
    ],
)
def test_container_paths_map_to_the_local_directory_of_their_mount(
    path: str, expected: str
) -> None:
    assert host_path(path, env()) == Path(expected)


def test_without_a_mount_table_every_path_is_itself() -> None:
    assert host_path("/run/nvidia/validations", {}) == Path("/run/nvidia/validations")


def test_a_malformed_mount_table_is_an_error_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match=MOUNTS_ENV):
        host_path("/x", {MOUNTS_ENV: "{not json"})
    with pytest.raises(ConfigError, match="absolute path"):
        host_path("/x", {MOUNTS_ENV: json.dumps({"relative": "/y"})})


@dataclass(frozen=True)
class Settings:
    output: Path = Path("/run/nvidia/validations")
    socket: str = "/host/run/containerd/containerd.sock"
    optional: Path | None = None
    empty: str = ""


def test_remap_rewrites_only_the_named_fields_and_leaves_none_and_empty_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(MOUNTS_ENV, json.dumps(MOUNTS))
    settings = remap(Settings(), "output", "socket", "optional", "empty")
    assert settings == Settings(
        output=Path("/node/validations"), socket="/node/run/containerd/containerd.sock"
    )


def test_remap_returns_the_same_object_outside_the_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MOUNTS_ENV, raising=False)
    settings = Settings()
    assert remap(settings, "output") is settings
