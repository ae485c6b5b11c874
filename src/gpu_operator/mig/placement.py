"""The placement solver: where each GPU instance of a wanted multiset goes on one GPU.

Exact: a search over the GPU's memory slices (≤ 8) honouring each profile's legal starts, its
instance cap and the GPU's engine budget (compute slices, copy engines, decoders, JPEG, OFA —
the budget of the whole-GPU profile, which is what limits ``+me`` to one per GPU). Among all
valid layouts it returns the one that keeps the most room for later instances (for each profile,
largest first, the number of legal starts still wholly free), then the one that fills small
instances from the low edge. When nothing fits it says why and names the profiles in conflict.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gpu_operator.errors import ConfigError
from gpu_operator.gpu.records import GpuInstanceProfile

_ENGINES = (
    ("slice_count", "compute slices"),
    ("copy_engines", "copy engines"),
    ("decoders", "decoders"),
    ("jpegs", "JPEG engines"),
    ("ofas", "OFA engines"),
)


class PlacementError(ConfigError):
    """The wanted instances cannot share one GPU; ``conflict`` names the profiles involved."""

    def __init__(self, message: str, conflict: Sequence[str]):
        super().__init__(message)
        self.conflict = tuple(conflict)


@dataclass(frozen=True)
class Placed:
    """A GPU instance of ``profile`` at memory slice ``start``."""

    profile: GpuInstanceProfile
    start: int

    @property
    def size(self) -> int:
        return self.profile.memory_slices

    @property
    def mask(self) -> int:
        return ((1 << self.size) - 1) << self.start

    def __str__(self) -> str:
        return f"{self.profile.name}@{self.start}"


@dataclass(frozen=True)
class Layout:
    """Concrete placements, in creation order (largest first)."""

    placed: tuple[Placed, ...]
    memory_slices: int

    @property
    def used_mask(self) -> int:
        mask = 0
        for p in self.placed:
            mask |= p.mask
        return mask

    @property
    def free_slices(self) -> list[int]:
        return [s for s in range(self.memory_slices) if not self.used_mask >> s & 1]

    def counts(self) -> Counter[str]:
        return Counter(p.profile.name for p in self.placed)

    def __str__(self) -> str:
        return " ".join(str(p) for p in self.placed) or "(empty)"


def memory_slices(profiles: Sequence[GpuInstanceProfile]) -> int:
    """How many memory slices the GPU has: the end of its furthest placement."""
    return max((pl.end for p in profiles for pl in p.placements), default=0)


def full_profile(profiles: Sequence[GpuInstanceProfile]) -> GpuInstanceProfile:
    """The profile covering the whole GPU; its engines are the GPU's engine budget."""
    return max(profiles, key=lambda p: (p.memory_slices, p.slice_count, p.multiprocessors))


def _creation_key(p: GpuInstanceProfile) -> tuple[int, int, int, int]:
    return (-p.memory_slices, -p.slice_count, -p.memory_mib, p.id)


def _describe(items: Sequence[GpuInstanceProfile]) -> str:
    counts = Counter(p.name for p in sorted(items, key=_creation_key))
    return " + ".join(f"{n}×{name}" if n > 1 else name for name, n in counts.items())


def _starts(profile: GpuInstanceProfile) -> list[int]:
    return sorted({pl.start for pl in profile.placements})


def room_score(profiles: Sequence[GpuInstanceProfile], used_mask: int) -> tuple[int, ...]:
    """For each profile, largest first, how many of its legal starts are wholly free."""
    score = []
    for p in sorted(profiles, key=_creation_key):
        size_mask = (1 << p.memory_slices) - 1
        score.append(sum(1 for s in _starts(p) if not (size_mask << s) & used_mask))
    return tuple(score)


def _budget_problem(
    profiles: Sequence[GpuInstanceProfile], items: Sequence[GpuInstanceProfile]
) -> str | None:
    full = full_profile(profiles)
    for attribute, label in _ENGINES:
        have = int(getattr(full, attribute))
        need = sum(int(getattr(p, attribute)) for p in items)
        if need > have:
            users = [p for p in items if getattr(p, attribute)]
            return f"not enough {label}: {_describe(users)} need {need}, the GPU has {have}"
    return None


