"""Profile names are derived from NVML numbers exactly as upstream does (mig.md §1.2)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from gpu_operator.gpu import Nvml, naming
from gpu_operator.gpu.fake.catalogue import MODELS

DATA = Path(__file__).parents[2] / "data"
EXPECTED_NAMES = json.loads((DATA / "mig_profile_names.json").read_text())
H200_TOTAL = 150754820096


@pytest.mark.parametrize(
    ("memory_mb", "label"),
    [
        pytest.param(71424, 71, id="3g on H200 rounds 70.5 half up to 71, not to even 70"),
        pytest.param(16384, 18, id="1g on H200 is one eighth of 141 = 17.6 -> 18"),
        pytest.param(33280, 35, id="two eighths of 141 = 35.25 -> 35"),
        pytest.param(143360, 141, id="the whole card is ceil(140.4 GiB) = 141"),
    ],
)
def test_memory_label_follows_go_nvlib(memory_mb: int, label: int) -> None:
    assert naming.memory_label_gb(memory_mb, H200_TOTAL) == label


def test_round_half_up_differs_from_python_round_at_half() -> None:
    assert naming.round_half_up(70.5) == 71
    assert naming.round_half_up(70.49) == 70
    assert round(70.5) == 70  # the pitfall the formula guards against


@pytest.mark.parametrize(
    ("enum", "suffix"),
    [
        pytest.param(0x0, "", id="1_SLICE has no suffix"),
        pytest.param(0x7, "+me", id="1_SLICE_REV1 is +me"),
        pytest.param(0x8, "+me", id="2_SLICE_REV1 is +me"),
        pytest.param(0x9, "", id="1_SLICE_REV2 differs only in memory"),
        pytest.param(0xA, "+gfx", id="1_SLICE_GFX is +gfx"),
        pytest.param(0xD, "-me", id="1_SLICE_NO_ME is -me"),
        pytest.param(0xF, "+me.all", id="1_SLICE_ALL_ME is +me.all"),
    ],
)
def test_profile_suffix_comes_from_the_nvml_profile_enum(enum: int, suffix: str) -> None:
    assert naming.gi_profile_suffix(enum) == suffix


def test_compute_instance_names_prefix_the_ci_slices_unless_full() -> None:
    assert naming.ci_profile_name(1, 3, "3g.20gb") == "1c.3g.20gb"
    assert naming.ci_profile_name(3, 3, "3g.20gb") == "3g.20gb"


def test_a_zero_memory_total_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        naming.memory_label_gb(1024, 0)


@pytest.mark.parametrize("model_key", sorted(MODELS))
def test_every_catalogue_model_shows_the_reference_profile_names(
    model_key: str, open_sim: Callable[..., Nvml]
) -> None:
    nvml = open_sim(model_key)
    assert [p.name for p in nvml.gi_profiles(0)] == EXPECTED_NAMES[model_key]


def test_the_name_table_covers_every_catalogue_model() -> None:
    assert set(EXPECTED_NAMES) - {"_source"} == set(MODELS)
