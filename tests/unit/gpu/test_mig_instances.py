"""The facade's MIG calls (``Nvml``, the production code path) on simulated nodes: MIG mode,
GPU-instance placement and refusals, the guide's valid and invalid layouts, compute instances,
MIG devices and remaining capacity (facts from ``shared/reference/mig.md`` §1.6 and §2)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpu_operator.errors import GpuError
from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.gpu.fake import faults
from gpu_operator.gpu.fake.state import StateStore
from gpu_operator.gpu.records import GpuInstance, GpuInstanceProfile, MigModeValue, Placement

MIB = 2**20
OpenSim = Callable[..., Nvml]

HOPPER = [pytest.param("h200", id="h200"), pytest.param("hgx-h100", id="hgx-h100")]
AMPERE = [pytest.param("dgx-a100", id="dgx-a100"), pytest.param("a30x4", id="a30x4")]
MIG_PRESETS = HOPPER + AMPERE

# The smallest plain profile and the +me profile of each preset's GPU (mig.md §1.4).
SMALLEST = {"dgx-a100": "1g.5gb", "hgx-h100": "1g.10gb", "h200": "1g.18gb", "a30x4": "1g.6gb"}
MEDIA = {k: v + "+me" for k, v in SMALLEST.items()}


def store_for(tmp_path: Path, spec: str) -> StateStore:
    """The state of the node that ``open_sim(spec)`` opened (same root as the fixture)."""
    return StateStore(HardwareSettings(sim=spec, sim_root=tmp_path / "sim").state_path())


def enable_mig(nvml: Nvml, store: StateStore, index: int = 0) -> None:
    """Enable MIG, resetting the GPU when the architecture needs it (Ampere)."""
    mode, _ = nvml.set_mig_mode(index, True)
    if mode.change_pending:
        faults.reset_gpu(store, index)
    mode_now = nvml.mig_mode(index)
    assert mode_now is not None
    assert mode_now.enabled
    assert not mode_now.change_pending


def profile(nvml: Nvml, name: str, index: int = 0) -> GpuInstanceProfile:
    found = [p for p in nvml.gi_profiles(index) if p.name == name]
    assert len(found) == 1, f"{name} not among {[p.name for p in nvml.gi_profiles(index)]}"
    return found[0]


def create(nvml: Nvml, name: str, start: int | None, index: int = 0) -> GpuInstance:
    return nvml.create_gpu_instance(index, profile(nvml, name, index).id, start)


def refused(call: Callable[[], object]) -> str | None:
    """Run a call that must fail; return the NVML error name it failed with."""
    with pytest.raises(GpuError) as info:
        call()
    return info.value.nvml_name


@pytest.fixture
def mig_gpu(open_sim: OpenSim, tmp_path: Path) -> Callable[[str], tuple[Nvml, StateStore]]:
    """``mig_gpu("dgx-a100")`` → an open node whose GPU 0 is in MIG mode, and its state."""

    def _open(spec: str) -> tuple[Nvml, StateStore]:
        nvml = open_sim(spec)
        store = store_for(tmp_path, spec)
        enable_mig(nvml, store)
        return nvml, store

    return _open


# --- MIG mode --------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", HOPPER)
def test_enabling_mig_on_an_idle_hopper_gpu_takes_effect_at_once(
    open_sim: OpenSim, spec: str
) -> None:
    nvml = open_sim(spec)
    mode, status = nvml.set_mig_mode(0, True)
    assert status is None
    assert mode.current is MigModeValue.ENABLED
    assert mode.pending is MigModeValue.ENABLED
    assert nvml.gpu(0).mig_mode == mode


@pytest.mark.parametrize("spec", AMPERE)
def test_enabling_mig_on_ampere_stays_pending_until_the_gpu_is_reset(
    open_sim: OpenSim, tmp_path: Path, spec: str
) -> None:
    nvml = open_sim(spec)
    mode, status = nvml.set_mig_mode(0, True)
    assert status == "NVMLError_ResetRequired"
    assert (mode.current, mode.pending) == (MigModeValue.DISABLED, MigModeValue.ENABLED)
    assert nvml.gpu_instances(0) == []
    assert refused(lambda: create(nvml, SMALLEST[spec], 0)) == "NVMLError_NotSupported"

    faults.reset_gpu(store_for(tmp_path, spec), 0)

    after = nvml.mig_mode(0)
    assert after is not None
    assert (after.current, after.pending) == (MigModeValue.ENABLED, MigModeValue.ENABLED)
    other = nvml.mig_mode(1)
    assert other is not None
    assert not other.enabled, "resetting GPU 0 must not touch GPU 1"


@pytest.mark.parametrize("spec", MIG_PRESETS)
def test_enabling_mig_on_a_gpu_running_a_process_stays_pending_with_in_use(
    open_sim: OpenSim, tmp_path: Path, spec: str
) -> None:
    nvml = open_sim(spec)
    store = store_for(tmp_path, spec)
    pid = faults.start_process(store, 0)
    mode, status = nvml.set_mig_mode(0, True)
    assert status == "NVMLError_InUse"
    assert (mode.current, mode.pending) == (MigModeValue.DISABLED, MigModeValue.ENABLED)

    faults.stop_processes(store, 0, pid)
    mode, status = nvml.set_mig_mode(0, True)
    expected = "NVMLError_ResetRequired" if spec in ("dgx-a100", "a30x4") else None
    assert status == expected
    assert mode.enabled is (expected is None)


@pytest.mark.parametrize("spec", MIG_PRESETS)
def test_disabling_mig_while_gpu_instances_exist_fails_with_in_use(
    mig_gpu: Callable[[str], tuple[Nvml, StateStore]], spec: str
) -> None:
    nvml, _ = mig_gpu(spec)
    create(nvml, SMALLEST[spec], 0)
    before = nvml.gpu_instances(0)

    assert refused(lambda: nvml.set_mig_mode(0, False)) == "NVMLError_InUse"

    mode = nvml.mig_mode(0)
    assert mode is not None
    assert (mode.current, mode.pending) == (MigModeValue.ENABLED, MigModeValue.ENABLED)
    assert nvml.gpu_instances(0) == before


@pytest.mark.parametrize("spec", HOPPER)
def test_disabling_mig_on_an_idle_hopper_gpu_without_instances_takes_effect_at_once(
    mig_gpu: Callable[[str], tuple[Nvml, StateStore]], spec: str
) -> None:
    nvml, _ = mig_gpu(spec)
    mode, status = nvml.set_mig_mode(0, False)
    assert status is None
    assert (mode.current, mode.pending) == (MigModeValue.DISABLED, MigModeValue.DISABLED)
    assert nvml.mig_devices(0) == []


def test_a_gpu_without_mig_reports_no_mode_and_refuses_to_enable_it(open_sim: OpenSim) -> None:
    nvml = open_sim("t4")
    assert nvml.mig_mode(0) is None
    assert nvml.gi_profiles(0) == []
    assert refused(lambda: nvml.set_mig_mode(0, True)) == "NVMLError_NotSupported"


# --- GPU instances at a placement ------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "name", "start", "gi_id"),
    [
        pytest.param("dgx-a100", "7g.40gb", 0, 0, id="a100-7g-whole-gpu-is-0"),
        pytest.param("dgx-a100", "4g.20gb", 0, 1, id="a100-4g-first-half-is-1"),
        pytest.param("dgx-a100", "3g.20gb", 0, 1, id="a100-3g-at-0-is-1"),
        pytest.param("dgx-a100", "3g.20gb", 4, 2, id="a100-3g-at-4-is-2"),
        pytest.param("dgx-a100", "2g.10gb", 2, 4, id="a100-2g-at-2-is-4"),
        pytest.param("dgx-a100", "1g.10gb", 6, 6, id="a100-1g.10gb-at-6-is-6"),
        pytest.param("dgx-a100", "1g.5gb", 0, 7, id="a100-1g-at-0-is-7"),
        pytest.param("dgx-a100", "1g.5gb", 6, 13, id="a100-1g-at-6-is-13"),
        pytest.param("dgx-a100", "1g.5gb+me", 3, 10, id="a100-1g+me-at-3-is-10"),
        pytest.param("hgx-h100", "3g.40gb", 4, 2, id="h100-3g-at-4-is-2"),
        pytest.param("hgx-h100", "1g.20gb", 2, 4, id="h100-1g.20gb-at-2-is-4"),
        pytest.param("h200", "1g.18gb", 3, 10, id="h200-1g-at-3-is-10"),
        pytest.param("h200", "7g.141gb", 0, 0, id="h200-7g-is-0"),
        pytest.param("a30x4", "4g.24gb", 0, 0, id="a30-4g-is-0"),
        pytest.param("a30x4", "2g.12gb", 2, 2, id="a30-2g-at-2-is-2"),
        pytest.param("a30x4", "1g.6gb", 3, 6, id="a30-1g-at-3-is-6"),
    ],
)
def test_a_gpu_instance_created_at_a_placement_reads_back_there_with_its_heap_id(
    mig_gpu: Callable[[str], tuple[Nvml, StateStore]], spec: str, name: str, start: int, gi_id: int
) -> None:
    nvml, _ = mig_gpu(spec)
    wanted = profile(nvml, name)
    created = nvml.create_gpu_instance(0, wanted.id, start)
    expected = GpuInstance(0, gi_id, wanted.id, name, Placement(start, wanted.memory_slices))
    assert created == expected
    assert nvml.gpu_instances(0) == [expected]


@pytest.mark.parametrize(
    ("spec", "name", "start"),
    [
        pytest.param("dgx-a100", "3g.20gb", 2, id="a100-3g-at-2"),
        pytest.param("dgx-a100", "2g.10gb", 1, id="a100-2g-at-1"),
        pytest.param("dgx-a100", "2g.10gb", 6, id="a100-2g-at-6"),
        pytest.param("dgx-a100", "4g.20gb", 4, id="a100-4g-at-4"),
        pytest.param("dgx-a100", "1g.5gb", 7, id="a100-1g-at-7"),
        pytest.param("dgx-a100", "1g.10gb", 1, id="a100-1g.10gb-at-1"),
        pytest.param("h200", "3g.71gb", 1, id="h200-3g-at-1"),
        pytest.param("a30x4", "2g.12gb", 1, id="a30-2g-at-1"),
        pytest.param("a30x4", "1g.6gb", 4, id="a30-1g-at-4"),
    ],
)
def test_creating_at_a_start_the_profile_does_not_allow_fails_with_invalid_argument(
    mig_gpu: Callable[[str], tuple[Nvml, StateStore]], spec: str, name: str, start: int
) -> None:
    nvml, _ = mig_gpu(spec)
    create(nvml, SMALLEST[spec], 0)
    before = nvml.gpu_instances(0)
    assert refused(lambda: create(nvml, name, start)) == "NVMLError_InvalidArgument"
    assert nvml.gpu_instances(0) == before


@pytest.mark.parametrize(
    ("spec", "existing", "name", "start"),
    [
        pytest.param("dgx-a100", [("3g.20gb", 4)], "1g.5gb", 5, id="a100-1g-inside-3g"),
        pytest.param("dgx-a100", [("3g.20gb", 4)], "1g.10gb", 6, id="a100-1g.10gb-inside-3g"),
        pytest.param("dgx-a100", [("4g.20gb", 0)], "2g.10gb", 2, id="a100-2g-inside-4g"),
        pytest.param("dgx-a100", [("1g.5gb", 3)], "2g.10gb", 2, id="a100-2g-over-a-1g"),
        pytest.param("dgx-a100", [("1g.5gb", 6)], "7g.40gb", 0, id="a100-7g-over-a-1g"),
        pytest.param("dgx-a100", [("1g.5gb", 0)], "1g.5gb", 0, id="a100-1g-twice-at-0"),
        pytest.param("hgx-h100", [("2g.20gb", 4)], "3g.40gb", 4, id="h100-3g-over-a-2g"),
        pytest.param("a30x4", [("1g.6gb", 1)], "2g.12gb", 0, id="a30-2g-over-a-1g"),
        pytest.param("a30x4", [("2g.12gb", 2)], "4g.24gb", 0, id="a30-4g-over-a-2g"),
    ],
)
def test_creating_over_an_existing_gpu_instance_fails_with_insufficient_resources(
    mig_gpu: Callable[[str], tuple[Nvml, StateStore]],
    spec: str,
    existing: list[tuple[str, int]],
    name: str,
    start: int,
) -> None:
    nvml, _ = mig_gpu(spec)
    for other, other_start in existing:
        create(nvml, other, other_start)
    before = nvml.gpu_instances(0)
    assert refused(lambda: create(nvml, name, start)) == "NVMLError_InsufficientResources"
    assert nvml.gpu_instances(0) == before


@pytest.mark.parametrize("spec", MIG_PRESETS)
def test_a_second_media_extension_instance_fails_with_insufficient_resources(
    mig_gpu: Callable[[str], tuple[Nvml, StateStore]], spec: str
) -> None:
    nvml, _ = mig_gpu(spec)
    create(nvml, MEDIA[spec], 0)
    before = nvml.gpu_instances(0)
    assert nvml.remaining_capacity(0, profile(nvml, MEDIA[spec]).id) == 0
    # Start 1 is free: only the one-per-GPU limit (the single JPEG/OFA) stands in the way.
    assert refused(lambda: create(nvml, MEDIA[spec], 1)) == "NVMLError_InsufficientResources"
    assert refused(lambda: create(nvml, MEDIA[spec], None)) == "NVMLError_InsufficientResources"
    assert nvml.gpu_instances(0) == before


def test_a_fifth_1g_10gb_on_an_a100_40gb_fails_with_insufficient_resources(
    mig_gpu: Callable[[str], tuple[Nvml, StateStore]],
) -> None:
    nvml, _ = mig_gpu("dgx-a100")
    for start in (0, 2, 4, 6):
        create(nvml, "1g.10gb", start)
    assert profile(nvml, "1g.10gb").instance_count == 4
    before = nvml.gpu_instances(0)
    assert nvml.remaining_capacity(0, profile(nvml, "1g.10gb").id) == 0
    assert refused(lambda: create(nvml, "1g.10gb", None)) == "NVMLError_InsufficientResources"
    assert refused(lambda: create(nvml, "1g.10gb", 2)) == "NVMLError_InsufficientResources"
    assert nvml.gpu_instances(0) == before


# --- the guide's layouts (mig.md §1.6) ---------------------------------------------------------

A100_MAXIMAL_LAYOUTS = [
    pytest.param([("7g.40gb", 0)], id="1-7g"),
    pytest.param([("4g.20gb", 0), ("3g.20gb", 4)], id="2-4g+3g"),
    pytest.param([("4g.20gb", 0), ("2g.10gb", 4), ("1g.5gb", 6)], id="3-4g+2g+1g"),
    pytest.param([("4g.20gb", 0)] + [("1g.5gb", s) for s in (4, 5, 6)], id="4-4g+3x1g"),
    pytest.param([("3g.20gb", 0), ("3g.20gb", 4)], id="5-2x3g"),
    pytest.param([("3g.20gb", 4), ("2g.10gb", 0), ("2g.10gb", 2)], id="6-3g+2x2g"),
    pytest.param(
        [("3g.20gb", 4), ("2g.10gb", 2), ("1g.5gb", 0), ("1g.5gb", 1)], id="7-all-balanced"
    ),
    pytest.param([("3g.20gb", 4)] + [("1g.5gb", s) for s in range(4)], id="8-3g+4x1g"),
    pytest.param([("2g.10gb", s) for s in (0, 2, 4)] + [("1g.5gb", 6)], id="9-3x2g+1g"),
    pytest.param(
        [("2g.10gb", 0), ("2g.10gb", 2)] + [("1g.5gb", s) for s in (4, 5, 6)], id="10-2x2g+3x1g"
    ),
    pytest.param([("2g.10gb", 0)] + [("1g.5gb", s) for s in range(2, 7)], id="11-2g+5x1g"),
    pytest.param([("1g.5gb", s) for s in range(7)], id="12-7x1g"),
    pytest.param([("4g.20gb", 0), ("1g.10gb", 4), ("1g.10gb", 6)], id="4g+2x1g.10gb"),
    pytest.param([("3g.20gb", 4), ("2g.10gb", 0), ("1g.10gb", 2)], id="3g+2g+1g.10gb"),
]


@pytest.mark.parametrize("layout", A100_MAXIMAL_LAYOUTS)
def test_each_maximal_a100_layout_of_the_guide_fits_at_its_listed_starts(
    mig_gpu: Callable[[str], tuple[Nvml, StateStore]], layout: list[tuple[str, int]]
) -> None:
    nvml, _ = mig_gpu("dgx-a100")
    for name, start in layout:
        create(nvml, name, start)
        nvml.create_compute_instance(0, nvml.gpu_instances(0)[-1].id)

    got = sorted((gi.profile_name, gi.placement.start) for gi in nvml.gpu_instances(0))
    assert got == sorted(layout)
    assert all(len(gi.compute_instances) == 1 for gi in nvml.gpu_instances(0))
    # Maximal: no profile has room for one more instance.
    assert {p.name: nvml.remaining_capacity(0, p.id) for p in nvml.gi_profiles(0)} == {
        p.name: 0 for p in nvml.gi_profiles(0)
    }


def fits_somewhere(nvml: Nvml, names: list[str], refusals: set[str | None]) -> bool:
    """Whether the GI multiset ``names`` fits at any combination of legal starts, searched
    through the facade (each tried instance is destroyed again); refusals are collected."""
    if not names:
        return True
    first, rest = names[0], names[1:]
    wanted = profile(nvml, first)
    for placement in wanted.placements:
        try:
            gi = nvml.create_gpu_instance(0, wanted.id, placement.start)
        except GpuError as error:
            refusals.add(error.nvml_name)
            continue
        try:
            if fits_somewhere(nvml, rest, refusals):
                return True
        finally:
            nvml.destroy_gpu_instance(0, gi.id)
    return False


@pytest.mark.parametrize(
    ("spec", "names"),
    [
        pytest.param("dgx-a100", ["3g.20gb", "3g.20gb", "1g.5gb"], id="a100-3g+3g+1g"),
        pytest.param("dgx-a100", ["4g.20gb", "2g.10gb", "2g.10gb"], id="a100-4g+2x2g"),
        pytest.param("dgx-a100", ["2g.10gb"] * 3 + ["1g.5gb"] * 2, id="a100-3x2g+2x1g"),
        pytest.param("dgx-a100", ["3g.20gb", "3g.20gb", "1g.10gb"], id="a100-2x3g+1g.10gb"),
        pytest.param("dgx-a100", ["1g.10gb"] * 5, id="a100-5x1g.10gb"),
        pytest.param("dgx-a100", ["1g.5gb+me"] * 2, id="a100-2x1g.5gb+me"),
        pytest.param("a30x4", ["2g.12gb+me", "1g.6gb+me"], id="a30-2g+me-with-1g+me"),
        pytest.param("a30x4", ["4g.24gb", "1g.6gb"], id="a30-4g+1g"),
    ],
)
def test_an_invalid_layout_of_the_guide_fits_at_no_placement(
    mig_gpu: Callable[[str], tuple[Nvml, StateStore]], spec: str, names: list[str]
) -> None:
    nvml, _ = mig_gpu(spec)
    refusals: set[str | None] = set()
    assert not fits_somewhere(nvml, names, refusals)
    assert refusals == {"NVMLError_InsufficientResources"}
    assert nvml.gpu_instances(0) == []


@pytest.mark.parametrize(
    "layout",
    [
        pytest.param([("4g.24gb", 0)], id="4g"),
        pytest.param([("2g.12gb", 0), ("2g.12gb", 2)], id="2x2g"),
        pytest.param([("2g.12gb", 0), ("1g.6gb", 2), ("1g.6gb", 3)], id="2g+2x1g"),
        pytest.param([("1g.6gb", s) for s in range(4)], id="4x1g"),
        pytest.param([("2g.12gb+me", 0), ("1g.6gb", 2), ("1g.6gb", 3)], id="2g+me+2x1g"),
    ],
)
def test_each_a30_layout_of_the_guide_fits(
    mig_gpu: Callable[[str], tuple[Nvml, StateStore]], layout: list[tuple[str, int]]
) -> None:
    nvml, _ = mig_gpu("a30x4")
    for name, start in layout:
        create(nvml, name, start)
    got = sorted((gi.profile_name, gi.placement.start) for gi in nvml.gpu_instances(0))
    assert got == sorted(layout)
    assert all(nvml.remaining_capacity(0, p.id) == 0 for p in nvml.gi_profiles(0))


# --- driver-chosen placement ---------------------------------------------------------------


def test_creating_1g_1g_2g_3g_without_placements_fails_at_the_3g(
    mig_gpu: Callable[[str], tuple[Nvml, StateStore]],
) -> None:
    """The guide's ``nvidia-smi mig -cgi 19,19,14,9``: the driver's own starts for the small
    instances leave no 3g slot, although the multiset would fit (layout #7)."""
    nvml, _ = mig_gpu("dgx-a100")
    for profile_id in (19, 19, 14):
        nvml.create_gpu_instance(0, profile_id)
    before = nvml.gpu_instances(0)
    assert nvml.remaining_capacity(0, 9) == 0
    assert refused(lambda: nvml.create_gpu_instance(0, 9)) == "NVMLError_InsufficientResources"
    assert nvml.gpu_instances(0) == before


def test_creating_3g_1g_2g_1g_without_placements_succeeds(
    mig_gpu: Callable[[str], tuple[Nvml, StateStore]],
) -> None:
    nvml, _ = mig_gpu("dgx-a100")
    for profile_id in (9, 19, 14, 19):
        nvml.create_gpu_instance(0, profile_id)
    gis = nvml.gpu_instances(0)
    assert sorted(gi.profile_name for gi in gis) == ["1g.5gb", "1g.5gb", "2g.10gb", "3g.20gb"]
    assert not any(a.placement.overlaps(b.placement) for a in gis for b in gis if a is not b)


# --- compute instances ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "name", "start"),
    [
        pytest.param("dgx-a100", "3g.20gb", 4, id="a100-3g"),
        pytest.param("hgx-h100", "7g.80gb", 0, id="h100-7g"),
        pytest.param("h200", "2g.35gb", 2, id="h200-2g"),
        pytest.param("a30x4", "2g.12gb", 2, id="a30-2g"),
    ],
)
def test_a_full_compute_instance_spans_its_whole_gpu_instance(
    mig_gpu: Callable[[str], tuple[Nvml, StateStore]], spec: str, name: str, start: int
) -> None:
    nvml, _ = mig_gpu(spec)
    gi = create(nvml, name, start)
    gi_profile = profile(nvml, name)
    ci = nvml.create_compute_instance(0, gi.id)
    assert ci.gpu_instance_id == gi.id
    assert ci.name == name
    assert ci.placement == Placement(0, gi_profile.slice_count)
    assert ci.multiprocessors == gi_profile.multiprocessors
    assert nvml.gpu_instances(0)[0].compute_instances == (ci,)


