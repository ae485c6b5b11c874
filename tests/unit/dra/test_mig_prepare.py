"""Preparing and unpreparing dynamic MIG devices (``dra.mig_prepare``) on simulated H100, A100
and H200 cards through the NVML facade: exactly the allocated GI and its full CI are created
(the simulator then lists them, with the returned MIG UUID), unprepare deletes them, both are
idempotent, and prepare refuses — changing nothing — with MIG mode off or when something the
driver did not create holds the device's slices."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gpu_operator.dra.mig_devices import slice_content
from gpu_operator.dra.mig_prepare import (
    MigPrepareError,
    PreparedMig,
    foreign_instances,
    mig_gpu,
    prepare,
    unprepare,
)
from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.gpu.fake import faults
from gpu_operator.gpu.fake.state import StateStore

OpenSim = Callable[..., Nvml]


def mig_on(nvml: Nvml, tmp_path: Path, spec: str, index: int = 0) -> None:
    mode, _ = nvml.set_mig_mode(index, True)
    if mode.change_pending:  # Ampere: the mode takes effect at the GPU's reset
        store = StateStore(HardwareSettings(sim=spec, sim_root=tmp_path / "sim").state_path())
        faults.reset_gpu(store, index)
    now = nvml.mig_mode(index)
    assert now is not None
    assert now.enabled


def layout(nvml: Nvml, index: int = 0) -> list[tuple[str, int, int]]:
    """(profile, start, compute instances) of every GPU instance the card lists."""
    return sorted(
        (gi.profile_name, gi.placement.start, len(gi.compute_instances))
        for gi in nvml.gpu_instances(index)
    )


@pytest.mark.parametrize(
    ("spec", "device", "profile", "start"),
    [
        ("hgx-h100", "gpu-0-mig-3g40gb-9-4", "3g.40gb", 4),
        ("hgx-h100", "gpu-0-mig-1g10gb-me-20-3", "1g.10gb+me", 3),
        ("dgx-a100", "gpu-0-mig-2g10gb-14-2", "2g.10gb", 2),
        ("h200", "gpu-0-mig-1g35gb-15-6", "1g.35gb", 6),
    ],
)
def test_prepare_creates_exactly_the_allocated_instance_and_unprepare_deletes_it(
    open_sim: OpenSim, tmp_path: Path, spec: str, device: str, profile: str, start: int
) -> None:
    nvml = open_sim(spec)
    mig_on(nvml, tmp_path, spec)
    prepared = prepare(nvml, device)
    assert layout(nvml) == [(profile, start, 1)]
    (mig,) = nvml.mig_devices(0)
    assert prepared.uuid == mig.uuid
    assert mig.uuid.startswith("MIG-")
    assert mig.profile == profile
    assert (mig.placement.start, mig.gpu_instance_id) == (start, prepared.gpu_instance_id)
    assert prepared.parent_uuid == nvml.gpu(0).uuid
    assert (prepared.profile, prepared.start, prepared.device) == (profile, start, device)
    assert unprepare(nvml, prepared) is True
    assert layout(nvml) == []
    assert nvml.mig_devices(0) == []
    assert unprepare(nvml, prepared) is False  # already gone: nothing to do


def test_h100_3g40gb_on_the_second_gpu_by_its_minor_number(
    open_sim: OpenSim, tmp_path: Path
) -> None:
    nvml = open_sim("hgx-h100")
    mig_on(nvml, tmp_path, "hgx-h100", 1)
    minor = nvml.gpu(1).minor_number
    prepared = prepare(nvml, f"gpu-{minor}-mig-3g40gb-9-0")
    assert prepared.parent_index == 1
    assert layout(nvml, 1) == [("3g.40gb", 0, 1)]
    assert layout(nvml, 0) == []


def test_prepare_is_idempotent_for_what_the_driver_owns(open_sim: OpenSim, tmp_path: Path) -> None:
    nvml = open_sim("hgx-h100")
    mig_on(nvml, tmp_path, "hgx-h100")
    first = prepare(nvml, "gpu-0-mig-2g20gb-14-4")
    again = prepare(nvml, "gpu-0-mig-2g20gb-14-4", owned={first.uuid})
    assert again == first
    assert layout(nvml) == [("2g.20gb", 4, 1)]
    # The record survives the driver's checkpoint (a restart) unchanged.
    assert PreparedMig.from_dict(first.to_dict()) == first


def test_an_instance_the_driver_did_not_create_is_never_taken_over_or_moved(
    open_sim: OpenSim, tmp_path: Path
) -> None:
    nvml = open_sim("hgx-h100")
    mig_on(nvml, tmp_path, "hgx-h100")
    ids = {p.name: p.id for p in nvml.gi_profiles(0)}
    theirs = nvml.create_gpu_instance(0, ids["1g.10gb"], 5)
    before = layout(nvml)
    with pytest.raises(MigPrepareError) as error:
        prepare(nvml, "gpu-0-mig-3g40gb-9-4")
    message = str(error.value)
    assert "gpu-0-mig-3g40gb-9-4" in message
    assert f"GPU instance {theirs.id} (1g.10gb at slice 5)" in message
    assert "did not create" in message
    assert layout(nvml) == before
    # The exact same placement, made by someone else, is not ours either.
    nvml.create_compute_instance(0, nvml.create_gpu_instance(0, ids["2g.20gb"], 0).id)
    with pytest.raises(MigPrepareError, match="did not create"):
        prepare(nvml, "gpu-0-mig-2g20gb-14-0")
    # Elsewhere on the GPU the driver still works.
    assert prepare(nvml, "gpu-0-mig-1g10gb-19-2").start == 2


def test_mig_mode_off_is_refused_and_never_toggled(open_sim: OpenSim) -> None:
    nvml = open_sim("hgx-h100")
    with pytest.raises(MigPrepareError) as error:
        prepare(nvml, "gpu-0-mig-3g40gb-9-0")
    assert "MIG mode is disabled on GPU 0" in str(error.value)
    assert "never changes it" in str(error.value)
    mode = nvml.mig_mode(0)
    assert mode is not None
    assert not mode.enabled
    assert not mode.change_pending


def test_a_pending_mode_change_is_refused_too(open_sim: OpenSim) -> None:
    nvml = open_sim("dgx-a100")
    mode, _ = nvml.set_mig_mode(0, True)
    assert mode.change_pending
    with pytest.raises(MigPrepareError, match="change to enabled pending"):
        prepare(nvml, "gpu-0-mig-1g5gb-19-0")


@pytest.mark.parametrize(
    ("device", "complaint"),
    [
        ("gpu-0", "is not a dynamic MIG device name"),
        ("gpu-0-mig-3g40gb-9-2", "3g.40gb cannot start at memory slice 2 (legal: 0, 4)"),
        ("gpu-0-mig-5g50gb-42-0", "GPU 0 has no GPU-instance profile 42"),
        ("gpu-77-mig-1g10gb-19-0", "no GPU with minor number 77"),
    ],
)
def test_bad_device_names_are_refused_with_the_reason(
    open_sim: OpenSim, tmp_path: Path, device: str, complaint: str
) -> None:
    nvml = open_sim("hgx-h100")
    mig_on(nvml, tmp_path, "hgx-h100")
    with pytest.raises(MigPrepareError) as error:
        prepare(nvml, device)
    assert complaint in str(error.value)
    assert layout(nvml) == []


def test_unprepare_refuses_while_a_process_runs_and_keeps_the_device(
    open_sim: OpenSim, tmp_path: Path
) -> None:
    nvml = open_sim("h200")
    mig_on(nvml, tmp_path, "h200")
    prepared = prepare(nvml, "gpu-0-mig-3g71gb-9-0")
    store = StateStore(HardwareSettings(sim="h200", sim_root=tmp_path / "sim").state_path())
    pid = faults.start_process(store, 0, gi=prepared.gpu_instance_id)
    with pytest.raises(MigPrepareError, match=prepared.uuid):
        unprepare(nvml, prepared)
    assert layout(nvml) == [("3g.71gb", 0, 1)]
    faults.stop_processes(store, 0, pid)
    assert unprepare(nvml, prepared) is True
    assert layout(nvml) == []


def test_what_is_published_leaves_out_instances_that_are_not_ours(
    open_sim: OpenSim, tmp_path: Path
) -> None:
    nvml = open_sim("hgx-h100")
    mig_on(nvml, tmp_path, "hgx-h100")
    ids = {p.name: p.id for p in nvml.gi_profiles(0)}
    ours = prepare(nvml, "gpu-0-mig-1g10gb-19-0")
    nvml.create_gpu_instance(0, ids["3g.40gb"], 4)  # someone else's
    gpu = mig_gpu(nvml, 0, attributes={"productName": {"string": "x"}}, owned={ours.uuid})
    assert [str(p) for p in gpu.foreign] == ["3g.40gb@4"]
    assert gpu.minor == nvml.gpu(0).minor_number
    names = {d["name"] for d in slice_content(gpu)["devices"]}
    assert "gpu-0-mig-1g10gb-19-0" in names  # ours: the scheduler sees it allocated
    assert "gpu-0-mig-1g10gb-19-4" not in names
    assert "gpu-0-mig-2g20gb-14-2" in names
    # Without the checkpoint, our instance counts as foreign too.
    assert len(mig_gpu(nvml, 0).foreign) == 2
    assert foreign_instances(open_sim("h200"), 0) == ()  # MIG off: none
