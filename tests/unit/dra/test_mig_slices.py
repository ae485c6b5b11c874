"""Dynamic MIG's ResourceSlice content (``dra.mig_devices``) for the simulator's H100, A100,
H200 and A30: upstream's device names and attributes, one device per legal placement (the
counts of ``shared/reference/mig.md`` §1.4), per-slice counters, and counters that admit exactly
the sets of instances the driver accepts — checked against a brute-force oracle."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from gpu_operator.dra.devices import binary_quantity, gpu_device
from gpu_operator.dra.mig_devices import (
    MigDeviceId,
    MigGpu,
    device_name,
    full_gpu_consumption,
    parse_device_name,
    shared_counters,
    slice_content,
)
from gpu_operator.gpu import Nvml
from gpu_operator.mig.placement import Placed
from helpers.mig_dra import CounterAllocator, oracle_starts, oracle_valid, quantity_value
from helpers.mig_tables import MIG_MODELS, profiles_of

OpenSim = Callable[..., Nvml]

# Legal placements per profile (mig.md §1.4: the -lgipp start lists), per simulator preset.
PLACEMENT_COUNTS = {
    "hgx-h100": {
        "1g.10gb": 7,
        "1g.10gb+me": 7,
        "1g.20gb": 4,
        "2g.20gb": 3,
        "3g.40gb": 2,
        "4g.40gb": 1,
        "7g.80gb": 1,
    },
    "dgx-a100": {
        "1g.5gb": 7,
        "1g.5gb+me": 7,
        "1g.10gb": 4,
        "2g.10gb": 3,
        "3g.20gb": 2,
        "4g.20gb": 1,
        "7g.40gb": 1,
    },
    "h200": {
        "1g.18gb": 7,
        "1g.18gb+me": 7,
        "1g.35gb": 4,
        "2g.35gb": 3,
        "3g.71gb": 2,
        "4g.71gb": 1,
        "7g.141gb": 1,
    },
    "a30x4": {"1g.6gb": 4, "1g.6gb+me": 4, "2g.12gb": 2, "2g.12gb+me": 2, "4g.24gb": 1},
}
MEMORY_SLICES = {"hgx-h100": 8, "dgx-a100": 8, "h200": 8, "a30x4": 4}


def mig_gpu(nvml: Nvml, index: int = 0, **extra: Any) -> MigGpu:
    info = nvml.gpu(index)
    return MigGpu(info.minor_number, info.uuid, tuple(nvml.gi_profiles(index)), **extra)


def counters(entry: dict[str, Any]) -> dict[str, int]:
    return {k: quantity_value(v["value"]) for k, v in entry["counters"].items()}


@pytest.mark.parametrize("preset", list(PLACEMENT_COUNTS))
def test_one_device_per_legal_placement_with_upstream_names(open_sim: OpenSim, preset: str) -> None:
    nvml = open_sim(preset)
    gpu = mig_gpu(nvml, 1 if preset != "h200" else 0)
    devices = slice_content(gpu)["devices"]
    per_profile: dict[str, int] = {}
    for device in devices:
        attributes = device["attributes"]
        assert attributes["type"] == {"string": "mig"}
        assert attributes["parentUUID"] == {"string": gpu.uuid}
        profile = attributes["profile"]["string"]
        per_profile[profile] = per_profile.get(profile, 0) + 1
        start = attributes["gpu-operator.nvidia.com/placementStart"]["int"]
        size = attributes["gpu-operator.nvidia.com/placementSize"]["int"]
        ids = {p.name: p.id for p in gpu.profiles}
        flat = profile.replace(".", "").replace("+", "-")
        assert device["name"] == f"gpu-{gpu.minor}-mig-{flat}-{ids[profile]}-{start}"
        (consumption,) = device["consumesCounters"]
        assert consumption["counterSet"] == f"gpu-{gpu.minor}-counter-set"
        slices = sorted(
            int(c.rsplit("-", 1)[1]) for c in consumption["counters"] if "memory-slice-" in c
        )
        assert slices == list(range(start, start + size)), device["name"]
    assert per_profile == PLACEMENT_COUNTS[preset]
    (counter_set,) = shared_counters(gpu)
    slice_counters = {k: v for k, v in counters(counter_set).items() if "memory-slice-" in k}
    assert slice_counters == {f"memory-slice-{i}": 1 for i in range(MEMORY_SLICES[preset])}


def test_h100_80gb_names_and_capacities_come_from_the_simulated_card(open_sim: OpenSim) -> None:
    nvml = open_sim("hgx-h100")
    gpu = mig_gpu(nvml, 3)
    devices = {d["name"]: d for d in slice_content(gpu)["devices"]}
    assert gpu.minor == 3
    assert {"gpu-3-mig-3g40gb-9-0", "gpu-3-mig-3g40gb-9-4"} <= set(devices)
    assert "gpu-3-mig-1g10gb-me-20-6" in devices
    three_g = devices["gpu-3-mig-3g40gb-9-4"]
    assert three_g["attributes"]["profile"] == {"string": "3g.40gb"}
    (profile,) = [p for p in gpu.profiles if p.name == "3g.40gb"]
    assert three_g["capacity"]["memory"] == {"value": binary_quantity(profile.memory_mib * 2**20)}
    assert three_g["capacity"]["multiprocessors"] == {"value": "60"}
    assert sorted(three_g["capacity"]) == sorted(
        [
            "multiprocessors",
            "copyEngines",
            "decoders",
            "encoders",
            "jpegEngines",
            "ofaEngines",
            "memory",
        ]
    )


def test_mig_devices_inherit_the_parent_attributes_but_not_its_identity(
    open_sim: OpenSim,
) -> None:
    nvml = open_sim("h200")
    parent = {
        "type": {"string": "gpu"},
        "uuid": {"string": "GPU-x"},
        "index": {"int": 0},
        "productName": {"string": "NVIDIA H200"},
        "driverVersion": {"version": "580.159.4"},
    }
    gpu = mig_gpu(nvml, attributes=parent)
    device = slice_content(gpu)["devices"][0]
    assert device["attributes"]["productName"] == {"string": "NVIDIA H200"}
    assert device["attributes"]["driverVersion"] == {"version": "580.159.4"}
    assert device["attributes"]["type"] == {"string": "mig"}
    assert "uuid" not in device["attributes"]
    assert "index" not in device["attributes"]


def test_the_whole_gpu_consumes_every_counter_so_it_excludes_any_mig_device(
    open_sim: OpenSim,
) -> None:
    nvml = open_sim("hgx-h100")
    gpu = mig_gpu(nvml)
    content = slice_content(gpu, {"name": "gpu-0", "attributes": {"type": {"string": "gpu"}}})
    whole, *migs = content["devices"]
    assert whole["name"] == "gpu-0"
    (counter_set,) = content["sharedCounters"]
    (consumption,) = whole["consumesCounters"]
    assert counters(consumption) == counters(counter_set)
    assert full_gpu_consumption(gpu) == whole["consumesCounters"]
    # Every MIG device shares at least one memory slice with the whole GPU.
    for device in migs:
        (mine,) = device["consumesCounters"]
        assert any(k.startswith("memory-slice-") for k in mine["counters"])


def test_aggregate_counters_would_admit_a_3g_that_no_placement_can_host() -> None:
    """After 1g releases leave slices 0, 2, 4, 6 (and 7) free, five free memory slices and four
    free compute slices would admit a 3g by aggregate counting; the per-slice counters don't."""
    profiles = profiles_of("H100-SXM5-80GB")
    gpu = MigGpu(0, "GPU-h100", profiles)
    allocator = CounterAllocator(gpu)
    for claim in range(7):
        assert allocator.claim(claim, "1g.10gb") == f"gpu-0-mig-1g10gb-19-{claim}"
    for claim in (0, 2, 4, 6):
        allocator.release(claim)
    left = allocator.free()
    free_slices = [i for i in range(8) if left[f"memory-slice-{i}"]]
    assert free_slices == [0, 2, 4, 6, 7]
    (three_g,) = [p for p in profiles if p.name == "3g.40gb"]
    # What aggregate counters would see: enough memory slices and compute slices.
    assert len(free_slices) >= three_g.memory_slices
    assert left["compute-slices"] >= three_g.slice_count
    assert left["memory"] >= three_g.memory_mib * 2**20
    # No 3g placement exists (the oracle), and the per-slice counters agree.
    assert oracle_starts(profiles, allocator.instances(), three_g) == []
    assert allocator.feasible("3g.40gb") == []
    assert allocator.claim(99, "3g.40gb") is None


