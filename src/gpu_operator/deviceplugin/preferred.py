"""Preferred allocation (pure): which of the available devices the plugin suggests.

Full GPUs: go-gpuallocator's best-effort policy. Every GPU pair gets a score from its links
(PCIe: cross-CPU 10, same CPU 20, host bridge 30, multiple switches 40, single switch 50; plus
100 per NVLink); among the partitions of the available GPUs into sets of the requested size, the
one with the highest total score wins, and its set holding the required GPUs is the answer.
Replicas and MIG devices: ``distributed`` (spread over physical GPUs) or ``packed`` (fill one).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Sequence

from gpu_operator.deviceplugin.allocation import AllocationError
from gpu_operator.deviceplugin.resources import Resource
from gpu_operator.gpu.records import Topology

PCIE_SCORES = {
    "system": 10,  # P2PLinkCrossCPU
    "node": 20,  # P2PLinkSameCPU
    "hostbridge": 30,  # P2PLinkHostBridge
    "multiple": 40,  # P2PLinkMultiSwitch
    "single": 50,  # P2PLinkSingleSwitch
    "internal": 60,  # P2PLinkSameBoard
}
NVLINK_SCORE = 100
_EXACT_LIMIT = 12
"""Above this many candidates the exhaustive partition search is replaced by a greedy one."""


def pair_score(topology: Topology) -> int:
    return PCIE_SCORES.get(topology.common_ancestor, 0) + NVLINK_SCORE * topology.nvlinks


ScoreFn = Callable[[int, int], int]


def best_effort(
    available: Sequence[int], required: Sequence[int], size: int, score: ScoreFn
) -> list[int]:
    """GPU indexes: ``required`` plus the best partners among ``available`` for a set of
    ``size``."""
    required = list(dict.fromkeys(required))
    if len(required) > size:
        raise AllocationError(f"{len(required)} devices must be included but only {size} asked")
    pool = sorted(set(available) | set(required))
    if size > len(pool):
        raise AllocationError(f"{size} devices asked but only {len(pool)} available")
    if size == len(pool):
        return pool
    if len(pool) > _EXACT_LIMIT:
        return _greedy(pool, required, size, score)
    found = _partitions(pool, size, score, set(required))
    if not found:
        return _greedy(pool, required, size, score)
    return sorted(max(found, key=lambda t: (t[0], t[1]))[2])


def _partitions(
    pool: list[int], size: int, score: ScoreFn, required: set[int]
) -> list[tuple[int, int, list[int]]]:
    """(total score, chosen set's score, chosen set) for each partition of ``pool`` into sets
    of ``size`` (plus ``len(pool) % size`` leftovers) that has a set holding all ``required``;
    without required GPUs the partition's best set is chosen."""
    leftovers = len(pool) % size
    pairs = {(a, b): score(a, b) for a, b in itertools.combinations(pool, 2)}
    out: list[tuple[int, int, list[int]]] = []

    def walk(rest: list[int], spare: int, total: int, best: tuple[int, list[int]] | None) -> None:
        if not rest:
            if best is not None:
                out.append((total, best[0], best[1]))
            return
        first, others = rest[0], rest[1:]
        if spare > 0 and first not in required:
            walk(others, spare - 1, total, best)
        for partners in itertools.combinations(others, size - 1):
            group = [first, *partners]
            members = set(group)
            if required & members and not required <= members:
                continue  # required GPUs are never split over sets
            value = sum(pairs[p] for p in itertools.combinations(group, 2))
            candidate = best
            if required <= members and (required or best is None or value > best[0]):
                candidate = (value, group)  # the set holding the required GPUs, or the best
            walk([g for g in others if g not in partners], spare, total + value, candidate)

    walk(pool, leftovers, 0, None)
    return out


def _greedy(pool: list[int], required: list[int], size: int, score: ScoreFn) -> list[int]:
    chosen = list(required) or [max(pool, key=lambda g: sum(score(g, o) for o in pool))]
    while len(chosen) < size:
        rest = [g for g in pool if g not in chosen]
        chosen.append(max(rest, key=lambda g: sum(score(g, c) for c in chosen)))
    return sorted(chosen)


def preferred_full_gpus(
    resource: Resource,
    available: Sequence[str],
    must_include: Sequence[str],
    size: int,
    score: ScoreFn,
) -> list[str]:
    """Device IDs for full, unreplicated GPUs."""
    by_index = {d.gpu_index: d.id for d in resource.devices}
    index_of = {d.id: d.gpu_index for d in resource.devices}
    picked = best_effort(
        [index_of[i] for i in available if i in index_of],
        [index_of[i] for i in must_include if i in index_of],
        size,
        score,
    )
    return [by_index[g] for g in picked]


def preferred_shared(
    resource: Resource,
    available: Sequence[str],
    must_include: Sequence[str],
    size: int,
    policy: str,
) -> list[str]:
    """Replicas or MIG devices: one at a time from the physical GPU with the fewest
    (``distributed``) or most (``packed``) devices already taken; ties by GPU index."""
    chosen = list(dict.fromkeys(must_include))
    if len(chosen) > size:
        raise AllocationError(f"{len(chosen)} devices must be included but only {size} asked")
    candidates = [i for i in dict.fromkeys(available) if i not in chosen]
    devices = {d.id: d for d in resource.devices}
    candidates = [i for i in candidates if i in devices]
    if len(chosen) + len(candidates) < size:
        raise AllocationError(
            f"{size} devices asked but only {len(chosen) + len(candidates)} available"
        )
    total = Counter(d.gpu_index for d in resource.devices)
    free = Counter(devices[i].gpu_index for i in candidates)
    taken = {g: total[g] - free[g] for g in total}
    for i in chosen:
        if i in devices:
            taken[devices[i].gpu_index] += 1
    while len(chosen) < size:
        gpus = sorted({devices[i].gpu_index for i in candidates})
        if policy == "packed":
            gpu = min(gpus, key=lambda g: (-taken[g], g))
        else:
            gpu = min(gpus, key=lambda g: (taken[g], g))
        pick = next(i for i in candidates if devices[i].gpu_index == gpu)
        candidates.remove(pick)
        chosen.append(pick)
        taken[gpu] += 1
    return chosen