@pytest.mark.parametrize(
    ("spec", "gi_name", "start", "ci_names"),
    [
        pytest.param(
            "dgx-a100", "3g.20gb", 4, ["1c.3g.20gb", "2c.3g.20gb", "3g.20gb"], id="a100-3g"
        ),
        pytest.param(
            "dgx-a100", "4g.20gb", 0, ["1c.4g.20gb", "2c.4g.20gb", "4g.20gb"], id="a100-4g-no-3c"
        ),
        pytest.param(
            "dgx-a100",
            "7g.40gb",
            0,
            ["1c.7g.40gb", "2c.7g.40gb", "3c.7g.40gb", "4c.7g.40gb", "7g.40gb"],
            id="a100-7g",
        ),
        pytest.param("dgx-a100", "2g.10gb", 0, ["1c.2g.10gb", "2g.10gb"], id="a100-2g"),
        pytest.param("dgx-a100", "1g.5gb", 0, ["1g.5gb"], id="a100-1g"),
        pytest.param("h200", "3g.71gb", 0, ["1c.3g.71gb", "2c.3g.71gb", "3g.71gb"], id="h200-3g"),
    ],
)
def test_compute_instance_profiles_are_named_after_their_gpu_instance(
    mig_gpu: Callable[[str], tuple[Nvml, StateStore]],
    spec: str,
    gi_name: str,
    start: int,
    ci_names: list[str],
) -> None:
    nvml, _ = mig_gpu(spec)
    gi = create(nvml, gi_name, start)
    assert [p.name for p in nvml.ci_profiles(0, gi.id)] == ci_names


