"""config-manager as the device plugin's init container runs it (ONESHOT=true, upstream's
environment): a real process that installs the config the node's label names, or refuses in
one line naming the label and the configs the ConfigMap has; and how it finds the device plugin
process to signal among the node's processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from lightkube import Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Node

from gpu_operator.commands.config_manager import find_processes
from gpu_operator.sandbox.apiserver import ServerThread
from helpers.deviceplugin_configs import configmap_volume

LABEL = "nvidia.com/device-plugin.config"


@pytest.fixture
def api_url(server_thread: ServerThread, client: Client) -> str:
    """The API emulator with node n1 labelled ts-4 and node n2 labelled ts-8 (no such config)."""
    for name, config in (("n1", "ts-4"), ("n2", "ts-8")):
        client.create(Node(metadata=ObjectMeta(name=name, labels={LABEL: config})))
    return server_thread.url


@pytest.fixture
def srcdir(tmp_path: Path) -> Path:
    return configmap_volume(tmp_path)


def oneshot(node: str, srcdir: Path, dst: Path, url: str) -> subprocess.CompletedProcess[str]:
    """The init container: `config-manager` with upstream's env, ONESHOT=true."""
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env |= {
        "NODE_NAME": node,
        "ONESHOT": "true",
        "KUBECONFIG": "",
        "CONFIG_FILE_SRCDIR": str(srcdir),
        "CONFIG_FILE_DST": str(dst),
    }
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from gpu_operator.cli import main; main()",
            "config-manager",
            "--server",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def test_the_init_container_installs_the_labelled_config(
    api_url: str, srcdir: Path, tmp_path: Path
) -> None:
    dst = tmp_path / "config" / "config.yaml"
    result = oneshot("n1", srcdir, dst, api_url)
    assert result.returncode == 0, result.stderr
    assert dst.read_text() == (srcdir / "ts-4").read_text()


def test_the_init_container_refuses_a_label_naming_a_missing_config(
    api_url: str, srcdir: Path, tmp_path: Path
) -> None:
    dst = tmp_path / "config" / "config.yaml"
    result = oneshot("n2", srcdir, dst, api_url)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "config-manager: label nvidia.com/device-plugin.config on node n2 asks for config "
        "'ts-8', which the ConfigMap does not have (it has: default, ts-4)"
    )
    assert not dst.exists()


def test_find_processes_matches_the_executable_and_our_exec_and_filters_by_node(
    tmp_path: Path,
) -> None:
    def script(name: str) -> str:
        path = tmp_path / name
        path.write_text("import time\ntime.sleep(30)\n")
        return str(path)

    # How the processes look: our executable execs `python …/gpu-operator device-plugin`;
    # NVIDIA's image runs `nvidia-device-plugin`.
    ours = subprocess.Popen(
        [sys.executable, script("gpu-operator"), "device-plugin"],
        env={**os.environ, "NODE_NAME": "n1"},
    )
    other_node = subprocess.Popen(
        [sys.executable, script("nvidia-device-plugin")], env={**os.environ, "NODE_NAME": "n2"}
    )
    unrelated = subprocess.Popen(
        [sys.executable, script("gpu-operator"), "exporter"], env={**os.environ, "NODE_NAME": "n1"}
    )
    try:
        assert find_processes("nvidia-device-plugin", "n1") == [ours.pid]
        assert find_processes("nvidia-device-plugin", "n2") == [other_node.pid]
        assert {ours.pid, other_node.pid} <= set(find_processes("nvidia-device-plugin", ""))
    finally:
        for proc in (ours, other_node, unrelated):
            proc.kill()
            proc.wait()
