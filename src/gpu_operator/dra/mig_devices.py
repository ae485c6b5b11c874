"""Dynamic MIG as DRA publishes it: one GPU's counter set and its abstract MIG devices (pure).

KEP-4815 partitionable devices (``resource.k8s.io/v1``), named as NVIDIA's DRA driver names
them (``k8s-dra-driver-gpu``, feature gate ``DynamicMIG``):

- one counter set per GPU, ``gpu-<minor>-counter-set``, holding upstream's capacity counters
  (``multiprocessors``, ``copy-engines``, ``decoders``, ``encoders``, ``jpeg-engines``,
  ``ofa-engines``, ``memory``: the largest value of any profile, i.e. the whole GPU's) and one
  counter of capacity 1 per memory slice, ``memory-slice-<i>``. We add ``compute-slices`` (the
  GPU's compute-slice budget) and, for a profile whose instance cap is below its number of
  starts, ``profile-<id>-instances``: with them the counters admit exactly the sets of
  placements the driver accepts, never more;
- one device per (GI profile, legal start): ``gpu-<minor>-mig-<profile without dots>-<profile
  id>-<start>`` (``gpu-0-mig-3g40gb-9-4``), attributes ``type=mig``, ``profile``,
  ``parentUUID`` and the parent's identity attributes, upstream's capacities, and
  ``consumesCounters`` naming exactly the memory slices it occupies;
- the whole GPU (``gpu-<minor>``) consumes every counter, so it and any MIG device exclude
  each other.

Per-slice counters, not aggregate ones: an aggregate "memory slices: 8" counter admits a 3g
after 1g releases leave slices 0, 2, 4, 6 and 7 free — five free slices, no four in a row at a
3g start. With one counter per slice a device is feasible only where its own slices are free.

Instances that the DRA driver did not create (``foreign``) stay where they are: their
consumption is taken off the counter set and no device that overlaps them is published.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gpu_operator.dra.devices import binary_quantity as quantity
from gpu_operator.gpu.records import GpuInstanceProfile
from gpu_operator.mig.placement import Placed, full_profile, memory_slices
from gpu_operator.names import dra_mig_device, parse_dra_mig_device

MIG_TYPE = "mig"
"""The ``type`` attribute of a MIG device (upstream's)."""

PLACEMENT_START_ATTRIBUTE = "gpu-operator.nvidia.com/placementStart"
PLACEMENT_SIZE_ATTRIBUTE = "gpu-operator.nvidia.com/placementSize"
"""Ours: where the device sits, in memory slices (upstream encodes it in the name only)."""

COMPUTE_SLICES_COUNTER = "compute-slices"
"""Ours: the GPU's compute-slice budget (7 on the 7-way parts, 4 on A30)."""

# Upstream's capacities of a MIG device: (capacity name, GpuInstanceProfile attribute).
_CAPACITIES = (
    ("multiprocessors", "multiprocessors"),
    ("copyEngines", "copy_engines"),
    ("decoders", "decoders"),
    ("encoders", "encoders"),
    ("jpegEngines", "jpegs"),
    ("ofaEngines", "ofas"),
)
_MIB = 2**20
# The parent's attributes a MIG device does not inherit: its own identity.
_NOT_INHERITED = frozenset({"type", "uuid", "index", "minor"})


@dataclass(frozen=True)
class MigGpu:
    """What dynamic MIG needs to know of one GPU."""

    minor: int
    """The GPU's minor number: upstream names devices by it (``gpu-<minor>``)."""
    uuid: str
    profiles: tuple[GpuInstanceProfile, ...]
    """Its GI profiles as NVML reports them (``Nvml.gi_profiles``)."""
    attributes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """The GPU device's own DRA attributes (``productName``, ``driverVersion``, …); MIG devices
    inherit all but its identity."""
    foreign: tuple[Placed, ...] = ()
    """GPU instances present that the DRA driver did not create."""


@dataclass(frozen=True, order=True)
class MigDeviceId:
    """What a dynamic MIG device name encodes: parent minor, GI profile id, placement start."""

    minor: int
    profile_id: int
    start: int


def counter_set_name(minor: int) -> str:
    return f"gpu-{minor}-counter-set"


def memory_slice_counter(i: int) -> str:
    return f"memory-slice-{i}"


def profile_cap_counter(profile: GpuInstanceProfile) -> str:
    return f"profile-{profile.id}-instances"


def _dns(text: str) -> str:
    """Upstream's RFC 1123 cleanup: lower case, anything else than ``[a-z0-9-.]`` → ``-``."""
    return re.sub(r"[^a-z0-9-.]", "-", text.lower()).strip("-").rstrip(".")


def _counter_name(capacity: str) -> str:
    """``copyEngines`` → ``copy-engines``, as upstream derives counter names."""
    return _dns(re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", capacity))


def device_name(minor: int, profile: GpuInstanceProfile, start: int) -> str:
    """``gpu-0-mig-1g10gb-19-0``; ``+me`` profiles read ``1g10gb-me``."""
    return dra_mig_device(minor, _dns(profile.name.replace(".", "")), profile.id, start)


def parse_device_name(name: str) -> MigDeviceId | None:
    """The id a dynamic MIG device name encodes, or ``None`` for any other name."""
    parsed = parse_dra_mig_device(name)
    return None if parsed is None else MigDeviceId(*parsed)


def placements(gpu: MigGpu) -> list[Placed]:
    """Every (profile, legal start) of the GPU, in publishing order: by profile name, then
    start (upstream sorts a slice's devices by name; the scheduler takes the first that fits)."""
    out = [
        Placed(p, start)
        for p in gpu.profiles
        for start in sorted({pl.start for pl in p.placements})
    ]
    return sorted(out, key=lambda pl: device_name(gpu.minor, pl.profile, pl.start))


def _capacities(profile: GpuInstanceProfile) -> dict[str, int]:
    caps = {name: int(getattr(profile, attr)) for name, attr in _CAPACITIES}
    caps["memory"] = profile.memory_mib * _MIB
    return caps


def _capped(profiles: Sequence[GpuInstanceProfile]) -> list[GpuInstanceProfile]:
    """Profiles whose instance cap is not implied by their starts (``+me``: 1 of 7 starts)."""
    return [p for p in profiles if p.instance_count < len({pl.start for pl in p.placements})]


def _budget(profiles: Sequence[GpuInstanceProfile]) -> dict[str, int]:
    """The whole counter set before any instance: upstream's maxima, our compute-slice budget
    and instance caps, and one counter per memory slice."""
    counters: dict[str, int] = {}
    for p in profiles:
        for capacity, value in _capacities(p).items():
            name = _counter_name(capacity)
            counters[name] = max(counters.get(name, 0), value)
    counters[COMPUTE_SLICES_COUNTER] = full_profile(profiles).slice_count
    for p in _capped(profiles):
        counters[profile_cap_counter(p)] = p.instance_count
    for i in range(memory_slices(profiles)):
        counters[memory_slice_counter(i)] = 1
    return counters


def consumption(gpu: MigGpu, placed: Placed) -> dict[str, int]:
    """The counters one MIG device takes from its GPU's counter set."""
    counters = {_counter_name(c): v for c, v in _capacities(placed.profile).items()}
    counters[COMPUTE_SLICES_COUNTER] = placed.profile.slice_count
    if placed.profile in _capped(gpu.profiles):
        counters[profile_cap_counter(placed.profile)] = 1
    for i in range(placed.start, placed.start + placed.size):
        counters[memory_slice_counter(i)] = 1
    return counters


def available(gpu: MigGpu) -> dict[str, int]:
    """The counter set's capacities: the budget less what foreign instances hold."""
    counters = _budget(gpu.profiles)
    for placed in gpu.foreign:
        for name, value in consumption(gpu, placed).items():
            counters[name] = max(0, counters.get(name, 0) - value)
    return counters


def _counters(values: Mapping[str, int]) -> dict[str, dict[str, str]]:
    return {name: {"value": quantity(v)} for name, v in sorted(values.items())}


def shared_counters(gpu: MigGpu) -> list[dict[str, Any]]:
    """The ResourceSlice ``sharedCounters`` entry of the GPU (empty without MIG profiles)."""
    if not gpu.profiles:
        return []
    return [{"name": counter_set_name(gpu.minor), "counters": _counters(available(gpu))}]


def _overlaps_foreign(gpu: MigGpu, placed: Placed) -> bool:
    return any(placed.mask & f.mask for f in gpu.foreign)


def mig_device(gpu: MigGpu, placed: Placed) -> dict[str, Any]:
    """One abstract MIG device, as a ``resource.k8s.io/v1`` ``Device``."""
    profile = placed.profile
    attributes: dict[str, Any] = {
        k: dict(v) for k, v in gpu.attributes.items() if k not in _NOT_INHERITED
    }
    attributes.update(
        {
            "type": {"string": MIG_TYPE},
            "parentUUID": {"string": gpu.uuid},
            "profile": {"string": profile.name},
            PLACEMENT_START_ATTRIBUTE: {"int": placed.start},
            PLACEMENT_SIZE_ATTRIBUTE: {"int": placed.size},
        }
    )
    return {
        "name": device_name(gpu.minor, profile, placed.start),
        "attributes": dict(sorted(attributes.items())),
        "capacity": {k: {"value": quantity(v)} for k, v in _capacities(profile).items()},
        "consumesCounters": [
            {
                "counterSet": counter_set_name(gpu.minor),
                "counters": _counters(consumption(gpu, placed)),
            }
        ],
    }


def mig_devices(gpu: MigGpu) -> list[dict[str, Any]]:
    """Every MIG device the GPU could host now, in publishing order."""
    return [mig_device(gpu, p) for p in placements(gpu) if not _overlaps_foreign(gpu, p)]


def full_gpu_consumption(gpu: MigGpu) -> list[dict[str, Any]]:
    """``consumesCounters`` of the whole GPU device: every counter, so that it and any MIG
    device exclude each other (empty without MIG profiles: nothing to share)."""
    if not gpu.profiles:
        return []
    return [
        {"counterSet": counter_set_name(gpu.minor), "counters": _counters(_budget(gpu.profiles))}
    ]


def full_gpu_capacity(gpu: MigGpu) -> dict[str, dict[str, str]]:
    """Upstream's capacities of the whole GPU under dynamic MIG: the per-capacity maxima."""
    maxima: dict[str, int] = {}
    for p in gpu.profiles:
        for capacity, value in _capacities(p).items():
            maxima[capacity] = max(maxima.get(capacity, 0), value)
    return {k: {"value": quantity(v)} for k, v in maxima.items()}


def slice_content(gpu: MigGpu, full_gpu: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``sharedCounters`` and ``devices`` of one GPU for a ResourceSlice spec: the whole GPU
    device (``full_gpu``, the plugin's own, given ``consumesCounters`` here; left out while
    foreign instances exist, as it could not be prepared) then its MIG devices."""
    devices = []
    if full_gpu is not None and not gpu.foreign:
        whole = dict(full_gpu)
        consumes = full_gpu_consumption(gpu)
        if consumes:
            whole["consumesCounters"] = consumes
        devices.append(whole)
    devices += mig_devices(gpu)
    return {"sharedCounters": shared_counters(gpu), "devices": devices}
