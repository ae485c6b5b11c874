"""``gpu-operator dra-driver`` as a process, the way a DaemonSet runs it (upstream's variables,
a kubeconfig, a simulated node): it registers and publishes the node's slice to the API server
emulator, and SIGTERM stops it cleanly (sockets and its slice gone, exit 0); bad input is one
line, exit 1, nothing created."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from lightkube import Client
from lightkube.generic_resource import create_global_resource

from gpu_operator.sandbox.apiserver import ServerThread
from helpers.cli import gpu_operator
from helpers.dra_driver import make_driver_root
from helpers.polling import wait_until

pytestmark = pytest.mark.timeout(90)
ResourceSlice = create_global_resource("resource.k8s.io", "v1", "ResourceSlice", "resourceslices")


@pytest.fixture
def sockets_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="dracli-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def names(client: Client) -> list[str]:
    return [str(s.metadata.name) for s in client.list(ResourceSlice) if s.metadata]


def test_the_driver_publishes_its_node_and_cleans_up_on_sigterm(
    server_thread: ServerThread, client: Client, sockets_dir: Path, tmp_path: Path
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    server_thread.server.write_kubeconfig(kubeconfig)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPU_OPERATOR_SIM")}
    env |= {
        "GPU_OPERATOR_SIM": "hgx-h100",
        "GPU_OPERATOR_SIM_ROOT": str(tmp_path / "sim"),
        "NODE_NAME": "n1",
        "KUBECONFIG": str(kubeconfig),
        "CDI_ROOT": str(tmp_path / "cdi"),
        "DRIVER_ROOT_CTR_PATH": str(make_driver_root(tmp_path / "driver", "580.159.04")),
        "KUBELET_REGISTRAR_DIRECTORY_PATH": str(sockets_dir / "registry"),
        "KUBELET_PLUGINS_DIRECTORY_PATH": str(sockets_dir / "plugins"),
    }
    process = subprocess.Popen(
        [sys.executable, "-c", "from gpu_operator.cli import main; main()", "dra-driver"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert wait_until(lambda: names(client) == ["n1-gpu.nvidia.com"], 30)
        assert (sockets_dir / "registry/gpu.nvidia.com-reg.sock").is_socket()
        assert (sockets_dir / "plugins/gpu.nvidia.com/dra.sock").is_socket()
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output
    assert names(client) == []
    assert list((sockets_dir / "registry").iterdir()) == []
    assert not (sockets_dir / "plugins/gpu.nvidia.com/dra.sock").exists()


def test_a_missing_node_name_is_one_line_and_creates_nothing(
    sockets_dir: Path, tmp_path: Path
) -> None:
    result = gpu_operator(
        "dra-driver",
        env={
            "GPU_OPERATOR_SIM": "hgx-h100",
            "GPU_OPERATOR_SIM_ROOT": str(tmp_path / "sim"),
            "KUBELET_REGISTRAR_DIRECTORY_PATH": str(sockets_dir / "registry"),
            "KUBELET_PLUGINS_DIRECTORY_PATH": str(sockets_dir / "plugins"),
            "CDI_ROOT": str(tmp_path / "cdi"),
        },
        drop=("GPU_OPERATOR_SIM", "NODE_NAME"),
    )
    assert result.returncode == 1
    assert (
        result.stderr == "gpu-operator: --node-name (NODE_NAME): required, the name of this node\n"
    )
    assert list(sockets_dir.iterdir()) == []
    assert not (tmp_path / "cdi").exists()


def test_an_unknown_feature_gate_is_one_line_and_creates_nothing(
    sockets_dir: Path, tmp_path: Path
) -> None:
    result = gpu_operator(
        "dra-driver",
        "--feature-gates",
        "DynamicMig=true",
        env={
            "GPU_OPERATOR_SIM": "hgx-h100",
            "GPU_OPERATOR_SIM_ROOT": str(tmp_path / "sim"),
            "NODE_NAME": "n1",
            "KUBELET_REGISTRAR_DIRECTORY_PATH": str(sockets_dir / "registry"),
            "KUBELET_PLUGINS_DIRECTORY_PATH": str(sockets_dir / "plugins"),
            "CDI_ROOT": str(tmp_path / "cdi"),
        },
        drop=("GPU_OPERATOR_SIM",),
    )
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        "gpu-operator: --feature-gates: unrecognized feature gate: DynamicMig (known: "
    )
    assert list(sockets_dir.iterdir()) == []
    assert not (tmp_path / "cdi").exists()