def test_three_one_slice_compute_instances_fill_a_3g_instance(
    mig_gpu: Callable[[str], tuple[Nvml, StateStore]],
) -> None:
    nvml, _ = mig_gpu("dgx-a100")
    gi = create(nvml, "3g.20gb", 4)
    one_slice = next(p for p in nvml.ci_profiles(0, gi.id) if p.slice_count == 1)
    full = next(p for p in nvml.ci_profiles(0, gi.id) if p.slice_count == 3)
    assert one_slice.name == "1c.3g.20gb"
    assert one_slice.instance_count == 3

    cis = [nvml.create_compute_instance(0, gi.id, one_slice.id) for _ in range(3)]

    assert sorted(ci.placement.start for ci in cis) == [0, 1, 2]
    assert len({ci.id for ci in cis}) == 3
    assert [ci.name for ci in nvml.gpu_instances(0)[0].compute_instances] == ["1c.3g.20gb"] * 3
    before = nvml.gpu_instances(0)
    assert (
        refused(lambda: nvml.create_compute_instance(0, gi.id, one_slice.id))
        == "NVMLError_InsufficientResources"
    )
    assert (
        refused(lambda: nvml.create_compute_instance(0, gi.id, full.id))
        == "NVMLError_InsufficientResources"
    )
    assert nvml.gpu_instances(0) == before
    devices = nvml.mig_devices(0)
    assert [d.profile for d in devices] == ["1c.3g.20gb"] * 3
    assert {d.memory_total_bytes for d in devices} == {profile(nvml, "3g.20gb").memory_mib * MIB}