def _search(
    items: Sequence[GpuInstanceProfile], profiles: Sequence[GpuInstanceProfile], *, best: bool
) -> tuple[Placed, ...] | None:
    """Backtracking over starts; identical profiles take increasing starts (no permutations).
    With ``best`` every layout is scored; otherwise the first found is returned."""
    ordered = sorted(items, key=_creation_key)
    starts = {p.id: _starts(p) for p in ordered}
    found: tuple[tuple[int, ...], tuple[int, ...], tuple[Placed, ...]] | None = None
    chosen: list[Placed] = []

    def visit(i: int, used: int) -> bool:
        nonlocal found
        if i == len(ordered):
            placed = tuple(chosen)
            score = room_score(profiles, used)
            # Tie-break: small instances from the low edge (starts of items, smallest first).
            edge = tuple(-p.start for p in reversed(placed))
            if found is None or (score, edge) > (found[0], found[1]):
                found = (score, edge, placed)
            return not best
        profile = ordered[i]
        size_mask = (1 << profile.memory_slices) - 1
        low = chosen[-1].start + 1 if chosen and chosen[-1].profile == profile else 0
        for start in starts[profile.id]:
            mask = size_mask << start
            if start < low or mask & used:
                continue
            chosen.append(Placed(profile, start))
            done = visit(i + 1, used | mask)
            chosen.pop()
            if done:
                return True
        return False

    visit(0, 0)
    return None if found is None else found[2]


def problem(
    profiles: Sequence[GpuInstanceProfile], items: Sequence[GpuInstanceProfile]
) -> str | None:
    """Why ``items`` cannot be placed together (caps, memory, engines, starts), or ``None``."""
    counts = Counter(p.id for p in items)
    by_id = {p.id: p for p in items}
    for profile_id, n in counts.items():
        p = by_id[profile_id]
        if n > p.instance_count:
            return f"count cap exceeded: {n}×{p.name} asked, at most {p.instance_count} per GPU"
    total = memory_slices(profiles)
    need = sum(p.memory_slices for p in items)
    if need > total:
        return f"not enough memory slices: {_describe(items)} need {need}, the GPU has {total}"
    budget = _budget_problem(profiles, items)
    if budget is not None:
        return budget
    if _search(items, profiles, best=False) is None:
        return "no legal start left"
    return None


def _minimal_conflict(
    profiles: Sequence[GpuInstanceProfile], items: Sequence[GpuInstanceProfile]
) -> list[GpuInstanceProfile]:
    """A smallest-by-deletion subset that still cannot be placed: the profiles in conflict."""
    kept = sorted(items, key=_creation_key)
    i = 0
    while i < len(kept):
        trial = kept[:i] + kept[i + 1 :]
        if trial and problem(profiles, trial) is not None:
            kept = trial
        else:
            i += 1
    return kept


def solve(profiles: Sequence[GpuInstanceProfile], wanted: Sequence[GpuInstanceProfile]) -> Layout:
    """The best layout of ``wanted`` on a GPU with these ``profiles``; ``PlacementError`` when
    no layout exists, naming the conflicting profiles and the rule they break."""
    total = memory_slices(profiles)
    if not wanted:
        return Layout((), total)
    reason = problem(profiles, wanted)
    if reason is not None:
        conflict = _minimal_conflict(profiles, wanted)
        if reason == "no legal start left":
            legal = "; ".join(
                f"{p.name} starts at {', '.join(map(str, _starts(p)))}"
                for p in sorted(set(conflict), key=_creation_key)
            )
            reason = f"no legal start left for {_describe(conflict)} ({legal})"
        raise PlacementError(
            f"{_describe(wanted)} cannot share one GPU: {reason}", [p.name for p in conflict]
        )
    placed = _search(wanted, profiles, best=True)
    assert placed is not None
    return Layout(placed, total)


def fits(profiles: Sequence[GpuInstanceProfile], wanted: Sequence[GpuInstanceProfile]) -> bool:
    return not wanted or problem(profiles, wanted) is None


