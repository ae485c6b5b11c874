"""Node labelling (reference §3.2): gpu.present, the deploy labels per workload config, never
overwriting a non-empty value, operands=false, MIG capability and the default mig.config."""

from __future__ import annotations

import pytest

from gpu_operator.operator.labeling import CONTAINER_STATES, apply_patch, mig_capable, plan_node
from gpu_operator.operator.policy_v1 import ClusterPolicySpec, parse_spec

GPU = {"feature.node.kubernetes.io/pci-10de.present": "true"}
SPEC = ClusterPolicySpec()


def settled(labels: dict[str, str], spec: ClusterPolicySpec = SPEC) -> dict[str, str]:
    return apply_patch(labels, plan_node(labels, {}, spec).labels)


def test_a_new_gpu_node_gets_gpu_present_and_every_container_deploy_label() -> None:
    labels = settled(dict(GPU))
    assert labels["nvidia.com/gpu.present"] == "true"
    for state in CONTAINER_STATES:
        assert labels[f"nvidia.com/gpu.deploy.{state}"] == "true"
    assert "nvidia.com/gpu.deploy.mig-manager" not in labels


def test_a_labelled_node_needs_no_write() -> None:
    assert not plan_node(settled(dict(GPU)), {}, SPEC)


@pytest.mark.parametrize(
    "value",
    [
        "false",
        "paused-for-mig-change",
        "pre-installed",
        "paused-for-mig-change_paused-for-driver-upgrade",
    ],
)
def test_a_non_empty_deploy_label_is_never_overwritten(value: str) -> None:
    labels = {**GPU, "nvidia.com/gpu.deploy.driver": value}
    assert "nvidia.com/gpu.deploy.driver" not in plan_node(labels, {}, SPEC).labels


def test_an_empty_deploy_label_counts_as_absent() -> None:
    assert (
        settled({**GPU, "nvidia.com/gpu.deploy.driver": ""})["nvidia.com/gpu.deploy.driver"]
        == "true"
    )


def test_operands_false_removes_every_deploy_label_and_true_restores_them() -> None:
    labelled = settled(dict(GPU))
    off = settled({**labelled, "nvidia.com/gpu.deploy.operands": "false"})
    assert [k for k in off if k.startswith("nvidia.com/gpu.deploy.")] == [
        "nvidia.com/gpu.deploy.operands"
    ]
    on = settled({**off, "nvidia.com/gpu.deploy.operands": "true"})
    assert on["nvidia.com/gpu.deploy.device-plugin"] == "true"


def test_a_node_that_loses_its_gpu_gets_present_false_and_no_deploy_labels() -> None:
    labelled = settled(dict(GPU))
    gone = settled({k: v for k, v in labelled.items() if not k.startswith("feature.")})
    assert gone["nvidia.com/gpu.present"] == "false"
    assert not [k for k in gone if k.startswith("nvidia.com/gpu.deploy.")]


def test_a_cpu_node_is_left_alone() -> None:
    assert not plan_node({"kubernetes.io/hostname": "cpu-1"}, {}, SPEC)


@pytest.mark.parametrize(
    ("labels", "capable"),
    [
        pytest.param({"nvidia.com/mig.capable": "true"}, True, id="gfd says capable"),
        pytest.param(
            {"nvidia.com/mig.capable": "false", "nvidia.com/gpu.product": "A100"},
            False,
            id="gfd's false wins",
        ),
        pytest.param(
            {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB"}, True, id="an A100 product name"
        ),
        pytest.param(
            {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}, True, id="an H100 product name"
        ),
        pytest.param({"nvidia.com/gpu.product": "Tesla-T4"}, False, id="a T4 cannot"),
        pytest.param(
            {"nvidia.com/gpu.product": "A100", "nvidia.com/vgpu.host-driver-version": "1"},
            False,
            id="vGPU never",
        ),
    ],
)
def test_mig_capability_comes_from_gfd_then_the_product_name(
    labels: dict[str, str], capable: bool
) -> None:
    assert mig_capable(labels) is capable


def test_a_mig_capable_node_gets_the_mig_manager_label_and_all_disabled_seeded() -> None:
    labels = settled({**GPU, "nvidia.com/mig.capable": "true"})
    assert labels["nvidia.com/gpu.deploy.mig-manager"] == "true"
    assert labels["nvidia.com/mig.config"] == "all-disabled"


def test_an_existing_mig_config_is_never_replaced() -> None:
    labels = settled(
        {**GPU, "nvidia.com/mig.capable": "true", "nvidia.com/mig.config": "all-balanced"}
    )
    assert labels["nvidia.com/mig.config"] == "all-balanced"


def test_a_non_default_mig_config_default_is_not_seeded() -> None:
    spec = parse_spec({"migManager": {"config": {"default": "all-1g.10gb"}}}, source="t")
    assert "nvidia.com/mig.config" not in settled({**GPU, "nvidia.com/mig.capable": "true"}, spec)


def test_sandbox_workloads_label_vm_nodes_for_their_operands_only() -> None:
    spec = parse_spec({"sandboxWorkloads": {"enabled": True}}, source="t")
    labelled = settled(dict(GPU))
    vm = settled({**labelled, "nvidia.com/gpu.workload.config": "vm-passthrough"}, spec)
    deploy = sorted(
        k.removeprefix("nvidia.com/gpu.deploy.")
        for k in vm
        if k.startswith("nvidia.com/gpu.deploy.")
    )
    assert deploy == [
        "cc-manager",
        "client",
        "kata-manager",
        "sandbox-device-plugin",
        "sandbox-validator",
        "vfio-manager",
    ]


def test_auto_upgrade_marks_gpu_nodes_for_the_upgrade_controller() -> None:
    spec = parse_spec({"driver": {"upgradePolicy": {"autoUpgrade": True}}}, source="t")
    assert plan_node(GPU, {}, spec).annotations == {"nvidia.com/gpu-driver-upgrade-enabled": "true"}
    assert plan_node(GPU, {"nvidia.com/gpu-driver-upgrade-enabled": "true"}, SPEC).annotations == {
        "nvidia.com/gpu-driver-upgrade-enabled": None
    }
