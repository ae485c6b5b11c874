"""The dynamic MIG device preference (``dra.mig_placement``): candidates ordered so the GPU
keeps its largest free profiles, running instances fixed; the fragmentation cases first-fit
(the scheduler's published order) loses and the preference serves; NVIDIA's documented
creation-order failure (``nvidia-smi mig -cgi 19,19,14,9``) served in full, and created on the
simulator at the preferred placements."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from gpu_operator.dra.mig_devices import MigGpu, placements
from gpu_operator.dra.mig_placement import MigPreference, order
from gpu_operator.dra.mig_prepare import prepare
from gpu_operator.errors import GpuError
from gpu_operator.gpu import Nvml
from gpu_operator.mig.placement import Placed, capacity_left, holes_left
from helpers.mig_dra import CounterAllocator, oracle_starts
from helpers.mig_tables import profiles_of

OpenSim = Callable[..., Nvml]
H100 = "H100-SXM5-80GB"


def h100(minor: int = 0, foreign: tuple[Placed, ...] = ()) -> MigGpu:
    return MigGpu(minor, f"GPU-h100-{minor}", profiles_of(H100), foreign=foreign)


def allocators(gpu: MigGpu) -> tuple[CounterAllocator, CounterAllocator]:
    """(first-fit in published order, the same allocator with our preference)."""
    first_fit = CounterAllocator(gpu)
    ours = CounterAllocator(gpu)
    ours.prefer = MigPreference([gpu], ours.in_use).prefer
    return first_fit, ours


def starts(allocator: CounterAllocator) -> list[tuple[str, int]]:
    return sorted((p.name, s) for p, s in allocator.instances())


@pytest.mark.parametrize(
    ("profile", "best"),
    [("1g.10gb", 0), ("1g.20gb", 6), ("2g.20gb", 0), ("3g.40gb", 4), ("4g.40gb", 0)],
)
def test_on_an_empty_gpu_each_profile_goes_where_the_rest_stays_most_usable(
    profile: str, best: int
) -> None:
    """Small ones fill from the low edge; a 1g.20gb takes 6-7 (slice 7 is only reachable by it,
    a 3g or the 7g); a 3g takes the upper half, leaving the lower one to a 4g."""
    gpu = h100()
    candidates = [p for p in placements(gpu) if p.profile.name == profile]
    ranked = order(gpu.profiles, [], candidates)
    assert ranked[0].start == best
    assert sorted(ranked, key=lambda p: p.start) == sorted(candidates, key=lambda p: p.start)


def test_small_instances_pack_from_the_low_edge_keeping_the_upper_half_for_a_3g() -> None:
    _, ours = allocators(h100())
    for claim in range(3):
        assert ours.claim(claim, "1g.10gb") is not None
    assert starts(ours) == [("1g.10gb", 0), ("1g.10gb", 1), ("1g.10gb", 2)]
    assert ours.claim(3, "1g.10gb") == "gpu-0-mig-1g10gb-19-3"
    assert ours.claim(4, "3g.40gb") == "gpu-0-mig-3g40gb-9-4"


def test_a_1g_never_strands_slice_7() -> None:
    """With 1-5 taken, a 1g at 6 would leave slice 7 to nothing (only a 1g.20gb at 6, a 3g at 4
    or the 7g reach it): it goes to 0, and a 1g.20gb can still take 6-7."""
    by_name = {p.name: p for p in profiles_of(H100)}
    one_g = by_name["1g.10gb"]
    fixed = [Placed(one_g, s) for s in range(1, 6)]
    ranked = order(profiles_of(H100), fixed, [Placed(one_g, 0), Placed(one_g, 6)])
    assert [p.start for p in ranked] == [0, 6]


def test_after_out_of_order_releases_first_fit_blocks_the_last_3g_and_the_preference_does_not() -> (
    None
):
    """The DRA driver's issue #933 shape: claims served first-fit then released out of order
    leave one 1g in the upper half (a running pod's: it stays); the next 1g must not take the
    lower half, or no 3g fits although four slices are free."""
    first_fit, ours = allocators(h100())
    for claim in range(5):
        assert first_fit.claim(claim, "1g.10gb") == f"gpu-0-mig-1g10gb-19-{claim}"
    for claim in range(4):
        first_fit.release(claim)
    ours.allocated = dict(first_fit.allocated)
    for allocator in (first_fit, ours):
        assert starts(allocator) == [("1g.10gb", 4)]
        assert allocator.claim(5, "1g.10gb") is not None
    assert starts(first_fit) == [("1g.10gb", 0), ("1g.10gb", 4)]
    assert starts(ours) == [("1g.10gb", 4), ("1g.10gb", 5)]
    assert first_fit.claim(6, "3g.40gb") is None
    # The refusal is real: no placement exists for first-fit's layout.
    (three_g,) = [p for p in first_fit.gpu.profiles if p.name == "3g.40gb"]
    assert oracle_starts(first_fit.gpu.profiles, first_fit.instances(), three_g) == []
    assert ours.claim(6, "3g.40gb") == "gpu-0-mig-3g40gb-9-0"


def test_nvidias_documented_creation_order_is_served_in_full(
    open_sim: OpenSim,
) -> None:
    """MIG user guide: ``nvidia-smi mig -cgi 19,19,14,9`` fails with Insufficient Resources
    (the driver's own starts for the 1g/2g block both 3g slots); ``-cgi 9,19,14,19`` works.
    In that order, claims for 1g, 1g, 2g, 3g are all served with the preference, and the
    instances are created on the simulated card exactly there."""
    nvml = open_sim("hgx-h100")
    nvml.set_mig_mode(0, True)
    ids = {p.name: p.id for p in nvml.gi_profiles(0)}
    order_of_the_guide = ["1g.10gb", "1g.10gb", "2g.20gb", "3g.40gb"]
    # The driver choosing the starts (no placement given) fails on the 3g, as documented.
    created = [nvml.create_gpu_instance(0, ids[name]) for name in order_of_the_guide[:3]]
    with pytest.raises(GpuError) as refused:
        nvml.create_gpu_instance(0, ids["3g.40gb"])
    assert refused.value.nvml_name == "NVMLError_InsufficientResources"
    for gi in created:
        nvml.destroy_gpu_instance(0, gi.id)
    # Through DRA: counters + our preference, then prepare creates each instance.
    info = nvml.gpu(0)
    gpu = MigGpu(info.minor_number, info.uuid, tuple(nvml.gi_profiles(0)))
    _, ours = allocators(gpu)
    for claim, name in enumerate(order_of_the_guide):
        device = ours.claim(claim, name)
        assert device is not None, f"claim {claim} for {name} refused"
        prepare(nvml, device)
    listed = sorted((gi.profile_name, gi.placement.start) for gi in nvml.gpu_instances(0))
    assert listed == starts(ours)
    assert listed == [("1g.10gb", 0), ("1g.10gb", 1), ("2g.20gb", 2), ("3g.40gb", 4)]
    assert len(nvml.mig_devices(0)) == 4


def test_partitioned_gpus_fill_first_so_whole_gpus_stay_whole() -> None:
    one_g = next(p for p in profiles_of(H100) if p.name == "1g.10gb")
    busy = h100(0)
    empty = h100(1)
    preference = MigPreference([busy, empty], lambda: ["gpu-0-mig-1g10gb-19-6"])
    candidates = [f"gpu-1-mig-1g10gb-19-{s}" for s in range(7)] + [
        f"gpu-0-mig-1g10gb-19-{s}" for s in range(6)
    ]
    assert preference.prefer(candidates)[0] == "gpu-0-mig-1g10gb-19-5"
    assert one_g.id == 19


def test_devices_in_use_and_foreign_instances_stay_fixed() -> None:
    by_name = {p.name: p for p in profiles_of(H100)}
    # A foreign 3g holds 0-3, a claim holds the 1g at 4: slices 5, 6 and 7 are free.
    gpu = h100(foreign=(Placed(by_name["3g.40gb"], 0),))
    held = ["gpu-0-mig-1g10gb-19-4"]
    preference = MigPreference([gpu], lambda: held)
    fixed = preference.fixed(gpu, held)
    assert sorted(str(p) for p in fixed) == ["1g.10gb@4", "3g.40gb@0"]
    ranked = preference.prefer(["gpu-0-mig-1g10gb-19-6", "gpu-0-mig-1g10gb-19-5"])
    # At 6 the 1g would block the 1g.20gb at 6-7; at 5 it does not.
    assert ranked[0] == "gpu-0-mig-1g10gb-19-5"


def test_unknown_candidates_keep_their_order_after_ours_and_objects_are_accepted() -> None:
    gpu = h100()
    preference = MigPreference([gpu])
    ranked = preference.prefer(
        [
            {"name": "gpu-0"},
            {"name": "gpu-0-mig-1g10gb-19-6"},
            {"name": "other-driver-device"},
            {"name": "gpu-0-mig-1g10gb-19-0"},
            {"name": "gpu-9-mig-1g10gb-19-6"},
        ]
    )
    assert [c["name"] for c in ranked] == [
        "gpu-0-mig-1g10gb-19-0",
        "gpu-0-mig-1g10gb-19-6",
        "gpu-0",
        "other-driver-device",
        "gpu-9-mig-1g10gb-19-6",
    ]


def test_a_scheduler_can_pass_its_pools_allocations_and_a_name_function_per_call() -> None:
    """The sandbox scheduler's candidates carry their pool's allocated devices: given per call,
    they override the constructor's ``in_use``."""
    preference = MigPreference([h100()], lambda: ["gpu-0-mig-1g10gb-19-0"])
    candidates = [("gpu-0-mig-1g10gb-19-2",), ("gpu-0-mig-1g10gb-19-1",)]
    # With 0 held (the constructor's view), 1 packs against it.
    assert preference.prefer(candidates, name=lambda c: c[0])[0] == candidates[1]
    # With 3 held instead (the scheduler's view), 2 packs against it and keeps 0-1 for a 2g.
    ranked = preference.prefer(candidates, name=lambda c: c[0], in_use=["gpu-0-mig-1g10gb-19-3"])
    assert ranked[0] == candidates[0]


@pytest.mark.parametrize("model", ["H100-SXM5-80GB", "A100-SXM4-40GB", "A30-24GB"])
def test_capacity_and_holes_left_match_a_brute_force_over_placements(model: str) -> None:
    """The solver's measures the preference ranks by, checked on random layouts: the most
    memory slices more instances could take, and the free ranges per instance size."""
    profiles = profiles_of(model)
    options = [(p, pl.start) for p in profiles for pl in p.placements]
    rng = random.Random(3)

    known: dict[tuple[tuple[int, int], ...], int] = {}

    def most(fixed: list[tuple[Any, int]]) -> int:
        # Exhaustive over every order of placements; an answer depends only on the set placed
        # (the profiles are ``profiles``' own objects), so each set is searched once.
        key = tuple(sorted((id(p), s) for p, s in fixed))
        if key not in known:
            best = 0
            for p, s in options:
                if s in oracle_starts(profiles, fixed, p):
                    best = max(best, p.memory_slices + most([*fixed, (p, s)]))
            known[key] = best
        return known[key]

    for _ in range(12):
        fixed: list[tuple[Any, int]] = []
        for _ in range(rng.randint(0, 4)):
            addable = [(p, s) for p, s in options if s in oracle_starts(profiles, fixed, p)]
            if addable:
                fixed.append(rng.choice(addable))
        placed = [Placed(p, s) for p, s in fixed]
        assert capacity_left(profiles, placed) == most(fixed), fixed
        sizes = sorted({p.memory_slices for p in profiles}, reverse=True)
        holes = tuple(
            len(
                {
                    s
                    for p in profiles
                    if p.memory_slices == size
                    for s in oracle_starts(profiles, fixed, p)
                }
            )
            for size in sizes
        )
        assert holes_left(profiles, placed) == holes
