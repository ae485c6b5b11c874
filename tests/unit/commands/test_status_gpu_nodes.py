"""``gpu-operator status`` lists the GPU nodes the operator manages: ``nvidia.com/gpu.present``
or any of NFD's NVIDIA PCI labels (the operator's own test, ``nfd.is_gpu_node``), no others."""

from __future__ import annotations

from typing import Any

import pytest

from gpu_operator.commands.status import cluster_report
from gpu_operator.nfd import GPU_PCI_LABELS


def node(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}, "spec": {}, "status": {}}


@pytest.mark.parametrize("label", [*GPU_PCI_LABELS, "nvidia.com/gpu.present"])
def test_a_node_with_an_nvidia_label_is_listed(label: str) -> None:
    reports, _, _ = cluster_report([node("gpu", **{label: "true"}), node("cpu")], [], None)
    assert [r.name for r in reports] == ["gpu"]


def test_a_label_that_is_not_true_does_not_make_a_gpu_node() -> None:
    labels = dict.fromkeys(GPU_PCI_LABELS, "false")
    reports, _, _ = cluster_report([node("cpu", **labels)], [], None)
    assert reports == []
