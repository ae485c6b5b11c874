"""The node-labeler agent labels a real (emulated) Node through the API, leaves other writers'
labels alone, and makes no write once the labels are there."""

from __future__ import annotations

from pathlib import Path

from lightkube import Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Node

from gpu_operator.operator.node_features import FeatureRoots
from gpu_operator.operator.node_labeler import LabelerSettings, label_once


def roots(tmp_path: Path) -> FeatureRoots:
    device = tmp_path / "sys" / "bus" / "pci" / "devices" / "0000:07:00.0"
    device.mkdir(parents=True)
    (device / "vendor").write_text("0x10de\n")
    (device / "class").write_text("0x030200\n")
    (tmp_path / "os-release").write_text('ID="rocky"\nVERSION_ID="8.5"\n')
    (tmp_path / "osrelease").write_text("4.18.0-348.el8.x86_64\n")
    return FeatureRoots(tmp_path / "sys", tmp_path / "os-release", tmp_path / "osrelease")


def test_the_labeller_writes_nfd_labels_once_and_then_nothing(
    client: Client, tmp_path: Path
) -> None:
    client.create(
        Node(
            metadata=ObjectMeta(
                name="gpu-1",
                labels={"team": "ml", "feature.node.kubernetes.io/pci-1af4.present": "true"},
            )
        )
    )
    settings = LabelerSettings("gpu-1", roots=roots(tmp_path), oneshot=True)
    first = label_once(client, settings)
    assert first["feature.node.kubernetes.io/system-os_release.ID"] == "rocky"
    labels = client.get(Node, "gpu-1").metadata.labels
    assert labels["feature.node.kubernetes.io/pci-10de.present"] == "true"
    assert labels["feature.node.kubernetes.io/system-os_release.VERSION_ID"] == "8.5"
    assert labels["team"] == "ml"
    assert labels["feature.node.kubernetes.io/pci-1af4.present"] == "true"
    version = client.get(Node, "gpu-1").metadata.resourceVersion
    assert label_once(client, settings) == {}
    assert client.get(Node, "gpu-1").metadata.resourceVersion == version
