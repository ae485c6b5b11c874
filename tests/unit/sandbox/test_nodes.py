"""Simulated nodes: presets and OS parsing, the node's root directory, the registered Node."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest
from lightkube.models.core_v1 import Node

from gpu_operator.errors import ConfigError
from gpu_operator.sandbox.nodes import node_object, parse_nodes, parse_os, prepare_root, state_file


def test_node_presets_expand_to_numbered_nodes_with_their_gpus() -> None:
    specs = parse_nodes("dgx-a100:2,h200:1", "rocky:8.5")
    assert [(s.name, s.preset, s.gpus) for s in specs] == [
        ("gpu-node-1", "dgx-a100", 8),
        ("gpu-node-2", "dgx-a100", 8),
        ("gpu-node-3", "h200", 1),
    ]
    assert specs[0].gpu_model == "NVIDIA A100-SXM4-40GB"
    assert specs[0].os.pretty == "Rocky Linux 8.5"


@pytest.mark.parametrize(
    ("nodes", "os_text", "message"),
    [
        pytest.param("dgx-z:1", "rocky:8.5", "unknown GPU model or preset", id="unknown preset"),
        pytest.param("dgx-a100:two", "rocky:8.5", "must be a number", id="count not a number"),
        pytest.param("dgx-a100:0", "rocky:8.5", "1..64", id="count zero"),
        pytest.param("dgx-a100", "windows:11", "--os 'windows:11'", id="unknown OS"),
        pytest.param("", "rocky:8.5", "at least one node", id="no nodes"),
    ],
)
def test_bad_node_or_os_specs_are_errors_naming_the_part(
    nodes: str, os_text: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_nodes(nodes, os_text)


def test_the_registered_node_passes_the_strict_kubernetes_model_with_complete_node_info() -> None:
    spec = parse_nodes("dgx-a100:1", "rocky:8.5")[0]
    body = node_object(spec.name, spec, "2026-11-27T14:00:00Z")
    node = cast(Node, Node.from_dict(body))
    assert node.status is not None
    assert node.status.nodeInfo is not None
    info = node.status.nodeInfo
    assert info.osImage == "Rocky Linux 8.5"
    assert info.containerRuntimeVersion.startswith("containerd://")
    assert info.kernelVersion.endswith(".el8.0.2.x86_64")
    assert {c.type: c.status for c in node.status.conditions or []}["Ready"] == "True"
    labels = body["metadata"]["labels"]
    assert labels["feature.node.kubernetes.io/pci-10de.present"] == "true"
    assert labels["feature.node.kubernetes.io/system-os_release.ID"] == "rocky"
    assert labels["feature.node.kubernetes.io/system-os_release.VERSION_ID"] == "8.5"


def test_the_control_plane_node_is_tainted_and_has_no_gpu_labels() -> None:
    body = node_object("sandbox-control-plane", None, "2026-11-27T14:00:00Z")
    assert body["spec"]["taints"][0]["key"] == "node-role.kubernetes.io/control-plane"
    assert not any(k.startswith("feature.node") for k in body["metadata"]["labels"])


def test_a_node_root_holds_its_os_release_kernel_pci_devices_and_gpu_state(tmp_path: Path) -> None:
    spec = parse_nodes("a30x4:1", "ubuntu:22.04")[0]
    prepare_root(tmp_path, spec)
    assert 'ID="ubuntu"' in (tmp_path / "etc/os-release").read_text()
    assert (tmp_path / "proc/sys/kernel/osrelease").read_text().strip() == parse_os(
        "ubuntu:22.04"
    ).kernel
    devices = sorted((tmp_path / "sys/bus/pci/devices").iterdir())
    assert len(devices) == 4
    assert (devices[0] / "vendor").read_text().strip() == "0x10de"
    assert state_file(tmp_path, "a30x4").is_file()
    assert (tmp_path / "var/lib/kubelet/device-plugins").is_dir()
