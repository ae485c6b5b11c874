"""The upgrade controller's shell against the API emulator: a 10-node pool upgraded within
``maxUnavailable: 25%`` and ``maxParallelUpgrades: 2``, a node failing validation and its
recovery, and the drain skip label — the test plays the kubelet and the DaemonSet controller."""

from __future__ import annotations

from lightkube import Client
from lightkube.resources.core_v1 import Event, Node
from lightkube.types import PatchType

from gpu_operator.driver.upgrade import IN_PROGRESS, UPGRADE_DONE, UPGRADE_FAILED
from gpu_operator.driver.upgrade_model import DRAIN_SKIP_LABEL, FAILURE, STATE_LABEL, UpgradePolicy
from gpu_operator.driver.upgrading import UpgradeSettings, upgrade_step
from gpu_operator.operator.policy_v1 import DrainSpec, DriverUpgradePolicySpec
from gpu_operator.operator.upgrade_policy import upgrade_policy
from helpers.driver_cluster import Cluster

NODES = [f"gpu-{i:02d}" for i in range(10)]
SETTINGS = UpgradeSettings()


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        self.now += 30
        return self.now


def ten_node_pool(cluster: Cluster) -> None:
    cluster.driver_daemonset()
    for name in NODES:
        cluster.node(name)
        cluster.driver_pod(name, 1)
        cluster.validator_pod(name)
    cluster.pod("train-0", "gpu-00", gpu=True)
    cluster.pod("train-5", "gpu-05", gpu=True)


def drive(
    client: Client, cluster: Cluster, policy: UpgradePolicy, clock: Clock, *, passes: int = 120
) -> list[dict[str, str]]:
    """Passes of the controller, the DaemonSet controller between them; states after each."""
    seen = []
    for _ in range(passes):
        step = upgrade_step(client, policy, SETTINGS, now=clock)
        cluster.play_daemonset_controller()
        states = {n: cluster.labels(n).get(STATE_LABEL, "") for n in NODES}
        seen.append(states)
        cordoned = sum(cluster.unschedulable(n) for n in NODES)
        assert cordoned <= 3, f"{cordoned} nodes cordoned with maxUnavailable 25% of 10"
        assert sum(s in IN_PROGRESS for s in states.values()) <= 2
        if step.empty and not any(s in IN_PROGRESS for s in states.values()):
            break
    return seen


POLICY = upgrade_policy(
    DriverUpgradePolicySpec(
        autoUpgrade=True, maxParallelUpgrades=2, maxUnavailable="25%", drain=DrainSpec(enable=True)
    )
)


def test_a_driver_version_bump_walks_ten_nodes_to_done_within_the_limits(
    client: Client, cluster: Cluster
) -> None:
    ten_node_pool(cluster)
    clock = Clock()
    drive(client, cluster, POLICY, clock)  # first pass: every node is classified done
    assert {cluster.labels(n)[STATE_LABEL] for n in NODES} == {UPGRADE_DONE}
    cluster.bump_driver("nvcr.io/nvidia/driver:2-ubuntu22.04")
    history = drive(client, cluster, POLICY, clock)
    assert {cluster.labels(n)[STATE_LABEL] for n in NODES} == {UPGRADE_DONE}
    assert max(sum(s in IN_PROGRESS for s in h.values()) for h in history) == 2
    assert not any(cluster.unschedulable(n) for n in NODES)
    assert cluster.pod_names() == []  # the GPU pods were deleted before the driver restarted
    drivers = cluster.pod_names("gpu-operator")
    assert sorted(d for d in drivers if d.startswith("nvidia-driver")) == [
        f"nvidia-driver-daemonset-{n}-g2" for n in NODES
    ]
    reasons = {e.reason for e in client.list(Event, namespace="default")}
    assert reasons == {"GPUDriverUpgrade"}
    assert upgrade_step(client, POLICY, SETTINGS, now=clock).empty  # steady state: no writes


def test_a_node_failing_validation_is_marked_failed_then_recovered_by_relabelling(
    client: Client, cluster: Cluster
) -> None:
    ten_node_pool(cluster)
    clock = Clock()
    drive(client, cluster, POLICY, clock)
    cluster.validator_pod("gpu-03", ready=False)
    cluster.bump_driver("nvcr.io/nvidia/driver:2-ubuntu22.04")
    drive(client, cluster, POLICY, clock)
    states = {n: cluster.labels(n)[STATE_LABEL] for n in NODES}
    assert states.pop("gpu-03") == UPGRADE_FAILED
    assert set(states.values()) == {UPGRADE_DONE}
    assert cluster.unschedulable("gpu-03")
    assert "nvidia-operator-validator pod is not Ready" in cluster.annotations("gpu-03")[FAILURE]
    warnings = [
        str(e.message)
        for e in client.list(Event, namespace="default")
        if e.type == "Warning" and e.involvedObject.name == "gpu-03"
    ]
    assert warnings
    assert warnings[0].startswith("Driver upgrade failed: validation")

    cluster.validator_pod("gpu-03", ready=True)  # the user fixes the node …
    client.patch(  # … and asks for another try
        Node,
        "gpu-03",
        {"metadata": {"labels": {STATE_LABEL: "upgrade-required"}}},
        patch_type=PatchType.MERGE,
    )
    drive(client, cluster, POLICY, clock)
    assert cluster.labels("gpu-03")[STATE_LABEL] == UPGRADE_DONE
    assert not cluster.unschedulable("gpu-03")
    assert FAILURE not in cluster.annotations("gpu-03")


def test_drain_evicts_workloads_but_honours_the_drain_skip_label(
    client: Client, cluster: Cluster
) -> None:
    cluster.driver_daemonset()
    cluster.node("gpu-00")
    cluster.driver_pod("gpu-00", 1)
    cluster.validator_pod("gpu-00")
    cluster.pod("scratch", "gpu-00", gpu=True, empty_dir=True)  # pod deletion refuses: drain
    cluster.pod("web", "gpu-00")
    cluster.pod("log-agent", "gpu-00", owner={"kind": "DaemonSet", "name": "workloads"})
    cluster.pod("gpu-operator", "gpu-00", labels={DRAIN_SKIP_LABEL: "true"})
    policy = upgrade_policy(
        DriverUpgradePolicySpec(drain=DrainSpec(enable=True, deleteEmptyDir=True))
    )
    clock = Clock()
    upgrade_step(client, policy, SETTINGS, now=clock)
    cluster.bump_driver("nvcr.io/nvidia/driver:2-ubuntu22.04")
    seen = []
    for _ in range(30):
        upgrade_step(client, policy, SETTINGS, now=clock)
        cluster.play_daemonset_controller()
        seen.append(cluster.labels("gpu-00")[STATE_LABEL])
        if seen[-1] == UPGRADE_DONE:
            break
    assert "drain-required" in seen
    assert seen[-1] == UPGRADE_DONE
    assert cluster.pod_names() == ["gpu-operator", "log-agent"]  # DaemonSet pods stay, as drain
