"""The sandbox scheduler's device preference for ``gpu.nvidia.com``: dynamic MIG candidates in
the placement solver's order (``dra.mig_placement.MigPreference``), one preference per pool
(node) built from the GPUs its slices publish (``dra.mig_published``), the pool's allocated
devices fixed. Candidates that are not dynamic MIG devices keep their slice order."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from gpu_operator.dra.mig_placement import MigPreference
from gpu_operator.dra.mig_published import mig_gpus
from gpu_operator.sandbox.dra.allocator import Candidate, Prefer


def mig_preference(slices: Iterable[Mapping[str, Any]]) -> Prefer:
    """``prefer(candidates)`` for the pools ``slices`` describe."""
    by_pool = {pool: MigPreference(gpus) for pool, gpus in mig_gpus(slices).items()}

    def prefer(candidates: Sequence[Candidate]) -> list[Candidate]:
        groups: dict[str, list[Candidate]] = {}
        for candidate in candidates:
            groups.setdefault(candidate.device.ref.pool, []).append(candidate)
        out: list[Candidate] = []
        for pool, group in groups.items():
            preference = by_pool.get(pool)
            if preference is None:
                out += group
                continue
            out += preference.prefer(
                group,
                name=lambda c: c.device.ref.device,
                in_use=[r.device for r in group[0].in_use],
            )
        return out

    return prefer