def test_destroying_a_gpu_instance_that_holds_a_compute_instance_fails_with_in_use(
    mig_gpu: Callable[[str], tuple[Nvml, StateStore]],
) -> None:
    nvml, _ = mig_gpu("dgx-a100")
    gi = create(nvml, "2g.10gb", 2)
    ci = nvml.create_compute_instance(0, gi.id)
    before = nvml.gpu_instances(0)

    assert refused(lambda: nvml.destroy_gpu_instance(0, gi.id)) == "NVMLError_InUse"
    assert nvml.gpu_instances(0) == before

    nvml.destroy_compute_instance(0, gi.id, ci.id)
    nvml.destroy_gpu_instance(0, gi.id)
    assert nvml.gpu_instances(0) == []


def test_destroying_a_compute_instance_that_runs_a_process_fails_with_in_use(
    mig_gpu: Callable[[str], tuple[Nvml, StateStore]],
) -> None:
    nvml, store = mig_gpu("hgx-h100")
    gi = create(nvml, "3g.40gb", 0)
    ci = nvml.create_compute_instance(0, gi.id)
    pid = faults.start_process(store, 0, gi=gi.id, ci=ci.id)
    before = nvml.gpu_instances(0)

    assert refused(lambda: nvml.destroy_compute_instance(0, gi.id, ci.id)) == "NVMLError_InUse"
    assert nvml.gpu_instances(0) == before

    faults.stop_processes(store, 0, pid)
    nvml.destroy_compute_instance(0, gi.id, ci.id)
    assert nvml.gpu_instances(0)[0].compute_instances == ()


