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


_pinned: dict[int, object] = {}
"""Every object whose ``id`` is part of a memo key, kept alive so that no other object can take
its ``id`` while the key is stored (profiles are frozen dataclasses: hashing one hashes all its
fields, placements included, which costs more than the oracle itself)."""


def _pin(*objects: object) -> None:
    for obj in objects:
        _pinned[id(obj)] = obj


ProfilesKey = int | tuple[int, ...]
_memo: dict[tuple[ProfilesKey, tuple[tuple[int, int], ...], int], tuple[int, ...]] = {}
_wholes: dict[ProfilesKey, GpuInstanceProfile] = {}


def oracle_starts(
    profiles: Sequence[GpuInstanceProfile], fixed: Sequence[Instance], wanted: GpuInstanceProfile
) -> list[int]:
    """Every start where the driver would create one more ``wanted`` with ``fixed`` in place.

    Memoized: the answer depends only on the profiles, ``wanted`` and the multiset of ``fixed``
    (every rule below is a sum or a union over it), and the property tests ask the same
    question hundreds of thousands of times. A key holds objects' ids; the objects of every
    stored key are pinned, so a live object with a stored id is that very object."""
    of_profiles = id(profiles) if isinstance(profiles, tuple) else tuple(map(id, profiles))
    key = (of_profiles, tuple(sorted([(id(p), s) for p, s in fixed])), id(wanted))
    found = _memo.get(key)
    if found is None:
        whole = _wholes.get(of_profiles)
        if whole is None:
            _pin(profiles, *profiles)
            whole = _wholes[of_profiles] = max(
                profiles, key=lambda p: (p.memory_slices, p.slice_count)
            )
        _pin(wanted, *(p for p, _ in fixed))
        found = _memo[key] = tuple(_oracle_starts(whole, fixed, wanted))
    return list(found)


def _oracle_starts(
    whole: GpuInstanceProfile, fixed: Sequence[Instance], wanted: GpuInstanceProfile
) -> list[int]:
    """The rules; ``whole`` is the whole-GPU profile (most memory slices, then compute)."""
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


_Published = tuple[dict[str, int], dict[str, dict[str, Any]], dict[str, dict[str, int]]]
_published_memo: dict[int, _Published] = {}


def _published(gpu: MigGpu) -> _Published:
    """What a scheduler reads of ``gpu``'s ResourceSlice content: the counter set's capacity,
    the devices by name, and what each consumes; read once per ``MigGpu`` object (frozen, so
    its content cannot change), the allocators only read them."""
    key = id(gpu)
    if key not in _published_memo:
        _pin(gpu)
        content = slice_content(gpu)
        (counter_set,) = content["sharedCounters"]
        capacity = {k: quantity_value(v["value"]) for k, v in counter_set["counters"].items()}
        devices: dict[str, dict[str, Any]] = {d["name"]: d for d in content["devices"]}
        consumes = {}
        for name, device in devices.items():
            (consumption,) = device["consumesCounters"]
            consumes[name] = {
                k: quantity_value(v["value"]) for k, v in consumption["counters"].items()
            }
        _published_memo[key] = (capacity, devices, consumes)
    return _published_memo[key]


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
        self.capacity, self.devices, self._consumes = _published(self.gpu)

    def consumes(self, name: str) -> dict[str, int]:
        return dict(self._consumes[name])

    def free(self) -> dict[str, int]:
        left = dict(self.capacity)
        for name in self.allocated.values():
            for counter, value in self._consumes[name].items():
                left[counter] -= value
        return left

    def feasible(self, profile: str) -> list[str]:
        left = self.free()
        return [
            name
            for name, device in self.devices.items()
            if device["attributes"]["profile"]["string"] == profile
            and all(left[c] >= v for c, v in self._consumes[name].items())
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
