"""The seed story's result, checked on a real cluster: runs only when ``KUBECONFIG`` names a
cluster with gpu-operator installed (skipped otherwise). Read-only: it asks, never changes.

    KUBECONFIG=~/.kube/config pytest tests/e2e/cluster
    GPU_OPERATOR_E2E_MIG_CONFIG=all-balanced …   # also check every GPU node has that layout
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

KUBECONFIG = os.environ.get("KUBECONFIG", "")
pytestmark = pytest.mark.skipif(
    not KUBECONFIG or not all(Path(p).is_file() for p in KUBECONFIG.split(os.pathsep)),
    reason="set KUBECONFIG to a cluster with gpu-operator installed to run these",
)


def status() -> dict[str, Any]:
    gpu_operator = Path(sys.executable).parent / "gpu-operator"
    done = subprocess.run(
        [str(gpu_operator), "status", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "KUBECONFIG": KUBECONFIG},
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.timeout(90)
def test_the_cluster_policy_is_ready_and_every_gpu_node_runs_its_operands() -> None:
    report = status()
    assert report["policy"]["state"] == "ready", report["policy"]["problems"]
    assert report["nodes"], "no GPU nodes found"
    for node in report["nodes"]:
        assert node["blocking"] == [], f"{node['name']}: {node['blocking']}"
        assert node["resources"], f"{node['name']} advertises no nvidia.com resources"


@pytest.mark.timeout(90)
def test_every_gpu_node_has_the_expected_mig_layout_when_one_is_named() -> None:
    wanted = os.environ.get("GPU_OPERATOR_E2E_MIG_CONFIG")
    if not wanted:
        pytest.skip("set GPU_OPERATOR_E2E_MIG_CONFIG (e.g. all-balanced) to check the layout")
    for node in status()["nodes"]:
        assert (node["mig_config"], node["mig_state"]) == (wanted, "success"), node["name"]
