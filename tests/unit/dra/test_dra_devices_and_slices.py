"""A GPU as upstream's DRA driver publishes it (name, attribute names, value types and
spellings), the node's one ResourceSlice, device taints from health, and the comparison that
keeps a steady node from writing."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gpu_operator.dra.devices import (
    NodeGpus,
    architecture_name,
    binary_quantity,
    gpu_device,
    pcie_bus_id,
    semver,
)
from gpu_operator.dra.slices import Taint, build_slice, health_taints, same_content


def test_an_h100_is_published_with_upstreams_name_attributes_and_memory(
    node_gpus: Callable[[str], NodeGpus],
) -> None:
    node = node_gpus("hgx-h100")
    gpu = node.gpus[3]
    device = gpu_device(gpu, node.system)
    assert device == {
        "name": "gpu-3",
        "attributes": {
            "type": {"string": "gpu"},
            "uuid": {"string": gpu.uuid},
            "productName": {"string": "NVIDIA H100 80GB HBM3"},
            "brand": {"string": "Nvidia"},
            "architecture": {"string": "Hopper"},
            "cudaComputeCapability": {"version": "9.0.0"},
            "driverVersion": {"version": "580.159.4"},
            "cudaDriverVersion": {"version": "13.0.0"},
            "pcieBusID": {"string": pcie_bus_id(gpu.pci_bus_id)},
            "index": {"int": 3},
            "minor": {"int": 3},
        },
        "capacity": {"memory": {"value": "81559Mi"}},
    }
    assert gpu.uuid.startswith("GPU-")
    assert device["attributes"]["pcieBusID"]["string"].startswith("0000:")


def test_every_gpu_of_a_node_gets_its_own_name(node_gpus: Callable[[str], NodeGpus]) -> None:
    node = node_gpus("dgx-a100")
    names = [gpu_device(g, node.system)["name"] for g in node.gpus]
    assert names == [f"gpu-{g.minor_number}" for g in node.gpus]
    assert len(set(names)) == 8
    assert node.by_name()["gpu-5"].minor_number == 5


@pytest.mark.parametrize(
    ("text", "expected"),
    [("580.159.04", "580.159.4"), ("9.0", "9.0.0"), ("13.0", "13.0.0"), ("550.54.15", "550.54.15")],
)
def test_versions_as_masterminds_semver_prints_them(text: str, expected: str) -> None:
    assert semver(text) == expected


@pytest.mark.parametrize(
    ("nvml", "expected"),
    [("00000000:07:00.0", "0000:07:00.0"), ("00000001:B3:00.0", "0001:b3:00.0")],
)
def test_pcie_bus_ids_as_go_nvlib_spells_them(nvml: str, expected: str) -> None:
    assert pcie_bus_id(nvml) == expected


@pytest.mark.parametrize(
    ("family", "expected"),
    [("hopper", "Hopper"), ("ampere", "Ampere"), ("ada-lovelace", "Ada Lovelace")],
)
def test_architectures_as_go_nvlib_names_them(family: str, expected: str) -> None:
    assert architecture_name(family) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (85520809984, "81559Mi"),
        (80 * 2**30, "80Gi"),
        (16 * 2**40, "16Ti"),
        (1536, "1536"),
        (3 * 1024, "3Ki"),
    ],
)
def test_memory_is_a_binary_quantity_in_its_largest_exact_unit(value: int, expected: str) -> None:
    assert binary_quantity(value) == expected


def test_the_slice_is_one_pool_per_node_with_taints_on_the_unhealthy_devices(
    node_gpus: Callable[[str], NodeGpus],
) -> None:
    node = node_gpus("hgx-h100")
    devices = [gpu_device(g, node.system) for g in node.gpus]
    taints = {
        "gpu-2": health_taints(48, lost=False),
        "gpu-5": health_taints(79, lost=True),
        "gpu-6": health_taints(None, lost=False),
    }
    body = build_slice("node-a", devices, taints, generation=4)
    assert body["apiVersion"] == "resource.k8s.io/v1"
    assert body["kind"] == "ResourceSlice"
    assert body["metadata"] == {"name": "node-a-gpu.nvidia.com"}
    spec = body["spec"]
    assert spec["driver"] == "gpu.nvidia.com"
    assert spec["nodeName"] == "node-a"
    assert spec["pool"] == {"name": "node-a", "generation": 4, "resourceSliceCount": 1}
    by_name = {d["name"]: d for d in spec["devices"]}
    assert len(by_name) == 8
    assert by_name["gpu-2"]["taints"] == [
        {"key": "gpu.nvidia.com/xid", "value": "48", "effect": "NoSchedule"}
    ]
    assert by_name["gpu-5"]["taints"] == [
        {"key": "gpu.nvidia.com/xid", "value": "79", "effect": "NoSchedule"},
        {"key": "gpu.nvidia.com/gpu-lost", "effect": "NoSchedule"},
    ]
    assert by_name["gpu-6"]["taints"] == [
        {"key": "gpu.nvidia.com/unmonitored", "effect": "NoSchedule"}
    ]
    assert [n for n, d in by_name.items() if "taints" in d] == ["gpu-2", "gpu-5", "gpu-6"]
    assert "taints" not in devices[2]  # the input is left as it was


def test_a_stored_slice_with_server_fields_and_another_generation_is_the_same(
    node_gpus: Callable[[str], NodeGpus],
) -> None:
    node = node_gpus("h200")
    devices = [gpu_device(g, node.system) for g in node.gpus]
    desired = build_slice("n", devices, {"gpu-0": [Taint("gpu.nvidia.com/xid", "79")]}, 1)
    stored = build_slice("n", devices, {"gpu-0": [Taint("gpu.nvidia.com/xid", "79")]}, 7)
    stored["metadata"]["resourceVersion"] = "12"
    stored["spec"]["devices"][0]["taints"][0]["timeAdded"] = "2026-12-07T09:00:00Z"
    assert same_content(stored, desired)
    assert not same_content(None, desired)
    assert not same_content(stored, build_slice("n", devices, {}, 1))
    assert not same_content(stored, build_slice("n", devices[:-1] or [], {}, 1))
