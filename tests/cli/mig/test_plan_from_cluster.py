"""`gpu-operator mig plan --from-cluster` reads the GPU nodes of a live cluster (feature
discovery's product and count labels) instead of a nodes file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from lightkube import Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Node

from gpu_operator.sandbox.apiserver import ServerThread


@pytest.fixture
def cluster(tmp_path: Path, server_thread: ServerThread, client: Client) -> tuple[Client, Path]:
    """The shared emulator (tests/conftest.py), its client and a kubeconfig naming it."""
    return client, server_thread.server.write_kubeconfig(tmp_path / "kubeconfig")


def node(name: str, labels: dict[str, str]) -> Node:
    return Node(metadata=ObjectMeta(name=name, labels=labels))


def plan(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from gpu_operator.cli import main; main()",
            "mig",
            "plan",
            "--from-cluster",
            "--kubeconfig",
            str(kubeconfig),
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_the_plan_covers_the_clusters_mig_capable_gpu_nodes(cluster: tuple[Client, Path]) -> None:
    client, kubeconfig = cluster
    client.create(
        node(
            "a100-1",
            {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB", "nvidia.com/gpu.count": "8"},
        )
    )
    client.create(
        node(
            "a100-2",
            {
                "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb",
                "nvidia.com/gpu.count": "8",
            },
        )
    )
    client.create(node("t4-1", {"nvidia.com/gpu.product": "Tesla-T4", "nvidia.com/gpu.count": "1"}))
    client.create(node("cpu-1", {"kubernetes.io/os": "linux"}))
    result = plan(kubeconfig, "--demand", "3g.20gb=4,1g.5gb=2", "-o", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert sorted(n["name"] for n in data["nodes"]) == ["a100-1", "a100-2"]
    assert data["satisfied"] is True


def test_a_cluster_without_mig_capable_gpus_is_one_clear_error(
    cluster: tuple[Client, Path],
) -> None:
    client, kubeconfig = cluster
    client.create(node("t4-1", {"nvidia.com/gpu.product": "Tesla-T4", "nvidia.com/gpu.count": "1"}))
    result = plan(kubeconfig, "--demand", "1g.5gb=1")
    assert result.returncode == 1
    assert "no nodes labelled with a known MIG-capable nvidia.com/gpu.product" in result.stderr


def test_nodes_file_and_cluster_are_exclusive(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from gpu_operator.cli import main; main()",
            "mig",
            "plan",
            "--demand",
            "1g.5gb=1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "exactly one of --nodes FILE or --from-cluster" in result.stderr
