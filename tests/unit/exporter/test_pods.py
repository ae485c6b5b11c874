"""Device ids from PodResources map to exporter entities by dcgm-exporter's rules (§1.8)."""

from __future__ import annotations

import pytest

from gpu_operator.exporter.pods import PodRef, entity_key, pod_map
from gpu_operator.podresources import ContainerDevices

MIG = {"MIG-aaaa": (2, 7)}


@pytest.mark.parametrize(
    ("device_id", "key"),
    [
        pytest.param("GPU-1234", "GPU-1234", id="a whole GPU by UUID"),
        pytest.param("GPU-1234::3", "GPU-1234", id="a time-slicing replica keys on its GPU"),
        pytest.param("MIG-aaaa", "2-7", id="a MIG UUID keys on parent index and GI id"),
        pytest.param("MIG-aaaa::1", "2-7", id="a shared MIG device too"),
        pytest.param("MIG-zzzz", None, id="a MIG UUID this node lacks maps to nothing"),
        pytest.param("nvidia3/gi5", "3-5", id="GKE MIG id"),
        pytest.param("nvidia3/gi5/vgpu1", "3-5", id="GKE shared MIG id"),
        pytest.param("nvidia2/vgpu4", "nvidia2", id="GKE shared GPU id"),
    ],
)
def test_device_ids_map_to_entity_keys(device_id: str, key: str | None) -> None:
    assert entity_key(device_id, MIG) == key


def test_only_nvidia_resources_are_attributed_and_the_last_listed_wins() -> None:
    entries = [
        ContainerDevices("a", "ns", "c", "nvidia.com/gpu", ("GPU-1",)),
        ContainerDevices("b", "ns", "c", "nvidia.com/gpu", ("GPU-1::2",)),
        ContainerDevices("m", "ns", "c", "nvidia.com/mig-1g.5gb", ("MIG-aaaa",)),
        ContainerDevices("f", "ns", "c", "example.com/fpga", ("GPU-9",)),
        ContainerDevices("x", "ns", "c", "example.com/gpu", ("GPU-8",)),
    ]
    assert pod_map(entries, MIG, extra_resources=["example.com/gpu"]) == {
        "GPU-1": PodRef("b", "ns", "c"),
        "2-7": PodRef("m", "ns", "c"),
        "GPU-8": PodRef("x", "ns", "c"),
    }
