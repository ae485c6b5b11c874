"""The resource model on simulated nodes: MIG strategies none/single/mixed, single's start
failures, time-slicing and MPS replicas, renaming."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from gpu_operator.deviceplugin.config_v1 import load_config
from gpu_operator.deviceplugin.resources import ResourcePlan, build_resources, mig_resource_profile
from gpu_operator.deviceplugin.settings import resolve_settings
from gpu_operator.errors import ConfigError
from gpu_operator.gpu import Nvml

pytestmark = pytest.mark.timeout(20)


def plan_for(nvml: Nvml, config: str = "", **flags: str) -> ResourcePlan:
    gpus = nvml.gpus()
    migs = {g.index: nvml.mig_devices(g.index) for g in gpus}
    return build_resources(gpus, migs, resolve_settings(flags, {}, load_config(config)))


def counts(plan: ResourcePlan) -> dict[str, int]:
    return {r.name: len(r.devices) for r in plan.resources}


def test_strategy_none_advertises_every_gpu_by_uuid_with_its_numa_node(
    node: Callable[..., Nvml],
) -> None:
    nvml = node("dgx-a100")
    plan = plan_for(nvml)
    gpu = plan.by_name("nvidia.com/gpu")
    assert [d.id for d in gpu.devices] == [g.uuid for g in nvml.gpus()]
    assert [d.numa_node for d in gpu.devices] == [g.numa_node for g in nvml.gpus()]
    assert [d.index for d in gpu.devices] == [str(i) for i in range(8)]
    assert gpu.socket_name == "nvidia-gpu.sock"


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        pytest.param("none", {"nvidia.com/gpu": 8}, id="none counts MIG-enabled GPUs as GPUs"),
        pytest.param(
            "mixed",
            {"nvidia.com/mig-3g.20gb": 8, "nvidia.com/mig-2g.10gb": 8, "nvidia.com/mig-1g.5gb": 16},
            id="mixed: one resource per profile",
        ),
    ],
)
def test_all_balanced_dgx_a100_per_strategy(
    node: Callable[..., Nvml], strategy: str, expected: dict[str, int]
) -> None:
    plan = plan_for(node("dgx-a100", "all-balanced"), mig_strategy=strategy)
    assert counts(plan) == expected


def test_mixed_strategy_ids_are_mig_uuids_with_parent_index_and_instance_ids(
    node: Callable[..., Nvml],
) -> None:
    nvml = node("dgx-a100", "all-balanced")
    plan = plan_for(nvml, mig_strategy="mixed")
    by_uuid = {m.uuid: m for g in nvml.gpus() for m in nvml.mig_devices(g.index)}
    for resource in plan.resources:
        assert resource.socket_name == f"nvidia-{resource.short_name}.sock"
        for device in resource.devices:
            mig = by_uuid[device.id]
            assert device.id.startswith("MIG-")
            assert device.index == f"{mig.parent_index}:{mig.index}"
            assert (device.gpu_instance_id, device.compute_instance_id) == (
                mig.gpu_instance_id,
                mig.compute_instance_id,
            )
            assert resource.name == f"nvidia.com/mig-{mig.profile}"


def test_single_strategy_advertises_uniform_mig_devices_as_gpus(
    node: Callable[..., Nvml],
) -> None:
    plan = plan_for(node("dgx-a100", "all-1g.5gb"), mig_strategy="single")
    assert counts(plan) == {"nvidia.com/gpu": 56}
    assert all(d.id.startswith("MIG-") for d in plan.by_name("nvidia.com/gpu").devices)


def test_single_strategy_without_mig_behaves_like_none(node: Callable[..., Nvml]) -> None:
    assert counts(plan_for(node("a30x4"), mig_strategy="single")) == {"nvidia.com/gpu": 4}


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        pytest.param(
            "all-balanced", "more than one MIG device type present on node", id="mixed profiles"
        ),
        pytest.param(
            "half-balanced",
            "all devices on the node must be configured with the same migEnabled value",
            id="MIG and non-MIG GPUs",
        ),
        pytest.param(
            "all-enabled",
            "device 0 has no MIG devices configured",
            id="MIG enabled without devices",
        ),
    ],
)
def test_single_strategy_refuses_to_start_on_a_node_it_cannot_describe(
    node: Callable[..., Nvml], layout: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        plan_for(node("dgx-a100", layout), mig_strategy="single")


def test_mixed_strategy_on_a_mixed_node_keeps_full_gpus_as_gpus(
    node: Callable[..., Nvml],
) -> None:
    plan = plan_for(node("dgx-a100", "half-balanced"), mig_strategy="mixed")
    assert counts(plan) == {
        "nvidia.com/mig-3g.20gb": 2,
        "nvidia.com/mig-2g.10gb": 2,
        "nvidia.com/mig-1g.5gb": 4,
        "nvidia.com/gpu": 6,
    }


def test_mixed_strategy_with_a_mig_gpu_without_devices_only_warns(
    node: Callable[..., Nvml],
) -> None:
    plan = plan_for(node("dgx-a100", "all-enabled"), mig_strategy="mixed")
    assert plan.resources == ()
    assert len(plan.warnings) == 8
    assert "GPU 0 has MIG enabled but no MIG devices" in plan.warnings[0]


TIME_SLICING = """\
sharing:
  timeSlicing:
    resources:
    - name: nvidia.com/gpu
      replicas: 4