# --- MIG devices ---------------------------------------------------------------------------


def test_mig_devices_have_mig_uuids_and_their_gpu_instance_geometry(
    mig_gpu: Callable[[str], tuple[Nvml, StateStore]],
) -> None:
    nvml, _ = mig_gpu("dgx-a100")
    for name, start in [("3g.20gb", 4), ("2g.10gb", 2), ("1g.5gb", 0), ("1g.5gb", 1)]:
        gi = create(nvml, name, start)
        nvml.create_compute_instance(0, gi.id)
    parent = nvml.gpu(0)
    gis = {gi.id: gi for gi in nvml.gpu_instances(0)}

    devices = nvml.mig_devices(0)

    assert [d.index for d in devices] == [0, 1, 2, 3]
    assert len({d.uuid for d in devices}) == 4
    for device in devices:
        gi = gis[device.gpu_instance_id]
        assert device.uuid.startswith("MIG-")
        assert device.parent_uuid == parent.uuid
        assert device.parent_index == 0
        assert device.profile == gi.profile_name
        assert device.gi_profile_id == gi.profile_id
        assert device.placement == gi.placement
        assert device.compute_instance_id == gi.compute_instances[0].id
        assert device.memory_total_bytes == profile(nvml, gi.profile_name).memory_mib * MIB
    assert [d.gpu_instance_id for d in devices] == [2, 4, 7, 8]  # in creation order


