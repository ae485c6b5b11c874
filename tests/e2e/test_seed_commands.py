"""The seed's commands typed as a user types them, against `gpu-operator sandbox up --no-chart`:
the real helm installs the chart with all nine `--set` lines into `gpu-operator-resources` and
`--wait`s; the real kubectl pipeline labels the nodes all-balanced; `kubectl get pods` shows the
seed's pods Running (the CUDA validator Completed); each node advertises 16/8/8 MIG devices;
the policy is ready."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.user_shell import Shell, sandbox_up

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deployments/gpu-operator"

# Typed as in the seed's walk-through; only the chart's location is this checkout's.
HELM_INSTALL = (
    "helm install --wait -n gpu-operator-resources --create-namespace --version v1.9.0 "
    "--set mig.strategy=mixed --set driver.repository=homelab.net/nvcr.io/nvidia "
    "--set driver.version=450.156.00 --set driver.manager.version=v0.2.0-ubi8 "
    "--set toolkit.version=1.7.2-ubi8 --set dcgm.version=2.3.1-ubi8 "
    "--set operator.version=v1.9.0-ubi8 --set operator.initContainer.version=cuda:11.2.1-base-ubi8 "
    "--set validator.version=v1.9.0-ubi8 gpu-operator {chart}"
)
LABEL_PIPELINE = (
    "kubectl get node --selector='!node-role.kubernetes.io/master' -o name "
    "| xargs -I {} kubectl label {} nvidia.com/mig.config=all-balanced --overwrite"
)
GET_PODS = "kubectl -n gpu-operator-resources get pods"
SEED_PODS = (
    "gpu-feature-discovery-",
    "gpu-operator-",
    "nvidia-container-toolkit-daemonset-",
    "nvidia-cuda-validator-",
    "nvidia-dcgm-exporter-",
    "nvidia-device-plugin-daemonset-",
    "nvidia-driver-daemonset-",
    "nvidia-mig-manager-",
    "nvidia-operator-validator-",
)
BALANCED = {
    "nvidia.com/mig-1g.5gb": "16",
    "nvidia.com/mig-2g.10gb": "8",
    "nvidia.com/mig-3g.20gb": "8",
}


@pytest.fixture(scope="module")
def shell() -> Iterator[Shell]:
    """`gpu-operator sandbox up --no-chart` in the background, as a user starts it."""
    with sandbox_up() as running:
        yield running


@pytest.mark.timeout(400)
def test_the_seed_commands_typed_as_they_are_end_with_every_operand_running(shell: Shell) -> None:
    install = shell.type(HELM_INSTALL.format(chart=CHART), timeout_s=300)
    assert install.returncode == 0, install.stdout + install.stderr
    assert "STATUS: deployed" in install.stdout
    assert "operator.version=v1.9.0-ubi8" in install.stdout  # NOTES say what the pin means

    label = shell.type(LABEL_PIPELINE, timeout_s=60)
    assert label.returncode == 0, label.stderr
    assert re.findall(r"node/(\S+) labeled", label.stdout)[:2] == ["gpu-node-1", "gpu-node-2"]

    deadline = time.monotonic() + 240
    left: list[str] = ["not looked yet"]
    while left and time.monotonic() < deadline:
        time.sleep(2)
        left = blockers(shell)
    assert not left, left

    pods = shell.type(GET_PODS, timeout_s=60)
    assert pods.returncode == 0, pods.stderr
    rows = [line.split() for line in pods.stdout.splitlines()[1:]]
    for prefix in SEED_PODS:
        mine = [row for row in rows if row[0].startswith(prefix)]
        assert mine, f"no {prefix}* pod in:\n{pods.stdout}"
        want = "Completed" if prefix == "nvidia-cuda-validator-" else "Running"
        assert all(row[2] == want for row in mine), pods.stdout
    assert not [row for row in rows if row[2] not in ("Running", "Completed")], pods.stdout


def blockers(shell: Shell) -> list[str]:
    """What still keeps the cluster from the seed's result."""
    left = []
    pods = shell.json("kubectl -n gpu-operator-resources get pods -o json")["items"]
    assert isinstance(pods, list)
    for pod in pods:
        phase = pod["status"].get("phase")
        ready = all(c.get("ready") for c in pod["status"].get("containerStatuses") or [{}])
        if not (phase == "Succeeded" or (phase == "Running" and ready)):
            left.append(f"pod {pod['metadata']['name']}: {phase}")
    for node in ("gpu-node-1", "gpu-node-2"):
        allocatable = shell.json(f"kubectl get node {node} -o json")["status"]
        assert isinstance(allocatable, dict)
        have = {k: allocatable["allocatable"].get(k) for k in BALANCED}
        if have != BALANCED:
            left.append(f"node {node}: {have}")
    policy = shell.json("kubectl get clusterpolicy cluster-policy -o json")
    status = policy.get("status")
    state = status.get("state") if isinstance(status, dict) else None
    if state != "ready":
        left.append(f"ClusterPolicy {state}")
    return left
