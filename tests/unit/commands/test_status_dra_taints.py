"""``gpu-operator status`` shows the DRA device taints of each GPU node's ResourceSlices (node,
device, key, value, effect) as blocking lines; a node without tainted devices shows none."""

from __future__ import annotations

from typing import Any

from gpu_operator.commands.status import cluster_report
from helpers.dra import gpu, node_slice


def node(name: str) -> dict[str, Any]:
    labels = {"nvidia.com/gpu.present": "true"}
    return {"metadata": {"name": name, "labels": labels}, "spec": {}, "status": {}}


def tainted(index: int, key: str, value: str = "") -> dict[str, Any]:
    device = gpu(index)
    taint = {"key": key, "effect": "NoSchedule", "timeAdded": "2026-12-07T10:00:00Z"}
    if value:
        taint["value"] = value
    device["taints"] = [taint]
    return device


def test_each_tainted_device_is_a_line_of_its_node() -> None:
    slices = [
        node_slice("gpu-a", [gpu(0), tainted(3, "gpu.nvidia.com/xid", "79")]),
        node_slice("gpu-b", [tainted(0, "gpu.nvidia.com/gpu-lost")]),
        node_slice("gpu-c", [gpu(0)]),
    ]
    reports, _, _ = cluster_report([node("gpu-a"), node("gpu-b"), node("gpu-c")], [], None, slices)
    by_name = {r.name: r for r in reports}
    assert by_name["gpu-a"].device_taints == [
        {
            "driver": "gpu.nvidia.com",
            "device": "gpu-3",
            "key": "gpu.nvidia.com/xid",
            "value": "79",
            "effect": "NoSchedule",
        }
    ]
    assert by_name["gpu-a"].blocking == [
        "device gpu-3 (gpu.nvidia.com) tainted gpu.nvidia.com/xid=79:NoSchedule"
    ]
    assert by_name["gpu-b"].blocking == [
        "device gpu-0 (gpu.nvidia.com) tainted gpu.nvidia.com/gpu-lost:NoSchedule"
    ]
    assert by_name["gpu-c"].blocking == []
    assert by_name["gpu-c"].device_taints == []