def _family(names: list[str], fits: Callable[[list[str], str], bool]) -> set[frozenset[str]]:
    """Every set of devices that ``fits`` admits, grown one device at a time (in list order)."""
    found: set[frozenset[str]] = set()

    def walk(i: int, chosen: list[str]) -> None:
        found.add(frozenset(chosen))
        for j in range(i, len(names)):
            if fits(chosen, names[j]):
                chosen.append(names[j])
                walk(j + 1, chosen)
                chosen.pop()

    walk(0, [])
    return found


@pytest.mark.parametrize("model", MIG_MODELS)
def test_counters_admit_exactly_the_instance_sets_the_driver_accepts(model: str) -> None:
    profiles = profiles_of(model)
    gpu = MigGpu(0, f"GPU-{model}", profiles)
    allocator = CounterAllocator(gpu)
    names = list(allocator.devices)
    by_id = {p.id: p for p in profiles}

    def instance(name: str) -> tuple[Any, int]:
        device = parse_device_name(name)
        assert device is not None
        return by_id[device.profile_id], device.start

    instances = {n: instance(n) for n in names}
    consumed = {n: allocator.consumes(n) for n in names}

    after: dict[tuple[str, ...], tuple[dict[str, int], bool]] = {}

    def by_counters(chosen: list[str], name: str) -> bool:
        # What ``chosen`` leaves is computed once per set: the walk asks about every later
        # device with the same ``chosen``.
        key = tuple(chosen)
        if key not in after:
            left = dict(allocator.capacity)
            for other in chosen:
                for counter, value in consumed[other].items():
                    left[counter] -= value
            after[key] = left, all(v >= 0 for v in left.values())
        left, fits = after[key]
        return fits and all(left[counter] >= value for counter, value in consumed[name].items())

    def by_oracle(chosen: list[str], name: str) -> bool:
        # ``chosen`` was admitted already: the driver must accept one more instance.
        profile, start = instances[name]
        return start in oracle_starts(profiles, [instances[n] for n in chosen], profile)

    admitted = _family(names, by_counters)
    valid = _family(names, by_oracle)
    assert admitted == valid
    assert len(valid) > len(names)  # the enumeration did explore
    assert all(oracle_valid(profiles, [instances[n] for n in chosen]) for chosen in valid)