def test_a_destroyed_middle_instance_leaves_a_hole_that_the_next_instance_fills(
    mig_gpu: Callable[[str], tuple[Nvml, StateStore]],
) -> None:
    nvml, _ = mig_gpu("h200")
    made = []
    for start in (0, 1, 2):
        gi = create(nvml, "1g.18gb", start)
        made.append((gi, nvml.create_compute_instance(0, gi.id)))
    assert [d.index for d in nvml.mig_devices(0)] == [0, 1, 2]

    middle_gi, middle_ci = made[1]
    nvml.destroy_compute_instance(0, middle_gi.id, middle_ci.id)
    nvml.destroy_gpu_instance(0, middle_gi.id)

    after = nvml.mig_devices(0)
    assert [(d.index, d.gpu_instance_id) for d in after] == [(0, made[0][0].id), (2, made[2][0].id)]

    gi = create(nvml, "2g.35gb", 4)
    nvml.create_compute_instance(0, gi.id)
    refilled = nvml.mig_devices(0)
    assert [(d.index, d.gpu_instance_id) for d in refilled] == [
        (0, made[0][0].id),
        (1, gi.id),
        (2, made[2][0].id),
    ]


def test_a_recreated_instance_gets_a_new_mig_uuid(
    mig_gpu: Callable[[str], tuple[Nvml, StateStore]],
) -> None:
    nvml, _ = mig_gpu("dgx-a100")
    gi = create(nvml, "3g.20gb", 0)
    ci = nvml.create_compute_instance(0, gi.id)
    (first,) = nvml.mig_devices(0)
    assert nvml.mig_devices(0)[0].uuid == first.uuid, "a UUID is stable while the device lives"

    nvml.destroy_compute_instance(0, gi.id, ci.id)
    nvml.destroy_gpu_instance(0, gi.id)
    again = create(nvml, "3g.20gb", 0)
    nvml.create_compute_instance(0, again.id)
    (second,) = nvml.mig_devices(0)

    assert (second.gpu_instance_id, second.compute_instance_id, second.index) == (
        first.gpu_instance_id,
        first.compute_instance_id,
        first.index,
    )
    assert second.uuid != first.uuid
    assert second.uuid.startswith("MIG-")


