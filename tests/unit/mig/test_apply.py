"""``apply`` and ``assert`` on simulated nodes through the NVML facade: the done-when layouts,
idempotence, refusals before any change, and faults mid-apply that leave a clean, named state."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from gpu_operator.errors import ConfigError
from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.gpu.fake import faults
from gpu_operator.gpu.fake.state import StateStore
from gpu_operator.mig.apply import ApplyError, GpuInUse, Step, apply_config, apply_plan
from gpu_operator.mig.defaults import default_spec
from gpu_operator.mig.observe import observe
from gpu_operator.mig.placement import PlacementError
from gpu_operator.mig.plan import plan
from gpu_operator.mig.spec_v1 import MigConfigEntry, load_spec

OpenSim = Callable[..., Nvml]


def store_for(tmp_path: Path, spec: str) -> StateStore:
    return StateStore(HardwareSettings(sim=spec, sim_root=tmp_path / "sim").state_path())


def entries(mig_devices: str, devices: str = "all", enabled: str = "true") -> list[MigConfigEntry]:
    text = (
        "version: v1\nmig-configs:\n  c:\n    - devices: " + devices + "\n"
        f"      mig-enabled: {enabled}\n      mig-devices: {mig_devices}\n"
    )
    return load_spec(text, "test.yaml").select("c")


def layout(nvml: Nvml, index: int) -> list[tuple[str, int]]:
    return sorted((gi.profile_name, gi.placement.start) for gi in nvml.gpu_instances(index))


def balanced() -> list[MigConfigEntry]:
    return default_spec().select("all-balanced")


def test_all_balanced_on_dgx_a100_gives_every_gpu_the_balanced_layout_and_asserts(
    open_sim: OpenSim,
) -> None:
    nvml = open_sim("dgx-a100")
    steps: list[Step] = []
    apply_config(nvml, balanced(), progress=steps.append)

    for index in range(8):
        assert layout(nvml, index) == [("1g.5gb", 0), ("1g.5gb", 1), ("2g.10gb", 2), ("3g.20gb", 4)]
        assert Counter(d.profile for d in nvml.mig_devices(index)) == {
            "1g.5gb": 2,
            "2g.10gb": 1,
            "3g.20gb": 1,
        }
    assert [s.kind for s in steps].count("reset") == 1, "Ampere: one reset for all GPUs"
    assert plan(balanced(), observe(nvml)).empty


def test_a_second_apply_changes_nothing_and_keeps_every_mig_device(open_sim: OpenSim) -> None:
    nvml = open_sim("dgx-a100")
    apply_config(nvml, balanced())
    before = [d.uuid for i in range(8) for d in nvml.mig_devices(i)]

    steps: list[Step] = []
    apply_config(nvml, balanced(), progress=steps.append)

    assert {s.kind for s in steps} == {"unchanged"}
    assert [d.uuid for i in range(8) for d in nvml.mig_devices(i)] == before


def test_all_balanced_on_h200_toggles_mig_without_a_reset(open_sim: OpenSim) -> None:
    nvml = open_sim("h200")
    steps: list[Step] = []
    apply_config(nvml, balanced(), progress=steps.append)
    assert Counter(d.profile for d in nvml.mig_devices(0)) == {
        "1g.18gb": 2,
        "2g.35gb": 1,
        "3g.71gb": 1,
    }
    assert "reset" not in [s.kind for s in steps]


def test_an_impossible_layout_is_refused_before_anything_changes(
    open_sim: OpenSim, tmp_path: Path
) -> None:
    nvml = open_sim("dgx-a100")
    state_before = store_for(tmp_path, "dgx-a100").path.read_text()
    with pytest.raises(PlacementError) as info:
        apply_config(nvml, entries('{"3g.20gb": 2, "1g.5gb": 1}', devices="[0]"))
    assert "GPU 0" in str(info.value)
    assert sorted(info.value.conflict) == ["1g.5gb", "3g.20gb", "3g.20gb"]
    assert store_for(tmp_path, "dgx-a100").path.read_text() == state_before


def test_a_profile_the_gpu_lacks_is_refused_naming_the_gpu(open_sim: OpenSim) -> None:
    nvml = open_sim("h200")
    with pytest.raises(ConfigError, match=r"GPU 0 \(NVIDIA H200\): profile 1g.5gb does not exist"):
        apply_config(nvml, entries('{"1g.5gb": 1}'))
    assert not nvml.gpu(0).mig_mode.enabled  # type: ignore[union-attr]


def test_changing_layouts_on_hopper_rebuilds_only_what_differs(open_sim: OpenSim) -> None:
    nvml = open_sim("hgx-h100")
    apply_config(nvml, balanced())
    apply_config(nvml, entries('{"1g.10gb": 7}', devices="[3]"))
    assert layout(nvml, 3) == [("1g.10gb", s) for s in range(7)]
    assert layout(nvml, 2) == [("1g.10gb", 0), ("1g.10gb", 1), ("2g.20gb", 2), ("3g.40gb", 4)]


def test_all_disabled_after_a_layout_destroys_instances_and_turns_mig_off(
    open_sim: OpenSim,
) -> None:
    nvml = open_sim("a30x4")
    apply_config(nvml, balanced())
    apply_config(nvml, default_spec().select("all-disabled"))
    for gpu in nvml.gpus():
        assert gpu.mig_mode is not None
        assert not gpu.mig_mode.enabled
        assert not gpu.mig_mode.change_pending


def test_compute_instance_profiles_are_packed_into_shared_gpu_instances(
    open_sim: OpenSim,
) -> None:
    nvml = open_sim("h200")
    wanted = entries('{"1c.3g.71gb": 4, "2c.3g.71gb": 1}')
    apply_config(nvml, wanted)
    assert layout(nvml, 0) == [("3g.71gb", 0), ("3g.71gb", 4)], "2c+1c in one GI, 3×1c in one"
    assert Counter(d.profile for d in nvml.mig_devices(0)) == {"1c.3g.71gb": 4, "2c.3g.71gb": 1}
    assert plan(wanted, observe(nvml)).empty


def test_mode_only_changes_modes_and_creates_no_instances(open_sim: OpenSim) -> None:
    nvml = open_sim("dgx-a100")
    apply_config(nvml, balanced(), mode_only=True)
    assert all(g.mig_mode is not None and g.mig_mode.enabled for g in nvml.gpus())
    assert all(nvml.gpu_instances(i) == [] for i in range(8))


def test_skip_reset_on_ampere_leaves_the_mode_pending_and_refuses_the_layout(
    open_sim: OpenSim,
) -> None:
    nvml = open_sim("a30x4")
    with pytest.raises(ApplyError, match="MIG mode disabled"):
        apply_config(nvml, balanced(), skip_reset=True)
    mode = nvml.mig_mode(0)
    assert mode is not None
    assert mode.change_pending


def assert_every_gpu_still_without_mig(nvml: Nvml) -> None:
    for gpu in nvml.gpus():
        assert gpu.mig_mode is not None
        assert not gpu.mig_mode.change_pending, f"GPU {gpu.index} left pending"
        assert not gpu.mig_mode.enabled


def test_a_process_on_a_gpu_whose_mode_must_change_is_refused_before_any_change(
    open_sim: OpenSim, tmp_path: Path
) -> None:
    nvml = open_sim("a30x4")
    pid = faults.start_process(store_for(tmp_path, "a30x4"), 2)
    with pytest.raises(GpuInUse) as info:
        apply_config(nvml, balanced())
    assert str(info.value).startswith(
        f"GPU 2 (NVIDIA A30) is in use by pid {pid} on {nvml.gpu(2).uuid}. Nothing was changed"
    )
    assert_every_gpu_still_without_mig(nvml)


def test_a_process_that_appears_after_the_check_fails_the_mode_change_and_sets_pending_back(
    open_sim: OpenSim, tmp_path: Path
) -> None:
    nvml = open_sim("a30x4")
    the_plan = plan(balanced(), observe(nvml))  # planned while idle, as a racing job would see
    faults.start_process(store_for(tmp_path, "a30x4"), 2)
    with pytest.raises(ApplyError) as info:
        apply_plan(nvml, the_plan)
    assert "changing the MIG mode failed" in str(info.value)
    assert_every_gpu_still_without_mig(nvml)


def balanced_h200(open_sim: OpenSim, tmp_path: Path) -> tuple[Nvml, StateStore]:
    nvml = open_sim("h200")
    apply_config(nvml, balanced())
    return nvml, store_for(tmp_path, "h200")


def test_a_process_on_a_mig_device_that_must_go_is_refused_naming_the_device_and_its_pod(
    open_sim: OpenSim, tmp_path: Path
) -> None:
    nvml, store = balanced_h200(open_sim, tmp_path)
    before = [layout(nvml, i) for i in range(nvml.device_count())]
    device = nvml.mig_devices(0)[0]
    pid = faults.start_process(store, 0, gi=device.gpu_instance_id)
    asked: list[str] = []

    def owners(uuids: Iterable[str]) -> dict[str, str]:
        asked.extend(uuids)
        return {device.uuid: "pod default/train"}

    with pytest.raises(GpuInUse) as info:
        apply_config(nvml, entries('{"7g.141gb": 1}'), owners=owners)
    assert str(info.value).startswith(
        f"GPU 0 (NVIDIA H200) is in use by pid {pid} (pod default/train) on "
        f"MIG {device.profile} {device.uuid}. Nothing was changed"
    )
    assert asked == [device.uuid]
    assert [layout(nvml, i) for i in range(nvml.device_count())] == before


def test_a_process_that_appears_after_the_check_fails_clearing_naming_the_gpu_and_the_step(
    open_sim: OpenSim, tmp_path: Path
) -> None:
    nvml, store = balanced_h200(open_sim, tmp_path)
    the_plan = plan(entries('{"7g.141gb": 1}'), observe(nvml))
    faults.start_process(store, 0, gi=nvml.gpu_instances(0)[0].id)
    with pytest.raises(ApplyError) as info:
        apply_plan(nvml, the_plan)
    message = str(info.value)
    assert message.startswith("GPU 0 (NVIDIA H200): clearing failed")
    assert "NVMLError_InUse" in message


def test_insufficient_resources_mid_apply_leaves_the_gpu_without_instances(
    open_sim: OpenSim,
) -> None:
    nvml = open_sim("h200")
    apply_config(nvml, entries('{"7g.141gb": 1}'))
    one_g = next(p for p in nvml.gi_profiles(0) if p.name == "1g.18gb")

    def intruder(step: Step) -> None:
        if step.kind == "clear":  # someone else grabs slice 4 between our clear and create
            nvml.create_gpu_instance(0, one_g.id, 4)

    with pytest.raises(ApplyError) as info:
        apply_config(nvml, balanced(), progress=intruder)
    assert "creating 3g.71gb@4 failed" in str(info.value)
    assert "InsufficientResources" in str(info.value)
    assert "left with no MIG instances" in str(info.value)
    assert nvml.gpu_instances(0) == []


def test_a_gpu_lost_mid_apply_is_reported_and_the_other_gpus_stay_untouched(
    open_sim: OpenSim, tmp_path: Path
) -> None:
    nvml = open_sim("hgx-h100")
    store = store_for(tmp_path, "hgx-h100")
    apply_config(nvml, entries('{"7g.80gb": 1}'))

    def fall_off(step: Step) -> None:
        if step.kind == "clear" and step.gpu == 1:
            faults.lose_gpu(store, 1)

    with pytest.raises(ApplyError) as info:
        apply_config(nvml, balanced(), progress=fall_off)
    assert str(info.value).startswith("GPU 1 (NVIDIA H100 80GB HBM3): creating")
    assert "clearing the GPU failed too" in str(info.value)
    assert layout(nvml, 0) == [("1g.10gb", 0), ("1g.10gb", 1), ("2g.20gb", 2), ("3g.40gb", 4)]
    assert layout(nvml, 2) == [("7g.80gb", 0)]
