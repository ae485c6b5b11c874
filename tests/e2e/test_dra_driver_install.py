"""The DRA driver installed by the chart, as a user would: `gpu-operator sandbox up --no-chart`,
then the real `helm install --wait … --set draDriver.enabled=true --set devicePlugin.enabled=false`;
the operator renders the DRA kubelet plugin's DaemonSet, the sandbox's kubelets run its pods
(registered through each node's plugins_registry), and `kubectl get resourceslices` lists one
slice of driver gpu.nvidia.com per node, with the node's GPUs; the DeviceClasses are there."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.user_shell import Shell, sandbox_up

CHART = Path(__file__).resolve().parents[2] / "deployments/gpu-operator"
NODES = ("gpu-node-1", "gpu-node-2")
HELM_INSTALL = (
    "helm install --wait -n gpu-operator --create-namespace "
    "--set draDriver.enabled=true --set devicePlugin.enabled=false gpu-operator {chart}"
)


@pytest.fixture(scope="module")
def shell() -> Iterator[Shell]:
    """`gpu-operator sandbox up --no-chart` in the background (two DGX A100 nodes)."""
    with sandbox_up() as running:
        yield running


def slices_by_node(shell: Shell) -> dict[str, dict[str, object]]:
    found = {}
    for item in shell.items("kubectl get resourceslices -o json"):
        spec = item["spec"]
        assert isinstance(spec, dict)
        if spec.get("driver") == "gpu.nvidia.com":
            found[str(spec["nodeName"])] = spec
    return found


@pytest.mark.timeout(400)
def test_helm_install_with_the_dra_driver_publishes_both_nodes_slices(shell: Shell) -> None:
    install = shell.type(HELM_INSTALL.format(chart=CHART), timeout_s=300)
    assert install.returncode == 0, install.stdout + install.stderr
    assert "STATUS: deployed" in install.stdout

    deadline = time.monotonic() + 240
    slices = slices_by_node(shell)
    while set(slices) != set(NODES) and time.monotonic() < deadline:
        time.sleep(2)
        slices = slices_by_node(shell)
    pods = shell.type("kubectl -n gpu-operator get pods -o wide").stdout
    assert set(slices) == set(NODES), f"slices of {sorted(slices)}; pods:\n{pods}"
    for spec in slices.values():
        devices = spec["devices"]
        assert isinstance(devices, list)
        assert [d["name"] for d in devices] == [f"gpu-{i}" for i in range(8)]  # DGX A100

    listed = shell.type("kubectl get resourceslices")
    assert listed.returncode == 0, listed.stderr
    for node in NODES:
        assert f"{node}-gpu.nvidia.com" in listed.stdout
    plugin_pods = [
        p
        for p in shell.items("kubectl -n gpu-operator get pods -o json")
        if str(p["metadata"]["name"]).startswith("nvidia-dra-driver-gpu-kubelet-plugin-")  # type: ignore[index]
    ]
    assert sorted(p["spec"]["nodeName"] for p in plugin_pods) == list(NODES)  # type: ignore[index]
    assert not [
        p
        for p in shell.items("kubectl -n gpu-operator get pods -o json")
        if str(p["metadata"]["name"]).startswith("nvidia-device-plugin-daemonset")  # type: ignore[index]
    ]
    classes = shell.type("kubectl get deviceclasses -o name").stdout.split()
    assert classes == [
        "deviceclass.resource.k8s.io/gpu.nvidia.com",
        "deviceclass.resource.k8s.io/mig.nvidia.com",
    ]