# --- remaining capacity --------------------------------------------------------------------


@pytest.mark.parametrize("spec", MIG_PRESETS)
def test_an_empty_gpu_has_room_for_each_profile_up_to_its_instance_count(
    mig_gpu: Callable[[str], tuple[Nvml, StateStore]], spec: str
) -> None:
    nvml, _ = mig_gpu(spec)
    capacity = {p.name: nvml.remaining_capacity(0, p.id) for p in nvml.gi_profiles(0)}
    assert capacity == {p.name: p.instance_count for p in nvml.gi_profiles(0)}
    assert capacity[SMALLEST[spec]] == (4 if spec == "a30x4" else 7)


def test_remaining_capacity_falls_as_gpu_instances_are_created(
    mig_gpu: Callable[[str], tuple[Nvml, StateStore]],
) -> None:
    nvml, _ = mig_gpu("dgx-a100")

    def room() -> tuple[int, int, int]:
        return (
            nvml.remaining_capacity(0, 19),
            nvml.remaining_capacity(0, 14),
            nvml.remaining_capacity(0, 9),
        )

    assert room() == (7, 3, 2)
    create(nvml, "3g.20gb", 4)
    assert room() == (4, 2, 1)
    create(nvml, "2g.10gb", 0)
    assert room() == (2, 1, 0)
    create(nvml, "1g.5gb", 2)
    assert room() == (1, 0, 0)
    create(nvml, "1g.5gb", 3)
    assert room() == (0, 0, 0)


