"""Profile names: parsing and printing every form mig-parted accepts, the config-name form, and
resolution against one GPU's own profile list (never a global table)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpu_operator.errors import ConfigError
from gpu_operator.mig.profiles import (
    ProfileName,
    config_name,
    format_counts,
    parse_profile,
    resolve,
)
from helpers.mig_tables import MIG_MODELS, profiles_of


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        pytest.param("1g.5gb", ProfileName(1, 5), id="plain"),
        pytest.param("1g.10gb+me", ProfileName(1, 10, "+me"), id="media extensions"),
        pytest.param("1c.3g.20gb", ProfileName(3, 20, "", 1), id="compute instance"),
        pytest.param("1g.24gb-me", ProfileName(1, 24, "-me"), id="no media engines"),
        pytest.param("2g.48gb+gfx", ProfileName(2, 48, "+gfx"), id="graphics"),
        pytest.param("1g.24gb+me.all", ProfileName(1, 24, "+me.all"), id="all media engines"),
        pytest.param("3c.3g.20gb", ProfileName(3, 20), id="full CI is the GI"),
        pytest.param("7g.141gb", ProfileName(7, 141), id="three-digit memory"),
    ],
)
def test_profile_names_parse_into_their_parts(text: str, parsed: ProfileName) -> None:
    assert parse_profile(text) == parsed


@pytest.mark.parametrize(
    "text",
    ["1g", "1g.5", "g.5gb", "1g.5gb+foo", "0g.5gb", "1g.5GB", "4c.3g.20gb", "3c.4g.40gb", ""],
)
def test_malformed_profile_names_are_refused_with_the_expected_shape(text: str) -> None:
    with pytest.raises(ConfigError, match=r"profile|compute instance|GPU instance"):
        parse_profile(text)


@given(
    st.integers(1, 8),
    st.integers(1, 300),
    st.sampled_from(["", "+me", "+me.all", "+gfx", "-me"]),
    st.one_of(st.none(), st.sampled_from([1, 2])),
)
def test_printing_a_parsed_name_gives_the_name_back(
    g: int, gb: int, suffix: str, c: int | None
) -> None:
    if c is not None and c >= g:
        c = None
    name = ProfileName(g, gb, suffix, c)
    assert parse_profile(str(name)) == name


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        ("1g.5gb+me", "1g.5gb.me"),
        ("1g.24gb-me", "1g.24gb-me"),
        ("1g.24gb+me.all", "1g.24gb.me.all"),
    ],
)
def test_config_names_replace_plus_by_a_dot(profile: str, expected: str) -> None:
    assert config_name(profile) == expected
    assert parse_profile(profile).config_name == expected


@pytest.mark.parametrize("model", MIG_MODELS)
def test_every_profile_a_gpu_reports_resolves_to_itself(model: str) -> None:
    profiles = profiles_of(model)
    for p in profiles:
        assert resolve(parse_profile(p.name), profiles) == p
        if p.slice_count > 1:
            assert resolve(parse_profile(f"1c.{p.name}").gi, profiles) == p


def test_a_name_from_another_model_does_not_resolve_and_the_error_lists_the_gpus_profiles() -> None:
    with pytest.raises(ConfigError) as info:
        resolve(parse_profile("1g.18gb"), profiles_of("A100-SXM4-40GB"))
    assert "1g.18gb" in str(info.value)
    assert "1g.5gb" in str(info.value)


def test_the_same_name_resolves_to_each_models_own_profile_id() -> None:
    a100 = resolve(parse_profile("1g.10gb"), profiles_of("A100-SXM4-40GB"))
    h100 = resolve(parse_profile("1g.10gb"), profiles_of("H100-SXM5-80GB"))
    assert (a100.memory_slices, h100.memory_slices) == (2, 1)
    assert a100.id != h100.id


def test_counts_are_printed_largest_first() -> None:
    assert format_counts({"1g.5gb": 2, "3g.20gb": 1, "2g.10gb": 1}) == (
        "3g.20gb + 2g.10gb + 2×1g.5gb"
    )
