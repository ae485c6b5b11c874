"""An independent oracle for the solver: every legal set of GPU instances on one GPU, found by
plain enumeration of (profile, start) choices, with the best room score per multiset."""

from __future__ import annotations

import functools
from collections import Counter

from gpu_operator.gpu.records import GpuInstanceProfile
from gpu_operator.mig.placement import full_profile, room_score
from helpers.mig_tables import profiles_of

Multiset = frozenset[tuple[str, int]]


def _key(names: Counter[str]) -> Multiset:
    return frozenset(names.items())


@functools.cache
def achievable(model: str) -> dict[Multiset, tuple[int, ...]]:
    """Every multiset of profile names that some legal layout realises → its best room score."""
    profiles = profiles_of(model)
    full = full_profile(profiles)
    options = [(p, pl.start, pl.size) for p in profiles for pl in p.placements]
    engines = ("slice_count", "copy_engines", "decoders", "jpegs", "ofas")
    budget = [getattr(full, e) for e in engines]
    best: dict[Multiset, tuple[int, ...]] = {}

    def walk(
        i: int, used: int, chosen: list[tuple[GpuInstanceProfile, int]], spent: list[int]
    ) -> None:
        names = Counter(p.name for p, _ in chosen)
        key = _key(names)
        score = room_score(profiles, used)
        if key not in best or score > best[key]:
            best[key] = score
        for j in range(i, len(options)):
            p, start, size = options[j]
            mask = ((1 << size) - 1) << start
            if mask & used or names[p.name] >= p.instance_count:
                continue
            new = [s + getattr(p, e) for s, e in zip(spent, engines, strict=True)]
            if any(n > b for n, b in zip(new, budget, strict=True)):
                continue
            chosen.append((p, start))
            walk(j + 1, used | mask, chosen, new)
            chosen.pop()

    walk(0, 0, [], [0] * len(engines))
    return best


def key_of(names: list[str]) -> Multiset:
    return _key(Counter(names))