def test_foreign_instances_are_fixed_their_slices_and_engines_taken_off_the_counter_set() -> None:
    profiles = profiles_of("H100-SXM5-80GB")
    by_name = {p.name: p for p in profiles}
    foreign = (Placed(by_name["3g.40gb"], 4), Placed(by_name["1g.10gb+me"], 0))
    gpu = MigGpu(0, "GPU-h100", profiles, foreign=foreign)
    content = slice_content(gpu, {"name": "gpu-0"})
    names = [d["name"] for d in content["devices"]]
    assert "gpu-0" not in names  # the whole GPU cannot be had while others hold part of it
    assert "gpu-0-mig-3g40gb-9-4" not in names
    assert "gpu-0-mig-1g10gb-19-6" not in names
    assert "gpu-0-mig-1g10gb-19-0" not in names
    assert "gpu-0-mig-3g40gb-9-0" not in names  # slice 0 is held by the +me
    assert "gpu-0-mig-2g20gb-14-2" in names
    (counter_set,) = content["sharedCounters"]
    left = counters(counter_set)
    assert [i for i in range(8) if left[f"memory-slice-{i}"]] == [1, 2, 3]
    assert left["profile-20-instances"] == 0
    assert left["ofa-engines"] == 0
    assert left["compute-slices"] == 7 - 3 - 1


def test_device_names_round_trip_and_other_names_are_not_mig_devices() -> None:
    (profile,) = [p for p in profiles_of("H100-SXM5-80GB") if p.name == "1g.10gb+me"]
    name = device_name(5, profile, 6)
    assert name == "gpu-5-mig-1g10gb-me-20-6"
    assert parse_device_name(name) == MigDeviceId(5, 20, 6)
    assert parse_device_name("gpu-5") is None
    assert parse_device_name("gpu-5-mig-x") is None


def test_the_content_fits_the_resource_slice_api_limits(open_sim: OpenSim) -> None:
    """resource.k8s.io/v1 limits: ≤ 32 attributes + capacities per device, ≤ 32 counters per
    counter set and per consumption, DNS-label names (device and counter), attribute ids ≤ 32
    characters, string values ≤ 64; one GPU's devices fit in one slice (≤ 64 with counters)."""
    nvml = open_sim("hgx-h100")
    whole = gpu_device(nvml.gpu(0), nvml.system())
    gpu = mig_gpu(nvml, attributes=whole["attributes"])
    content = slice_content(gpu, whole)
    dns_label = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
    (counter_set,) = content["sharedCounters"]
    assert len(counter_set["counters"]) <= 32
    assert all(dns_label.fullmatch(c) for c in counter_set["counters"])
    assert len(content["devices"]) <= 64
    for device in content["devices"]:
        assert dns_label.fullmatch(device["name"]), device["name"]
        assert len(device["attributes"]) + len(device["capacity"]) <= 32
        for name, value in device["attributes"].items():
            assert len(name.rpartition("/")[2]) <= 32
            assert len(str(next(iter(value.values())))) <= 64
        (consumption,) = device["consumesCounters"]
        assert len(consumption["counters"]) <= 32
        assert set(consumption["counters"]) <= set(counter_set["counters"])
