"""``gpu-operator status`` with NVIDIADriver CRs: a driver pod of a CR's or OS pool's DaemonSet
(``nvidia-gpu-driver-<cr>-<ostag>``, ``nvidia-driver-daemonset-<ostag>``) counts as the node's
driver operand by the operator's own rule (``driver.pools.is_driver_pool``), the node shows the
CR that drives it (the operator's owner label), and with ``driver.useNvidiaDriverCRD`` a GPU node
no CR drives is named as blocked."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

from gpu_operator.commands.status import cluster_report, render
from gpu_operator.driver.groups import OWNER_LABEL


def node(name: str, **labels: str) -> dict[str, Any]:
    labels = {"nvidia.com/gpu.present": "true", **labels}
    return {"metadata": {"name": name, "labels": labels}, "spec": {}, "status": {}}


def pod(name: str, app: str, node_name: str, ready: bool) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "gpu-operator", "labels": {"app": app}},
        "spec": {"nodeName": node_name},
        "status": {
            "phase": "Running",
            "containerStatuses": [
                {"name": "nvidia-driver-ctr", "ready": ready, "state": {"running": {}}}
            ],
        },
    }


POLICY = {"spec": {"driver": {"enabled": True, "useNvidiaDriverCRD": True}}}


@pytest.mark.parametrize(
    "daemonset",
    [
        "nvidia-gpu-driver-rocky-rocky8",
        "nvidia-vgpu-driver-lab-ubuntu22.04",
        "nvidia-driver-daemonset-rocky8",
        "nvidia-driver-daemonset",
    ],
)
def test_a_driver_pod_of_any_pool_counts_as_the_driver(daemonset: str) -> None:
    pods = [pod("d-1", daemonset, "gpu-1", ready=False), pod("x", "unrelated", "gpu-1", True)]
    (report,), _, _ = cluster_report([node("gpu-1", **{OWNER_LABEL: "rocky"})], pods, POLICY)
    assert set(report.operands) == {daemonset}
    assert report.blocking == ["pod d-1: Running"], "its pod, not ready, is what blocks"


def test_each_node_shows_the_cr_that_drives_it_and_an_undriven_node_is_named() -> None:
    nodes = [
        node("gpu-1", **{OWNER_LABEL: "rocky"}),
        node("gpu-2", **{OWNER_LABEL: "ubuntu"}),
        node("gpu-3"),
    ]
    pods = [
        pod("d-1", "nvidia-gpu-driver-rocky-rocky8", "gpu-1", ready=True),
        pod("d-2", "nvidia-gpu-driver-ubuntu-ubuntu22.04", "gpu-2", ready=True),
    ]
    reports, _, _ = cluster_report(nodes, pods, POLICY)
    assert [(r.name, r.nvidia_driver) for r in reports] == [
        ("gpu-1", "rocky"),
        ("gpu-2", "ubuntu"),
        ("gpu-3", ""),
    ]
    assert [r.blocking for r in reports[:2]] == [[], []]
    assert reports[2].blocking == [
        "no NVIDIADriver CR drives this node: it gets no driver (give a CR a nodeSelector that "
        f"matches it, or create a default one; {OWNER_LABEL})"
    ]
    out = io.StringIO()
    render(Console(file=out, width=200), reports, "ready", [])
    header, *rows = out.getvalue().splitlines()[:4]
    assert header.split()[-1] == "NVIDIADRIVER"
    assert [row.split()[-1] for row in rows] == ["rocky", "ubuntu", "-"]


def test_without_the_crd_mode_nothing_changes() -> None:
    reports, _, _ = cluster_report([node("gpu-1")], [], {"spec": {"driver": {}}})
    assert reports[0].blocking == []
    assert reports[0].nvidia_driver == ""
    out = io.StringIO()
    render(Console(file=out, width=200), reports, "ready", [])
    assert "NVIDIADRIVER" not in out.getvalue()
    off = {"spec": {"driver": {"enabled": False, "useNvidiaDriverCRD": True}}}
    reports, _, _ = cluster_report([node("gpu-1")], [], off)
    assert reports[0].blocking == [], "the driver is off: no CR is expected"
