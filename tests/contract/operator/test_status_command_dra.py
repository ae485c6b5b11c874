"""``gpu-operator status`` against the emulator reads the ResourceSlices and prints a tainted
DRA device of a GPU node (and exits 1, as for any blocking line); ``--json`` carries the taint's
node, device, key, value and effect."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from gpu_operator.cli import app
from gpu_operator.operator.crd import build_crd
from gpu_operator.sandbox.apiserver import ServerThread
from gpu_operator.sandbox.rest import Rest
from helpers.dra import gpu, node_slice


def test_status_shows_the_device_taints_of_the_slices(server_thread: ServerThread) -> None:
    device = gpu(2)
    device["taints"] = [
        {"key": "gpu.nvidia.com/xid", "value": "79", "effect": "NoSchedule",
         "timeAdded": "2026-12-07T10:00:00Z"}
    ]  # fmt: skip
    rest = Rest(server_thread.url)
    try:
        rest.create("apiextensions.k8s.io/v1/customresourcedefinitions", build_crd())
        rest.create(
            "v1/nodes",
            {"metadata": {"name": "gpu-1", "labels": {"nvidia.com/gpu.present": "true"}}},
        )
        rest.create("resource.k8s.io/v1/resourceslices", node_slice("gpu-1", [gpu(0), device]))
    finally:
        rest.close()
    runner = CliRunner()
    text = runner.invoke(app, ["status", "--server", server_thread.url])
    assert text.exit_code == 1, text.output
    assert "gpu-1: device gpu-2 (gpu.nvidia.com) tainted gpu.nvidia.com/xid=79:NoSchedule" in (
        text.output
    )
    as_json = runner.invoke(app, ["status", "--server", server_thread.url, "--json"])
    assert as_json.exit_code == 0, as_json.output
    (report,) = json.loads(as_json.output)["nodes"]
    assert report["device_taints"] == [
        {
            "driver": "gpu.nvidia.com",
            "device": "gpu-2",
            "key": "gpu.nvidia.com/xid",
            "value": "79",
            "effect": "NoSchedule",
        }
    ]
