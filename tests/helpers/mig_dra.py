"""Test support for dynamic MIG: an independent brute-force oracle of the driver's placement
rules, and a DRA allocator that works from the published ResourceSlice content only (counters
free = the counter set's capacity less what allocated devices consume), as the scheduler does.

The oracle is written from ``shared/reference/mig.md`` §1.6 (a GI takes ``[start, start+size)``
at a legal start, no overlap, the profile's instance cap, and the whole-GPU profile's compute
slices, copy engines, decoders, JPEG and OFA as the engine budget), not from our modules."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gpu_operator.dra.mig_devices import MigGpu, slice_content
from gpu_operator.gpu.records import GpuInstanceProfile

_ENGINES = ("slice_count", "copy_engines", "decoders", "jpegs", "ofas")

Instance = tuple[GpuInstanceProfile, int]
"""A GPU instance: its profile and its start."""


def _mask(profile: GpuInstanceProfile, start: int) -> int:
    return ((1 << profile.memory_slices) - 1) << start


def oracle_starts(
    profiles: Sequence[GpuInstanceProfile], fixed: Sequence[Instance], wanted: GpuInstanceProfile
) -> list[int]:
    """Every start where the driver would create one more ``wanted`` with ``fixed`` in place."""
    whole = max(profiles, key=lambda p: (p.memory_slices, p.slice_count))
    used = 0
    for p, s in fixed:
        used |= _mask(p, s)
    if sum(1 for p, _ in fixed if p.id == wanted.id) >= wanted.instance_count:
        return []
    for engine in _ENGINES:
        if sum(getattr(p, engine) for p, _ in fixed) + getattr(wanted, engine) > getattr(
            whole, engine
        ):
            return []
    starts = sorted({pl.start for pl in wanted.placements})
    return [s for s in starts if not _mask(wanted, s) & used]


def oracle_valid(profiles: Sequence[GpuInstanceProfile], instances: Sequence[Instance]) -> bool:
    """Whether the driver accepts all of ``instances`` together (created in any order)."""
    return all(s in oracle_starts(profiles, instances[:i], p) for i, (p, s) in enumerate(instances))


def quantity_value(quantity: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return int(quantity[: -len(suffix)]) * factor
    return int(quantity)


@dataclass
class CounterAllocator:
    """Allocates dynamic MIG devices of one GPU by counters alone, as a DRA scheduler does:
    the feasible devices of the wanted profile, in published order, reordered by ``prefer``
    when given; the first is taken."""

    gpu: MigGpu
    prefer: Callable[[list[str]], list[str]] | None = None
    allocated: dict[int, str] = field(default_factory=dict)
    """claim id → device name."""

    def __post_init__(self) -> None:
        content = slice_content(self.gpu)
        (counter_set,) = content["sharedCounters"]
        self.capacity = {k: quantity_value(v["value"]) for k, v in counter_set["counters"].items()}
        self.devices: dict[str, dict[str, Any]] = {d["name"]: d for d in content["devices"]}

    def consumes(self, name: str) -> dict[str, int]:
        (consumption,) = self.devices[name]["consumesCounters"]
        return {k: quantity_value(v["value"]) for k, v in consumption["counters"].items()}

    def free(self) -> dict[str, int]:
        left = dict(self.capacity)
        for name in self.allocated.values():
            for counter, value in self.consumes(name).items():
                left[counter] -= value
        return left

    def feasible(self, profile: str) -> list[str]:
        left = self.free()
        return [
            name
            for name, device in self.devices.items()
            if device["attributes"]["profile"]["string"] == profile
            and all(left[c] >= v for c, v in self.consumes(name).items())
        ]

    def claim(self, claim_id: int, profile: str) -> str | None:
        candidates = self.feasible(profile)
        if self.prefer is not None:
            ordered = self.prefer(candidates)
            assert sorted(ordered) == sorted(candidates), "prefer must only reorder"
            candidates = ordered
        if not candidates:
            return None
        self.allocated[claim_id] = candidates[0]
        return candidates[0]

    def release(self, claim_id: int) -> None:
        self.allocated.pop(claim_id, None)

    def in_use(self) -> list[str]:
        return list(self.allocated.values())

    def instances(self) -> list[Instance]:
        """The allocated devices as (profile, start), read back from their names' numbers."""
        out = []
        by_id = {p.id: p for p in self.gpu.profiles}
        for name in self.allocated.values():
            *_, profile_id, start = name.split("-")
            out.append((by_id[int(profile_id)], int(start)))
        return out
