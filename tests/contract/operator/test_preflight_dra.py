"""``gpu-operator preflight`` says before install what the operator would refuse of
``draDriver``, in the operator's own words, and exits 1: a cluster that says it is 1.33
(``--from-cluster`` against the emulator), or the device plugin on the same nodes (``--nodes``);
a DRA-only policy on a 1.37 cluster passes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from gpu_operator.cli import app
from gpu_operator.sandbox.apiserver import ServerThread
from gpu_operator.sandbox.apiserver.discovery import VERSION_ENV
from gpu_operator.sandbox.rest import Rest

LABELS = {
    "feature.node.kubernetes.io/pci-10de.present": "true",
    "feature.node.kubernetes.io/system-os_release.ID": "ubuntu",
    "feature.node.kubernetes.io/system-os_release.VERSION_ID": "22.04",
}


def node(**labels: str) -> dict[str, Any]:
    meta = {"name": "gpu-1", "labels": {**LABELS, **labels}}
    return {"apiVersion": "v1", "kind": "Node", "metadata": meta}


NODE = node()
POLICY = "apiVersion: nvidia.com/v1\nkind: ClusterPolicy\nmetadata: {name: cluster-policy}\nspec:\n"
DRA_ONLY = POLICY + "  devicePlugin: {enabled: false}\n  draDriver: {enabled: true}\n"


def preflight(policy: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["preflight", "-f", str(policy), *args])
    return result.exit_code, result.stderr


def cluster(server_thread: ServerThread) -> None:
    rest = Rest(server_thread.url)
    try:
        rest.create("v1/nodes", NODE)
    finally:
        rest.close()


def test_a_cluster_older_than_1_34_fails_preflight_with_the_operators_line(
    server_thread: ServerThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster(server_thread)
    policy = tmp_path / "policy.yaml"
    policy.write_text(DRA_ONLY)
    monkeypatch.setenv(VERSION_ENV, "1.33")
    code, err = preflight(policy, "--from-cluster", "--server", server_thread.url)
    assert code == 1
    assert (
        "fail  draDriver.enabled: Kubernetes 1.33 is older than 1.34, where DRA "
        "(resource.k8s.io/v1) is GA: upgrade the cluster or set draDriver.enabled=false"
    ) in err.splitlines()
    monkeypatch.setenv(VERSION_ENV, "1.37")
    code, err = preflight(policy, "--from-cluster", "--server", server_thread.url)
    assert "draDriver" not in err
    assert code == 0, err


def test_the_device_plugin_on_the_dra_drivers_nodes_fails_preflight(tmp_path: Path) -> None:
    nodes = tmp_path / "nodes.yaml"
    nodes.write_text(yaml.safe_dump(NODE))
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY + "  draDriver: {enabled: true, nodeSelector: {pool: dra}}\n")
    code, err = preflight(policy, "--nodes", str(nodes))
    assert code == 0, err  # gpu-1 is not in pool dra: a split
    nodes.write_text(yaml.safe_dump(node(pool="dra")))
    code, err = preflight(policy, "--nodes", str(nodes))
    assert code == 1
    (line,) = [x for x in err.splitlines() if x.startswith("fail  ")]
    assert line.startswith(
        "fail  draDriver.enabled with devicePlugin.enabled: both would serve the GPUs of node gpu-1"
    )