"""


def test_time_slicing_replicates_each_gpu_as_uuid_colon_colon_n(
    node: Callable[..., Nvml],
) -> None:
    nvml = node("dgx-a100")
    plan = plan_for(nvml, TIME_SLICING)
    gpu = plan.by_name("nvidia.com/gpu")
    assert len(gpu.devices) == 32
    assert [d.id for d in gpu.devices[:4]] == [f"{nvml.gpus()[0].uuid}::{n}" for n in range(4)]
    assert Counter(d.uuid for d in gpu.devices) == {g.uuid: 4 for g in nvml.gpus()}
    assert (gpu.sharing, gpu.replicas, gpu.fail_requests_greater_than_one) == (
        "time-slicing",
        4,
        False,
    )


def test_rename_by_default_adds_dot_shared(node: Callable[..., Nvml]) -> None:
    config = TIME_SLICING.replace("timeSlicing:\n", "timeSlicing:\n    renameByDefault: true\n")
    assert counts(plan_for(node("t4"), config)) == {"nvidia.com/gpu.shared": 4}


def test_time_slicing_a_mig_resource_under_mixed(node: Callable[..., Nvml]) -> None:
    config = TIME_SLICING.replace("nvidia.com/gpu", "mig-1g.5gb").replace("4", "2")
    plan = plan_for(node("dgx-a100", "all-balanced"), config, mig_strategy="mixed")
    assert counts(plan)["nvidia.com/mig-1g.5gb"] == 32
    assert counts(plan)["nvidia.com/mig-3g.20gb"] == 8


def test_mps_replicas_fail_requests_greater_than_one_by_default(
    node: Callable[..., Nvml],
) -> None:
    config = TIME_SLICING.replace("timeSlicing", "mps")
    gpu = plan_for(node("hgx-h100"), config, mps_root="/run/nvidia/mps").by_name("nvidia.com/gpu")
    assert (gpu.sharing, len(gpu.devices), gpu.fail_requests_greater_than_one) == ("mps", 32, True)


def test_the_resources_section_is_ignored_as_upstream_with_a_notice_naming_its_line(
    node: Callable[..., Nvml],
) -> None:
    config = (
        "version: v1\n"
        "resources:\n"
        "  gpus: [{pattern: 'A100-SXM4-40GB', name: a100}]\n"
        "  mig: [{pattern: '1g.5gb', name: small}, {pattern: '*', name: big}]\n"
    )
    plan = plan_for(node("dgx-a100", "half-balanced"), config, mig_strategy="mixed")
    assert counts(plan) == {
        "nvidia.com/gpu": 6,
        "nvidia.com/mig-1g.5gb": 4,
        "nvidia.com/mig-2g.10gb": 2,
        "nvidia.com/mig-3g.20gb": 2,
    }
    assert load_config(config, source="plugin.yaml").ignored == (
        "plugin.yaml:2: resources: customizing resource names is not supported (as upstream's "
        "device plugin and GFD): the section is ignored, devices keep their default names",
    )


MERGING = """\
version: v1
flags:
  migStrategy: mixed
resources:
  gpus:
  - pattern: "*"
    name: shared
  mig:
  - pattern: "*"
    name: shared
"""


def test_gpus_and_mig_renamed_to_one_name_merge_nothing_and_the_notice_names_both_entries(
    node: Callable[..., Nvml],
) -> None:
    nvml = node("dgx-a100", "half-balanced")
    plan = plan_for(nvml, MERGING, mig_strategy="mixed")
    assert "nvidia.com/shared" not in counts(plan)
    assert counts(plan)["nvidia.com/gpu"] == 6
    (notice,) = load_config(MERGING, source="plugin.yaml").ignored
    assert notice.startswith("plugin.yaml:4: resources: customizing resource names")
    assert notice.endswith(
        "note resources.gpus[0] (plugin.yaml:6) and resources.mig[0] (plugin.yaml:9) both "
        "name nvidia.com/shared, which would put whole GPUs and MIG devices in one resource"
    )


@pytest.mark.parametrize(
    ("sharing", "advertised"),
    [
        pytest.param("", "nvidia.com/gpu", id="rename cleared"),
        pytest.param("    renameByDefault: true\n", "nvidia.com/gpu.shared", id="renameByDefault"),
    ],
)
def test_a_sharing_rename_is_ignored_as_upstream_with_a_notice_naming_its_line(
    node: Callable[..., Nvml], sharing: str, advertised: str
) -> None:
    config = (
        "version: v1\nsharing:\n  timeSlicing:\n"
        + sharing
        + "    resources:\n    - name: nvidia.com/gpu\n      rename: gpu-ts\n"
        "      replicas: 2\n      devices: [0]\n"
    )
    assert counts(plan_for(node("a30x4"), config)) == {advertised: 8}
    line = 7 if sharing else 6
    assert load_config(config, source="p.yaml").ignored == (
        f"p.yaml:{line}: sharing.timeSlicing.resources[0].rename: renaming a shared resource "
        f"is not supported (as upstream's device plugin): ignored, it is advertised as "
        f"{advertised}",
        f"p.yaml:{line + 2}: sharing.timeSlicing.resources[0].devices: sharing only some "
        "devices is not supported (as upstream's device plugin): ignored, every device is shared",
    )


@pytest.mark.parametrize(
    ("profile", "resource"),
    [("3g.20gb", "3g.20gb"), ("1g.10gb+me", "1g.10gb.me"), ("1c.3g.20gb", None)],
)
def test_mig_profile_names_become_resource_names_as_upstream(
    profile: str, resource: str | None
) -> None:
    assert mig_resource_profile(profile) == resource
