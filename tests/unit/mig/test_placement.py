"""The placement solver against the MIG guide's geometry tables (mig.md §1.6), an exhaustive
enumeration of every legal layout (the oracle), and the reasons it gives when nothing fits."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpu_operator.mig.placement import (
    Layout,
    PlacementError,
    full_profile,
    memory_slices,
    room_score,
    solve,
)
from helpers.mig_oracle import achievable, key_of
from helpers.mig_tables import MIG_MODELS, by_name, profiles_of

A100 = "A100-SXM4-40GB"

# mig.md §1.6: maximal valid A100-40GB geometries and their placements (creation order).
MAXIMAL_A100 = [
    pytest.param(["7g.40gb"], [0], id="7g.40gb"),
    pytest.param(["4g.20gb", "3g.20gb"], [0, 4], id="4g + 3g"),
    pytest.param(["4g.20gb", "2g.10gb", "1g.5gb"], [0, 4, 6], id="4g + 2g + 1g"),
    pytest.param(["4g.20gb", "1g.5gb", "1g.5gb", "1g.5gb"], [0, 4, 5, 6], id="4g + 3×1g"),
    pytest.param(["3g.20gb", "3g.20gb"], [0, 4], id="2×3g"),
    pytest.param(["3g.20gb", "2g.10gb", "2g.10gb"], [4, 0, 2], id="3g + 2×2g"),
    pytest.param(
        ["3g.20gb", "2g.10gb", "1g.5gb", "1g.5gb"], [4, 2, 0, 1], id="all-balanced 3g + 2g + 2×1g"
    ),
    pytest.param(["3g.20gb"] + ["1g.5gb"] * 4, [4, 0, 1, 2, 3], id="3g + 4×1g"),
    pytest.param(["2g.10gb"] * 3 + ["1g.5gb"], [0, 2, 4, 6], id="3×2g + 1g"),
    pytest.param(["1g.5gb"] * 7, [0, 1, 2, 3, 4, 5, 6], id="7×1g"),
    pytest.param(["4g.20gb", "1g.10gb", "1g.10gb"], [0, 4, 6], id="4g + 2×1g.10gb"),
]

# mig.md §1.6: geometries with a choice of placements; only the multiset is fixed.
CHOICE_A100 = [
    pytest.param(["2g.10gb"] * 2 + ["1g.5gb"] * 3, id="2×2g + 3×1g"),
    pytest.param(["2g.10gb"] + ["1g.5gb"] * 5, id="2g + 5×1g"),
    pytest.param(["3g.20gb", "2g.10gb", "1g.10gb"], id="3g + 2g + 1g.10gb"),
]

INVALID_A100 = [
    pytest.param(["3g.20gb", "3g.20gb", "1g.5gb"], "memory slices", id="3g + 3g + 1g"),
    pytest.param(["4g.20gb", "2g.10gb", "2g.10gb"], "compute slices", id="4g + 2×2g"),
    pytest.param(["2g.10gb"] * 3 + ["1g.5gb"] * 2, "compute slices", id="3×2g + 2×1g"),
    pytest.param(["3g.20gb", "3g.20gb", "1g.10gb"], "memory slices", id="2×3g + 1g.10gb"),
    pytest.param(["1g.10gb"] * 5, "count cap", id="5×1g.10gb"),
    pytest.param(["1g.5gb+me"] * 2, "count cap", id="2×1g.5gb+me"),
    pytest.param(["7g.40gb", "1g.5gb"], "memory slices", id="7g + 1g"),
]


def assert_legal(model: str, layout: Layout, names: list[str]) -> None:
    """Every placement legal, ranges disjoint, caps and the engine budget respected."""
    profiles = profiles_of(model)
    assert Counter(p.profile.name for p in layout.placed) == Counter(names)
    used = 0
    for placed in layout.placed:
        assert placed.start in {pl.start for pl in placed.profile.placements}
        assert not placed.mask & used, f"{placed} overlaps"
        used |= placed.mask
        assert used < 1 << memory_slices(profiles)
    for name, n in Counter(names).items():
        assert n <= by_name(model, name)[0].instance_count
    full = full_profile(profiles)
    for engine in ("slice_count", "copy_engines", "decoders", "jpegs", "ofas"):
        assert sum(getattr(p.profile, engine) for p in layout.placed) <= getattr(full, engine)
    sizes = [(p.profile.memory_slices, p.profile.slice_count) for p in layout.placed]
    assert sizes == sorted(sizes, reverse=True), "creation order must be largest first"


@pytest.mark.parametrize(("names", "starts"), MAXIMAL_A100)
def test_each_maximal_a100_geometry_of_the_guide_is_placed_at_the_guides_starts(
    names: list[str], starts: list[int]
) -> None:
    layout = solve(profiles_of(A100), by_name(A100, *names))
    assert_legal(A100, layout, names)
    assert [(p.profile.name, p.start) for p in layout.placed] == list(
        zip(names, starts, strict=True)
    )


@pytest.mark.parametrize("names", CHOICE_A100)
def test_geometries_with_a_choice_of_starts_are_placed_legally(names: list[str]) -> None:
    assert_legal(A100, solve(profiles_of(A100), by_name(A100, *names)), names)


@pytest.mark.parametrize(("names", "rule"), INVALID_A100)
def test_each_invalid_a100_geometry_is_refused_with_the_rule_it_breaks(
    names: list[str], rule: str
) -> None:
    with pytest.raises(PlacementError) as info:
        solve(profiles_of(A100), by_name(A100, *names))
    assert rule in str(info.value)
    assert set(info.value.conflict) <= set(names)
    assert info.value.conflict, "the conflicting profiles must be named"


def test_two_3g_and_a_1g_names_all_three_profiles_in_the_conflict() -> None:
    with pytest.raises(PlacementError) as info:
        solve(profiles_of(A100), by_name(A100, "3g.20gb", "3g.20gb", "1g.5gb"))
    assert sorted(info.value.conflict) == ["1g.5gb", "3g.20gb", "3g.20gb"]
    assert "2×3g.20gb + 1g.5gb" in str(info.value)


def test_a_3g_with_three_1g_keeps_the_free_slice_usable_instead_of_slice_7() -> None:
    layout = solve(profiles_of(A100), by_name(A100, "3g.20gb", "1g.5gb", "1g.5gb", "1g.5gb"))
    assert layout.free_slices == [3], "slice 7 is only usable by 1g.10gb, 3g or 7g"


def test_an_empty_request_gives_an_empty_layout() -> None:
    assert solve(profiles_of(A100), []).placed == ()


@pytest.mark.parametrize("model", MIG_MODELS)
def test_every_achievable_multiset_of_every_model_is_solved_legally_and_optimally(
    model: str,
) -> None:
    profiles = profiles_of(model)
    table = {p.name: p for p in profiles}
    for key, best_score in achievable(model).items():
        names = [name for name, n in key for _ in range(n)]
        layout = solve(profiles, [table[n] for n in names])
        assert_legal(model, layout, names)
        assert room_score(profiles, layout.used_mask) == best_score, names


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, list[str]]:
    model = draw(st.sampled_from(MIG_MODELS))
    names = [p.name for p in profiles_of(model)]
    return model, draw(st.lists(st.sampled_from(names), min_size=1, max_size=9))


@settings(max_examples=400, deadline=None)
@given(requests())
def test_the_solver_says_impossible_exactly_when_exhaustive_enumeration_finds_no_layout(
    request_: tuple[str, list[str]],
) -> None:
    model, names = request_
    possible = key_of(names) in achievable(model)
    if not possible:
        with pytest.raises(PlacementError) as info:
            solve(profiles_of(model), by_name(model, *names))
        conflict = list(info.value.conflict)
        assert conflict
        assert set(conflict) <= set(names)
        assert key_of(conflict) not in achievable(model), "the named conflict must itself fail"
    else:
        assert_legal(model, solve(profiles_of(model), by_name(model, *names)), names)