def addable_starts(
    profiles: Sequence[GpuInstanceProfile], fixed: Sequence[Placed], profile: GpuInstanceProfile
) -> list[int]:
    """The legal starts where one more ``profile`` could be created now, the instances in
    ``fixed`` staying where they are: the range is free, the profile is under its instance cap
    and the GPU's engine budget holds (the driver's own rules)."""
    if sum(1 for p in fixed if p.profile.id == profile.id) >= profile.instance_count:
        return []
    full = full_profile(profiles)
    for attribute, _ in _ENGINES:
        spent = sum(int(getattr(p.profile, attribute)) for p in fixed)
        if spent + int(getattr(profile, attribute)) > int(getattr(full, attribute)):
            return []
    used = 0
    for p in fixed:
        used |= p.mask
    size_mask = (1 << profile.memory_slices) - 1
    return [s for s in _starts(profile) if not (size_mask << s) & used]


def holes_left(profiles: Sequence[GpuInstanceProfile], fixed: Sequence[Placed]) -> tuple[int, ...]:
    """For each instance size in memory slices, largest first, how many distinct ranges could
    take one more instance of that size now, ``fixed`` in place (a 3g and a 4g at 0 are one
    4-slice hole: what a claim for that much memory can still get)."""
    holes: dict[int, set[int]] = {}
    for p in profiles:
        holes.setdefault(p.memory_slices, set()).update(addable_starts(profiles, fixed, p))
    return tuple(len(holes[size]) for size in sorted(holes, reverse=True))


def capacity_left(profiles: Sequence[GpuInstanceProfile], fixed: Sequence[Placed]) -> int:
    """The most memory slices that more instances could still take, ``fixed`` in place: what
    is not stranded (slice 7 of a 7-way GPU is stranded once no 3g, 1g.REV2 or 7g can reach it)."""
    ordered, solve_from = _capacity_solver(tuple(profiles))
    used = 0
    for placed in fixed:
        used |= placed.mask
    spent = tuple(
        sum(int(getattr(p.profile, attribute)) for p in fixed) for attribute, _ in _ENGINES
    )
    counts = tuple(sum(1 for p in fixed if p.profile.id == q.id) for q in ordered)
    return solve_from(used, spent, counts)


@functools.lru_cache(maxsize=64)
def _capacity_solver(
    profiles: tuple[GpuInstanceProfile, ...],
) -> tuple[list[GpuInstanceProfile], Callable[[int, tuple[int, ...], tuple[int, ...]], int]]:
    """One GPU model's capacity search over plain integers (memoised per model): the state is
    the used-slice mask, the engines spent and the instances per profile."""
    ordered = sorted(profiles, key=_creation_key)  # largest first: a full cover ends a search
    full = full_profile(profiles)
    budget = tuple(int(getattr(full, attribute)) for attribute, _ in _ENGINES)
    rows = [
        (
            p.memory_slices,
            (1 << p.memory_slices) - 1,
            _starts(p),
            tuple(int(getattr(p, attribute)) for attribute, _ in _ENGINES),
            p.instance_count,
        )
        for p in ordered
    ]
    total = memory_slices(profiles)
    memo: dict[tuple[int, tuple[int, ...], tuple[int, ...]], int] = {}

    def solve_from(used: int, spent: tuple[int, ...], counts: tuple[int, ...]) -> int:
        key = (used, spent, counts)
        if key in memo:
            return memo[key]
        free = total - bin(used).count("1")
        best = 0
        for i, (size, size_mask, starts, engines, cap) in enumerate(rows):
            if best == free:
                break
            if counts[i] >= cap:
                continue
            after = tuple(a + b for a, b in zip(spent, engines, strict=True))
            if any(a > b for a, b in zip(after, budget, strict=True)):
                continue
            grown = (*counts[:i], counts[i] + 1, *counts[i + 1 :])
            for start in starts:
                mask = size_mask << start
                if mask & used:
                    continue
                best = max(best, size + solve_from(used | mask, after, grown))
                if best == free:
                    break
        memo[key] = best
        return best

    return ordered, solve_from