# --- a property: random creates and destroys -----------------------------------------------

A100_PROFILES = {  # id → (name, instance count, legal starts, memory slices), mig.md §1.4
    19: ("1g.5gb", 7, (0, 1, 2, 3, 4, 5, 6), 1),
    20: ("1g.5gb+me", 1, (0, 1, 2, 3, 4, 5, 6), 1),
    15: ("1g.10gb", 4, (0, 2, 4, 6), 2),
    14: ("2g.10gb", 3, (0, 2, 4), 2),
    9: ("3g.20gb", 2, (0, 4), 4),
    5: ("4g.20gb", 1, (0,), 4),
    0: ("7g.40gb", 1, (0,), 8),
}

_create = st.tuples(
    st.just("create"),
    st.sampled_from(sorted(A100_PROFILES)),
    st.one_of(st.none(), st.integers(min_value=0, max_value=7)),
)
_destroy = st.tuples(st.just("destroy"), st.integers(min_value=0, max_value=14), st.none())


T = TypeVar("T")


def attempt(call: Callable[[], T]) -> tuple[T | None, str | None]:
    """(result, None) when the call succeeds, (None, NVML error name) when it is refused."""
    try:
        return call(), None
    except GpuError as error:
        return None, error.nvml_name


def is_free(instances: list[GpuInstance], start: int, size: int) -> bool:
    return not any(gi.placement.overlaps(Placement(start, size)) for gi in instances)


@pytest.fixture
def a100_for_property(
    mig_gpu: Callable[[str], tuple[Nvml, StateStore]],
) -> tuple[Nvml, StateStore]:
    return mig_gpu("dgx-a100")


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(ops=st.lists(st.one_of(_create, _destroy), max_size=12))
def test_random_creates_and_destroys_keep_an_a100_consistent(
    a100_for_property: tuple[Nvml, StateStore], ops: list[tuple[str, int, int | None]]
) -> None:
    """Against the rules of mig.md §1.6: a create succeeds exactly when its start is legal, its
    range is free and its profile is under its count; ranges never overlap; a refused call
    changes nothing; GI ids are the heap ids."""
    nvml, store = a100_for_property
    faults.reset_gpu(store, 0)  # a fresh, empty MIG GPU for every example
    assert nvml.gpu_instances(0) == []

    for op, arg, start in ops:
        before = nvml.gpu_instances(0)
        if op == "create":
            name, cap, starts, size = A100_PROFILES[arg]
            under_cap = sum(gi.profile_id == arg for gi in before) < cap
            candidates = starts if start is None else (start,)
            if start is not None and start not in starts:
                expected_error: str | None = "NVMLError_InvalidArgument"
            elif not under_cap or not any(is_free(before, s, size) for s in candidates):
                expected_error = "NVMLError_InsufficientResources"
            else:
                expected_error = None
            made, error = attempt(partial(nvml.create_gpu_instance, 0, arg, start))
            assert error == expected_error, f"create {name} at {start}"
            if made is None:
                assert nvml.gpu_instances(0) == before
            else:
                assert made.placement.start in starts
                assert is_free(before, made.placement.start, size)
                assert made.placement.size == size
                assert made.id == 8 // size - 1 + made.placement.start // size
                assert nvml.gpu_instances(0) == sorted([*before, made], key=lambda gi: gi.id)
        else:
            exists = any(gi.id == arg for gi in before)
            _, error = attempt(partial(nvml.destroy_gpu_instance, 0, arg))
            assert error == (None if exists else "NVMLError_NotFound")
            assert nvml.gpu_instances(0) == [gi for gi in before if gi.id != arg]

        now = nvml.gpu_instances(0)
        assert not any(a.placement.overlaps(b.placement) for a in now for b in now if a is not b)
        for profile_id, (_, cap, _, _) in A100_PROFILES.items():
            assert sum(gi.profile_id == profile_id for gi in now) <= cap
