"""The DRA allocator on plain objects: selectors (classes', requests', on attributes and
capacity), ExactCount and All, firstAvailable, counters of partitionable devices, devices taken
by other claims, matchAttribute constraints, the node a device is on, and device preferences."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from gpu_operator.sandbox.dra.allocator import (
    Allocation,
    Allocator,
    Candidate,
    Preferences,
    Unsatisfiable,
)
from gpu_operator.sandbox.dra.inventory import DeviceRef, Inventory
from helpers.dra import CLASSES, DRIVER, Obj, claim, exactly, gpu, node, node_slice, partitioned_gpu

NODE = node("node-a")


def allocator(
    *slices: Obj, allocated: Sequence[DeviceRef] = (), preferences: Preferences | None = None
) -> Allocator:
    return Allocator(
        Inventory.from_slices(slices), CLASSES, allocated, preferences or Preferences()
    )


def devices(allocations: list[Allocation]) -> list[str]:
    return [r.device.device for a in allocations for r in a.results]


def eight_gpus(node_name: str = "node-a") -> Obj:
    return node_slice(node_name, [gpu(i) for i in range(8)])


def test_one_gpu_is_the_first_in_slice_order() -> None:
    result = allocator(eight_gpus()).allocate([claim("c", exactly("gpu"))], NODE)
    assert devices(result) == ["gpu-0"]
    assert result[0].status() == {
        "devices": {
            "results": [{"request": "gpu", "driver": DRIVER, "pool": "node-a", "device": "gpu-0"}]
        },
        "nodeSelector": {
            "nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-a"]}]}
            ]
        },
    }


def test_exact_count_takes_that_many_and_skips_devices_other_claims_hold() -> None:
    taken = [DeviceRef(DRIVER, "node-a", "gpu-0"), DeviceRef(DRIVER, "node-a", "gpu-2")]
    result = allocator(eight_gpus(), allocated=taken).allocate(
        [claim("c", exactly("gpus", count=3))], NODE
    )
    assert devices(result) == ["gpu-1", "gpu-3", "gpu-4"]


def test_too_few_free_devices_is_refused_naming_claim_and_request() -> None:
    taken = [DeviceRef(DRIVER, "node-a", f"gpu-{i}") for i in range(6)]
    with pytest.raises(Unsatisfiable, match=r"claim default/c, request gpus: 2 of the 3"):
        allocator(eight_gpus(), allocated=taken).allocate(
            [claim("c", exactly("gpus", count=3))], NODE
        )


def test_all_mode_takes_every_matching_device_and_fails_when_one_is_taken() -> None:
    small = node_slice("node-a", [gpu(0), gpu(1), gpu(2, "NVIDIA A100-SXM4-40GB", "40Gi")])
    h100 = "device.attributes['gpu.nvidia.com'].productName == 'NVIDIA H100 80GB HBM3'"
    request = exactly("all", "gpu.nvidia.com", h100, allocationMode="All")
    assert devices(allocator(small).allocate([claim("c", request)], NODE)) == ["gpu-0", "gpu-1"]
    busy = allocator(small, allocated=[DeviceRef(DRIVER, "node-a", "gpu-1")])
    with pytest.raises(
        Unsatisfiable, match="asks for all 2 matching devices, and gpu-1 is allocated"
    ):
        busy.allocate([claim("c", request)], NODE)


def test_cel_selects_on_attributes_and_capacity() -> None:
    mixed = node_slice(
        "node-a",
        [gpu(0, "NVIDIA A100-SXM4-40GB", "40Gi"), gpu(1, "NVIDIA L4", "24Gi"), gpu(2)],
    )
    big = 'device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("40Gi")) >= 0'
    not_a100 = 'device.attributes["gpu.nvidia.com"].productName != "NVIDIA A100-SXM4-40GB"'
    assert devices(
        allocator(mixed).allocate([claim("c", exactly("g", "gpu.nvidia.com", big))], NODE)
    ) == ["gpu-0"]
    both = exactly("g", "gpu.nvidia.com", big, not_a100)
    assert devices(allocator(mixed).allocate([claim("c", both)], NODE)) == ["gpu-2"]
    recent = 'device.attributes["gpu.nvidia.com"].driverVersion.isGreaterThan(semver("570.0.0"))'
    with pytest.raises(Unsatisfiable, match="0 of the 1 matching devices"):
        allocator(mixed).allocate([claim("c", exactly("g", "gpu.nvidia.com", recent))], NODE)


def test_the_class_selector_keeps_mig_devices_out_of_a_gpu_request() -> None:
    counters, parts = partitioned_gpu(0)
    only_migs = node_slice("node-a", parts[1:], counters=[counters])
    with pytest.raises(Unsatisfiable, match="0 of the 1"):
        allocator(only_migs).allocate([claim("c", exactly("gpu"))], NODE)
    assert devices(
        allocator(only_migs).allocate([claim("c", exactly("mig", "mig.nvidia.com"))], NODE)
    ) == ["gpu-0-mig-3g-40gb-0"]


def test_a_selector_runtime_error_is_reported_not_read_as_false() -> None:
    missing = "device.attributes['gpu.nvidia.com'].noSuchAttribute == 'x'"
    with pytest.raises(
        Unsatisfiable, match=r"request g: device gpu-0: CEL runtime error: .*noSuchAttribute"
    ):
        allocator(eight_gpus()).allocate(
            [claim("c", exactly("g", "gpu.nvidia.com", missing))], NODE
        )


def test_a_missing_device_class_is_named() -> None:
    with pytest.raises(Unsatisfiable, match=r"device class nope\.example\.com does not exist"):
        allocator(eight_gpus()).allocate([claim("c", exactly("g", "nope.example.com"))], NODE)


def test_counters_exhausted_refuse_a_device_whose_consumption_exceeds_what_is_left() -> None:
    counters, parts = partitioned_gpu(0)
    one = node_slice("node-a", parts, counters=[counters])
    three_g = exactly(
        "m", "mig.nvidia.com", "device.attributes['gpu.nvidia.com'].profile == '3g.40gb'"
    )
    alloc = allocator(one)
    first = alloc.allocate([claim("a", three_g)], NODE)
    alloc.commit(first)
    assert devices(first) == ["gpu-0-mig-3g-40gb-0"]
    # The whole GPU needs all 8 memory slices: 4 are gone.
    with pytest.raises(Unsatisfiable, match="the counters device gpu-0 consumes are used up"):
        alloc.allocate([claim("b", exactly("g"))], NODE)
    alloc.commit(alloc.allocate([claim("b", three_g)], NODE))
    # Both 3g.40gb took all memory slices: a 1g.10gb device is free by name but not by counters.
    with pytest.raises(Unsatisfiable, match="consumes are used up"):
        alloc.allocate([claim("c", exactly("m", "mig.nvidia.com"))], NODE)
    assert alloc.left(DRIVER, "node-a")["gpu-0-counters"]["memory-slices"] == 0


def test_counters_of_devices_allocated_before_count() -> None:
    counters, parts = partitioned_gpu(0)
    one = node_slice("node-a", parts, counters=[counters])
    held = [DeviceRef(DRIVER, "node-a", "gpu-0")]
    with pytest.raises(Unsatisfiable):
        allocator(one, allocated=held).allocate([claim("c", exactly("m", "mig.nvidia.com"))], NODE)


def test_backtracking_finds_devices_that_fit_together() -> None:
    # Seven 1g.10gb requests and one 3g.40gb: taking 1g devices greedily in slice order would
    # still leave room, but a 3g request first and then 4 x 1g must not exceed 8 memory slices.
    counters, parts = partitioned_gpu(0)
    one = node_slice("node-a", parts, counters=[counters])
    three_g = "device.attributes['gpu.nvidia.com'].profile == '3g.40gb'"
    one_g = "device.attributes['gpu.nvidia.com'].profile == '1g.10gb'"
    c = claim(
        "c",
        exactly("big", "mig.nvidia.com", three_g),
        exactly("small", "mig.nvidia.com", one_g, count=4),
    )
    got = allocator(one).allocate([c], NODE)
    assert len(devices(got)) == 5
    with pytest.raises(Unsatisfiable):
        allocator(one).allocate(
            [
                claim(
                    "c",
                    exactly("big", "mig.nvidia.com", three_g),
                    exactly("small", "mig.nvidia.com", one_g, count=5),
                )
            ],
            NODE,
        )


def test_first_available_falls_back_to_the_next_subrequest() -> None:
    taken = [DeviceRef(DRIVER, "node-a", f"gpu-{i}") for i in range(7)]
    request = {
        "name": "gpu",
        "firstAvailable": [
            {"name": "two", "deviceClassName": "gpu.nvidia.com", "count": 2},
            {"name": "one", "deviceClassName": "gpu.nvidia.com", "count": 1},
        ],
    }
    got = allocator(eight_gpus(), allocated=taken).allocate([claim("c", request)], NODE)
    assert [(r.request, r.device.device) for r in got[0].results] == [("gpu/one", "gpu-7")]


def test_match_attribute_keeps_devices_of_one_kind_together() -> None:
    mixed = node_slice("node-a", [gpu(0, "NVIDIA L4", "24Gi"), gpu(1), gpu(2, "NVIDIA L4", "24Gi")])
    c = claim(
        "c",
        exactly("gpus", count=2),
        constraints=[{"matchAttribute": "gpu.nvidia.com/productName"}],
    )
    assert devices(allocator(mixed).allocate([c], NODE)) == ["gpu-0", "gpu-2"]


def test_devices_of_another_node_are_not_candidates() -> None:
    with pytest.raises(Unsatisfiable):
        allocator(eight_gpus("node-b")).allocate([claim("c", exactly("gpu"))], NODE)


def test_only_the_latest_pool_generation_counts() -> None:
    old = node_slice("node-a", [gpu(0), gpu(1)], generation=1)
    new = node_slice("node-a", [gpu(5)], generation=2)
    assert devices(allocator(old, new).allocate([claim("c", exactly("gpu"))], NODE)) == ["gpu-5"]


def test_tainted_devices_are_skipped_unless_tolerated() -> None:
    sick = gpu(0)
    sick["taints"] = [{"key": "gpu.nvidia.com/xid", "value": "79", "effect": "NoSchedule"}]
    slices = node_slice("node-a", [sick, gpu(1)])
    assert devices(allocator(slices).allocate([claim("c", exactly("gpu"))], NODE)) == ["gpu-1"]
    tolerant = exactly("gpu", tolerations=[{"key": "gpu.nvidia.com/xid", "operator": "Exists"}])
    assert devices(allocator(slices).allocate([claim("c", tolerant)], NODE)) == ["gpu-0"]


def test_several_claims_of_one_pod_are_all_or_nothing() -> None:
    two = node_slice("node-a", [gpu(0), gpu(1)])
    alloc = allocator(two)
    with pytest.raises(Unsatisfiable, match="claim default/b"):
        alloc.allocate([claim("a", exactly("gpu")), claim("b", exactly("gpu", count=2))], NODE)
    got = alloc.allocate([claim("a", exactly("gpu")), claim("b", exactly("gpu"))], NODE)
    assert [(a.claim, devices([a])) for a in got] == [
        ("default/a", ["gpu-0"]),
        ("default/b", ["gpu-1"]),
    ]


def test_a_registered_preference_orders_its_drivers_candidates() -> None:
    preferences = Preferences()
    seen: list[list[str]] = []

    def last_first(candidates: Sequence[Candidate]) -> list[Candidate]:
        seen.append([c.device.ref.device for c in candidates])
        return list(reversed(candidates))

    preferences.register(DRIVER, last_first)
    held = [DeviceRef(DRIVER, "node-a", "gpu-7")]
    got = allocator(eight_gpus(), allocated=held, preferences=preferences).allocate(
        [claim("c", exactly("gpus", count=2))], NODE
    )
    assert devices(got) == ["gpu-6", "gpu-5"]
    assert seen == [[f"gpu-{i}" for i in range(7)]]


def test_a_preference_that_leaves_a_device_out_keeps_it_unused() -> None:
    preferences = Preferences()
    preferences.register(DRIVER, lambda cs: [c for c in cs if c.device.ref.device != "gpu-0"])
    got = allocator(eight_gpus(), preferences=preferences).allocate(
        [claim("c", exactly("gpu"))], NODE
    )
    assert devices(got) == ["gpu-1"]


def test_candidates_carry_their_pools_counters_left() -> None:
    counters, parts = partitioned_gpu(0)
    one = node_slice("node-a", parts, counters=[counters])
    preferences = Preferences()
    lefts: list[Obj] = []

    def record(cs: Sequence[Candidate]) -> Sequence[Candidate]:
        lefts.append({k: dict(v) for k, v in cs[0].counters_left.items()})
        return cs

    preferences.register(DRIVER, record)
    alloc = allocator(
        one, allocated=[DeviceRef(DRIVER, "node-a", "gpu-0-mig-1g-10gb-0")], preferences=preferences
    )
    alloc.allocate([claim("c", exactly("m", "mig.nvidia.com"))], NODE)
    assert lefts == [{"gpu-0-counters": {"memory-slices": 7, "compute-slices": 6}}]


def test_class_and_claim_config_go_into_the_allocation() -> None:
    """The driver reads its opaque parameters (time-slicing, MPS) from
    ``allocation.devices.config``: the class's for each request that used it, then the claim's
    for the requests it allocated."""
    sharing = {
        "driver": DRIVER,
        "parameters": {"kind": "GpuConfig", "sharing": {"strategy": "TimeSlicing"}},
    }
    classes = {
        **CLASSES,
        "shared.gpu": {
            "metadata": {"name": "shared.gpu"},
            "spec": {
                "selectors": CLASSES["gpu.nvidia.com"]["spec"]["selectors"],
                "config": [{"opaque": sharing}],
            },
        },
    }
    mps = {"driver": DRIVER, "parameters": {"kind": "GpuConfig", "sharing": {"strategy": "MPS"}}}
    c = claim("c", exactly("a", "shared.gpu"), exactly("b"))
    c["spec"]["devices"]["config"] = [
        {"requests": ["b"], "opaque": mps},
        {"requests": ["elsewhere"], "opaque": mps},
        {"opaque": sharing},
    ]
    allocator = Allocator(Inventory.from_slices([eight_gpus()]), classes, (), Preferences())
    [got] = allocator.allocate([c], NODE)
    assert got.status()["devices"]["config"] == [
        {"source": "FromClass", "requests": ["a"], "opaque": sharing},
        {"source": "FromClaim", "requests": ["b"], "opaque": mps},
        {"source": "FromClaim", "opaque": sharing},
    ]
