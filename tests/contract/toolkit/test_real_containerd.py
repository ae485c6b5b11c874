"""A real containerd (Debian's 1.6 package), started on a temp root, state and socket, must load
the config the toolkit wrote (``config dump`` shows our runtimes next to runc, and it boots with
it) and receive the restart signal (SIGHUP to the socket's owner: it exits, as upstream relies
on its supervisor to start it again). Skipped without containerd or root."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomlkit

from gpu_operator.toolkit.install import install, uninstall
from gpu_operator.toolkit.restart import socket_owner_pid
from gpu_operator.toolkit.settings import ToolkitSettings

CONFIGS = Path(__file__).parents[2] / "data" / "runtime-configs"
CONTAINERD = shutil.which("containerd")

pytestmark = [
    pytest.mark.skipif(CONTAINERD is None, reason="containerd is not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="containerd boots only as root"),
]


@dataclass
class Containerd:
    config: Path
    socket: Path
    process: subprocess.Popen[bytes]

    def dump(self) -> dict[str, Any]:
        assert CONTAINERD is not None
        out = subprocess.run(
            [CONTAINERD, "--config", str(self.config), "config", "dump"],
            capture_output=True,
            check=True,
            timeout=30,
        )
        return tomlkit.parse(out.stdout.decode()).unwrap()


def start(tmp_path: Path, config: Path) -> Containerd:
    assert CONTAINERD is not None
    socket = tmp_path / "run" / "containerd.sock"
    socket.unlink(missing_ok=True)
    with (tmp_path / "containerd.log").open("ab") as log:
        process = subprocess.Popen(
            [
                CONTAINERD,
                "--config",
                str(config),
                "--root",
                str(tmp_path / "root"),
                "--state",
                str(tmp_path / "state"),
                "--address",
                str(socket),
            ],
            stdout=log,
            stderr=log,
        )
    deadline = time.monotonic() + 20
    while not socket.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError((tmp_path / "containerd.log").read_text()[-2000:])
        time.sleep(0.02)
    return Containerd(config, socket, process)


@pytest.fixture
def booted(tmp_path: Path) -> Iterator[list[Containerd]]:
    started: list[Containerd] = []
    yield started
    for one in started:
        if one.process.poll() is None:
            one.process.terminate()
            one.process.wait(10)


def settings_for(tmp_path: Path, config: Path, socket: Path, **extra: object) -> ToolkitSettings:
    toolkit = tmp_path / "nvidia" / "toolkit"
    toolkit.mkdir(parents=True, exist_ok=True)
    (toolkit / "nvidia-container-runtime").write_text("#!/bin/sh\n")
    values: dict[str, object] = {
        "runtime": "containerd",
        "root": toolkit.parent,
        "config": config,
        "socket": socket,
        "restart_mode": "signal",
        "runtime_version": "1.6.20",
    }
    values.update(extra)
    return ToolkitSettings(**values)  # type: ignore[arg-type]


def cri_runtimes(dump: dict[str, Any]) -> dict[str, Any]:
    plugins = dump["plugins"]
    assert isinstance(plugins, dict)
    return dict(plugins["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"])


def test_containerd_loads_the_written_config_and_exits_on_the_restart_signal(
    tmp_path: Path, booted: list[Containerd]
) -> None:
    config = tmp_path / "config.toml"
    shutil.copy(CONFIGS / "containerd-1.6-default.toml", config)
    original = config.read_bytes()
    first = start(tmp_path, config)
    booted.append(first)
    assert socket_owner_pid(first.socket) == first.process.pid

    settings = settings_for(tmp_path, config, first.socket)
    install(settings)
    assert first.process.wait(10) == -signal.SIGHUP, "containerd got SIGHUP and exited"

    runtimes = cri_runtimes(first.dump())
    assert {"runc", "nvidia", "nvidia-cdi", "nvidia-legacy"} <= set(runtimes)
    assert runtimes["nvidia"]["options"]["BinaryName"] == str(
        settings.toolkit_dir / "nvidia-container-runtime"
    )
    plugins = first.dump()["plugins"]
    assert isinstance(plugins, dict)
    assert plugins["io.containerd.grpc.v1.cri"]["containerd"]["default_runtime_name"] == "nvidia"

    second = start(tmp_path, config)  # what its supervisor does: it boots with our config
    booted.append(second)
    uninstall(settings)
    assert second.process.wait(10) == -signal.SIGHUP
    assert config.read_bytes() == original
    assert "nvidia" not in cri_runtimes(second.dump())


def test_a_drop_in_keeps_runc_and_the_cri_settings_in_the_merged_config(
    tmp_path: Path, booted: list[Containerd]
) -> None:
    config = tmp_path / "config.toml"
    shutil.copy(CONFIGS / "containerd-commented.toml", config)
    drop_in = tmp_path / "conf.d" / "99-nvidia.toml"
    running = start(tmp_path, config)
    booted.append(running)
    install(settings_for(tmp_path, config, running.socket, drop_in=drop_in))
    assert running.process.wait(10) == -signal.SIGHUP

    dump = running.dump()
    runtimes = cri_runtimes(dump)
    assert {"runc", "nvidia", "nvidia-cdi", "nvidia-legacy"} <= set(runtimes)
    assert runtimes["nvidia"]["options"]["SystemdCgroup"] is True
    plugins = dump["plugins"]
    assert isinstance(plugins, dict)
    cri = plugins["io.containerd.grpc.v1.cri"]
    assert cri["sandbox_image"] == "registry.internal.example/pause:3.9", "user's CRI setting"
    booted.append(start(tmp_path, config))
