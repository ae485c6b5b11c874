"""Dynamic MIG GPUs read back from published ResourceSlices, for a scheduler that has only the
API's view (pure): per pool of driver ``gpu.nvidia.com`` (latest generation), one ``MigGpu`` per
counter set ``gpu-<minor>-counter-set``, with the GI profiles its devices publish (name, id,
size, legal starts, engines from ``capacity``, compute slices and instance cap from
``consumesCounters``), so ``mig_placement.MigPreference`` can rank that pool's candidates.

Instances the driver did not create are not published as such: the counter set's capacity is
what is left (their memory slices at 0, their engines taken off). They come back as fixed
placements covering the held memory slices, spending no engines, and the GPU's engine budget
and instance caps are the counter set's remaining values; budget and spending shift by the same
amounts, so the placements the ranking considers addable are the ones the counters admit."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gpu_operator.dra import DRIVER_NAME
from gpu_operator.dra.mig_devices import (
    COMPUTE_SLICES_COUNTER,
    MIG_TYPE,
    PLACEMENT_SIZE_ATTRIBUTE,
    PLACEMENT_START_ATTRIBUTE,
    MigGpu,
    counter_set_name,
    memory_slice_counter,
    parse_device_name,
)
from gpu_operator.gpu.records import GpuInstanceProfile, Placement
from gpu_operator.mig.placement import Placed

_MIB = 2**20
_SUFFIX = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9}


def _value(raw: Any) -> int:
    """An integer quantity as the driver publishes them (``81559Mi``, ``7``)."""
    text = str((raw or {}).get("value", "0") if isinstance(raw, Mapping) else raw)
    for suffix, factor in _SUFFIX.items():
        if text.endswith(suffix):
            return int(text[: -len(suffix)]) * factor
    return int(text)


def _attr(device: Mapping[str, Any], name: str) -> Any:
    raw = (device.get("attributes") or {}).get(name)
    return next(iter(raw.values()), None) if isinstance(raw, Mapping) else None


def _latest(slices: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Pool → the specs of its latest generation, for our driver."""
    specs: dict[str, list[Mapping[str, Any]]] = {}
    latest: dict[str, int] = {}
    for body in slices:
        spec = body.get("spec") or {}
        if spec.get("driver") != DRIVER_NAME or (body.get("metadata") or {}).get(
            "deletionTimestamp"
        ):
            continue
        pool = spec.get("pool") or {}
        name, generation = str(pool.get("name", "")), int(pool.get("generation", 0))
        if generation > latest.get(name, -1):
            latest[name], specs[name] = generation, []
        if generation == latest[name]:
            specs[name].append(spec)
    return specs


def _gpu(
    minor: int, counters: Mapping[str, int], devices: list[Mapping[str, Any]]
) -> MigGpu | None:
    rows: dict[int, dict[str, Any]] = {}
    parent = ""
    for device in devices:
        found = parse_device_name(str(device.get("name", "")))
        if found is None or _attr(device, "type") != MIG_TYPE:
            continue
        parent = str(_attr(device, "parentUUID") or parent)
        consumed = {
            name: _value(v)
            for c in device.get("consumesCounters") or []
            for name, v in (c.get("counters") or {}).items()
        }
        capacity = {k: _value(v) for k, v in (device.get("capacity") or {}).items()}
        row = rows.setdefault(
            found.profile_id,
            {
                "name": str(_attr(device, "profile")),
                "size": int(_attr(device, PLACEMENT_SIZE_ATTRIBUTE) or 1),
                "slices": consumed.get(COMPUTE_SLICES_COUNTER, 0),
                "capacity": capacity,
                "starts": set(),
            },
        )
        row["starts"].add(int(_attr(device, PLACEMENT_START_ATTRIBUTE) or found.start))
    if not rows:
        return None
    total = sum(1 for name in counters if name.startswith("memory-slice-"))
    profiles = []
    for profile_id, row in sorted(rows.items()):
        cap = counters.get(f"profile-{profile_id}-instances", len(row["starts"]))
        capacity = row["capacity"]
        profiles.append(
            GpuInstanceProfile(
                nvml_profile=-1,
                id=profile_id,
                name=row["name"],
                slice_count=row["slices"],
                instance_count=cap,
                memory_mib=capacity.get("memory", 0) // _MIB,
                multiprocessors=capacity.get("multiprocessors", 0),
                copy_engines=capacity.get("copyEngines", 0),
                decoders=capacity.get("decoders", 0),
                encoders=capacity.get("encoders", 0),
                jpegs=capacity.get("jpegEngines", 0),
                ofas=capacity.get("ofaEngines", 0),
                placements=tuple(Placement(s, row["size"]) for s in sorted(row["starts"])),
            )
        )
    held = [i for i in range(total) if counters.get(memory_slice_counter(i), 1) == 0]
    foreign: list[Placed] = []
    if held:
        profiles.append(  # the engine budget left, as a whole-GPU profile nothing can take
            GpuInstanceProfile(
                nvml_profile=-1,
                id=-1,
                name="budget",
                slice_count=counters.get(COMPUTE_SLICES_COUNTER, 0),
                instance_count=0,
                memory_mib=0,
                multiprocessors=0,
                copy_engines=counters.get("copy-engines", 0),
                decoders=counters.get("decoders", 0),
                encoders=counters.get("encoders", 0),
                jpegs=counters.get("jpeg-engines", 0),
                ofas=counters.get("ofa-engines", 0),
                placements=(Placement(0, total),),
            )
        )
        for start in held:  # one slice each, spending nothing: the budget above is what is left
            held_slice = (Placement(start, 1),)
            profile = GpuInstanceProfile(
                -1, -2 - start, "foreign", 0, 1, 0, 0, 0, 0, 0, 0, 0, held_slice
            )
            foreign.append(Placed(profile, start))
    return MigGpu(minor, parent, tuple(profiles), foreign=tuple(foreign))


def mig_gpus(slices: Iterable[Mapping[str, Any]]) -> dict[str, list[MigGpu]]:
    """Pool (node) → its dynamic MIG GPUs as the slices publish them."""
    out: dict[str, list[MigGpu]] = {}
    for pool, specs in _latest(slices).items():
        counter_sets = {
            str(c.get("name")): {k: _value(v) for k, v in (c.get("counters") or {}).items()}
            for spec in specs
            for c in spec.get("sharedCounters") or []
        }
        devices = [d for spec in specs for d in spec.get("devices") or []]
        by_minor: dict[int, list[Mapping[str, Any]]] = {}
        for device in devices:
            found = parse_device_name(str(device.get("name", "")))
            if found is not None:
                by_minor.setdefault(found.minor, []).append(device)
        gpus = []
        for minor, mine in sorted(by_minor.items()):
            counters = counter_sets.get(counter_set_name(minor))
            if counters is None:
                continue
            gpu = _gpu(minor, counters, mine)
            if gpu is not None:
                gpus.append(gpu)
        if gpus:
            out[pool] = gpus
    return out
