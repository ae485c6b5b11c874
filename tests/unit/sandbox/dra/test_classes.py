"""The shipped DeviceClasses are upstream's (names and selectors), the emulator accepts them,
and they split a partitioned GPU's devices into the whole GPU and its MIG devices."""

from __future__ import annotations

from gpu_operator.sandbox.apiserver import ServerThread
from gpu_operator.sandbox.dra.allocator import Allocator, Preferences
from gpu_operator.sandbox.dra.classes import device_classes
from gpu_operator.sandbox.dra.inventory import Inventory
from gpu_operator.sandbox.rest import Rest
from helpers.dra import claim, exactly, node, node_slice, partitioned_gpu

UPSTREAM = {
    "gpu.nvidia.com": "device.driver == 'gpu.nvidia.com' && "
    "device.attributes['gpu.nvidia.com'].type == 'gpu'",
    "mig.nvidia.com": "device.driver == 'gpu.nvidia.com' && "
    "device.attributes['gpu.nvidia.com'].type == 'mig'",
}


def test_names_and_selectors_are_upstreams() -> None:
    shipped = {
        c["metadata"]["name"]: [s["cel"]["expression"] for s in c["spec"]["selectors"]]
        for c in device_classes()
    }
    assert shipped == {name: [expression] for name, expression in UPSTREAM.items()}


def test_the_emulator_accepts_them(server_thread: ServerThread) -> None:
    rest = Rest(server_thread.url)
    try:
        for device_class in device_classes():
            rest.create("resource.k8s.io/v1/deviceclasses", device_class)
        names = [c["metadata"]["name"] for c in rest.list("resource.k8s.io/v1/deviceclasses")]
    finally:
        rest.close()
    assert sorted(names) == ["gpu.nvidia.com", "mig.nvidia.com"]


def test_they_tell_whole_gpus_from_mig_devices() -> None:
    counters, parts = partitioned_gpu(0)
    slices = [node_slice("node-a", parts, counters=[counters])]
    classes = {c["metadata"]["name"]: c for c in device_classes()}

    def allocate(device_class: str, **extra: object) -> list[str]:
        allocator = Allocator(Inventory.from_slices(slices), classes, (), Preferences())
        request = exactly("r", device_class, allocationMode="All", **extra)
        got = allocator.allocate([claim("c", request)], node("node-a"))
        return [r.device.device for a in got for r in a.results]

    assert allocate("gpu.nvidia.com") == ["gpu-0"]
    one_g = "device.attributes['gpu.nvidia.com'].profile == '1g.10gb'"
    assert allocate("mig.nvidia.com", selectors=[{"cel": {"expression": one_g}}]) == [
        f"gpu-0-mig-1g-10gb-{p}" for p in range(7)
    ]
