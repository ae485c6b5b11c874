"""Which dynamic MIG device a claim should get: the scheduler's device preference (pure).

The scheduler finds the devices whose counters are free (each feasible by construction: the
counters are exact, see ``mig_devices``); this module orders them so that the GPUs keep the
largest free profiles possible. Instances already there never move (running pods' devices and
instances the driver did not create are fixed). For each candidate the placement solver's
measures are compared before and after it is placed, and the candidate that loses least comes
first:

1. ``capacity_left``: memory slices more instances could still take (no stranded memory: a 1g
   at slice 6 strands slice 7 as soon as nothing else can reach it);
2. ``holes_left``: for each instance size, largest first, the free ranges one more instance of
   that size could take (a 3g and a 4g at slice 0 are the same 4-slice hole);
3. then fewer free fragments, then the lower start: small instances fill from the low edge,
   so the mirror half stays whole for a 3g (NVIDIA's guide: ``-cgi 19,19,14,9`` fails when
   the 1g/2g instances scatter, works when they pack).

Across GPUs the same losses decide: a 1g on an empty GPU costs it its 8-slice hole, so
partitioned GPUs fill first and whole GPUs stay whole.

No online order can refuse fewer claims than first-fit on every sequence (serving a 4g that
first-fit refuses can cost two later 2g's); the property tests check that no claim is ever
refused while a placement exists, and that over many random sequences this order refuses
fewer than first-fit.

``MigPreference(gpus, in_use).prefer(candidates)`` is the hook: ``candidates`` are device names
(or objects carrying one: a mapping with ``name``, an attribute ``name``, or any ``name=``
function); names it does not know (whole GPUs, other drivers' devices) keep their order after
the MIG devices it ranks. One ``MigPreference`` serves one node (device names repeat across
nodes); e.g. for a scheduler whose candidates carry ``device.ref.{pool,device}`` and the pool's
allocated refs::

    by_pool[pool].prefer(group, name=lambda c: c.device.ref.device,
                         in_use=[r.device for r in group[0].in_use])
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from gpu_operator.dra.mig_devices import MigGpu, parse_device_name
from gpu_operator.gpu.records import GpuInstanceProfile
from gpu_operator.mig.placement import Placed, capacity_left, holes_left, memory_slices

T = TypeVar("T")
RankKey = tuple[tuple[int, ...], int, int, int]


def _free_runs(total: int, used: int) -> int:
    runs, previous_free = 0, False
    for i in range(total):
        free = not used >> i & 1
        runs += free and not previous_free
        previous_free = free
    return runs


def rank_key(
    profiles: Sequence[GpuInstanceProfile], fixed: Sequence[Placed], candidate: Placed
) -> RankKey:
    """Smaller is better: (capacity lost, holes lost per size largest first; free fragments
    left; start). Remembered per (GPU model, instances, candidate): GPUs repeat states."""
    return _rank_key(tuple(profiles), _canonical(fixed), candidate)


def _canonical(fixed: Iterable[Placed]) -> tuple[Placed, ...]:
    return tuple(sorted(fixed, key=lambda p: (p.start, p.profile.id)))


@functools.lru_cache(maxsize=1 << 16)
def _rank_key(
    profiles: tuple[GpuInstanceProfile, ...], fixed: tuple[Placed, ...], candidate: Placed
) -> RankKey:
    after = _canonical([*fixed, candidate])
    used = 0
    for p in after:
        used |= p.mask
    holes_before, holes_after = _holes(profiles, fixed), _holes(profiles, after)
    loss = (
        capacity_left(profiles, fixed) - capacity_left(profiles, after),
        *(b - a for b, a in zip(holes_before, holes_after, strict=True)),
    )
    return (loss, _free_runs(memory_slices(profiles), used), candidate.start, 0)


@functools.lru_cache(maxsize=1 << 16)
def _holes(profiles: tuple[GpuInstanceProfile, ...], fixed: tuple[Placed, ...]) -> tuple[int, ...]:
    return holes_left(profiles, fixed)


def order(
    profiles: Sequence[GpuInstanceProfile], fixed: Sequence[Placed], candidates: Sequence[Placed]
) -> list[Placed]:
    """One GPU's candidate placements, best first (``fixed`` instances stay where they are)."""
    return sorted(candidates, key=lambda c: rank_key(profiles, fixed, c))


def _name_of(candidate: object) -> str:
    if isinstance(candidate, str):
        return candidate
    if isinstance(candidate, Mapping):
        return str(candidate["name"])
    return str(candidate.name)  # type: ignore[attr-defined]


class MigPreference:
    """The device preference of one node's dynamic MIG devices.

    ``gpus`` are the node's GPUs as published (``mig_devices.MigGpu``); ``in_use`` returns, at
    call time, the names of this node's devices already allocated to claims.
    """

    def __init__(
        self, gpus: Sequence[MigGpu], in_use: Callable[[], Iterable[str]] = lambda: ()
    ) -> None:
        self._gpus = {g.minor: g for g in gpus}
        self._in_use = in_use

    def placed(self, name: str) -> tuple[MigGpu, Placed] | None:
        """The GPU and placement a device name stands for, or ``None`` if not one of ours."""
        device = parse_device_name(name)
        if device is None or device.minor not in self._gpus:
            return None
        gpu = self._gpus[device.minor]
        for profile in gpu.profiles:
            starts = {pl.start for pl in profile.placements}
            if profile.id == device.profile_id and device.start in starts:
                return gpu, Placed(profile, device.start)
        return None

    def fixed(self, gpu: MigGpu, in_use: Iterable[str]) -> list[Placed]:
        """The instances that stay where they are on one GPU."""
        out = list(gpu.foreign)
        for name in in_use:
            found = self.placed(name)
            if found is not None and found[0].minor == gpu.minor:
                out.append(found[1])
        return out

    def prefer(
        self,
        candidates: Sequence[T],
        name: Callable[[Any], str] = _name_of,
        in_use: Iterable[str] | None = None,
    ) -> list[T]:
        """``candidates`` reordered: our MIG devices best first, then the rest as given.
        ``in_use`` (device names) overrides the constructor's callable for this call: a
        scheduler whose candidates carry their pool's allocations passes them here."""
        in_use = list(self._in_use() if in_use is None else in_use)
        fixed: dict[int, list[Placed]] = {}
        ranked: list[tuple[RankKey, int, T]] = []
        rest: list[T] = []
        for candidate in candidates:
            found = self.placed(name(candidate))
            if found is None:
                rest.append(candidate)
                continue
            gpu, placed = found
            if gpu.minor not in fixed:
                fixed[gpu.minor] = self.fixed(gpu, in_use)
            key = rank_key(gpu.profiles, fixed[gpu.minor], placed)
            ranked.append(((*key[:3], gpu.minor), len(ranked), candidate))
        ranked.sort(key=lambda item: (item[0], item[1]))
        return [c for _, _, c in ranked] + rest
