"""The operator against the API server emulator over real HTTP: the seed's policy on Rocky 8.5
A100 nodes creates every operand with upstream names and the mirrored rocky8 driver, reports
notReady naming what blocks until the DaemonSets report ready, makes no write at steady state,
touches only what a spec change affects, deletes disabled states, keeps the node label rules,
ignores younger policies, survives dropped watches and 410s, and hands leadership over."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import AsyncClient
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.apps_v1 import DaemonSet
from lightkube.resources.core_v1 import Event, Namespace, Node
from lightkube.types import PatchType

from gpu_operator.kube import RetryPolicy
from gpu_operator.operator.controller import ClusterPolicy, Controller, ControllerSettings
from gpu_operator.operator.crd import build_crd
from gpu_operator.operator.leader import LeaderElector, LeaderSettings
from gpu_operator.sandbox.apiserver import ApiServer

pytestmark = pytest.mark.timeout(30)
DATA = Path(__file__).parents[2] / "data" / "operator"
NS = "gpu-operator"
FAST = RetryPolicy(attempts=4, base_delay_s=0.01, max_delay_s=0.05)
OPERANDS = {
    "nvidia-driver-daemonset",
    "nvidia-container-toolkit-daemonset",
    "nvidia-operator-validator",
    "nvidia-device-plugin-daemonset",
    "nvidia-device-plugin-mps-control-daemon",
    "nvidia-dcgm-exporter",
    "gpu-feature-discovery",
    "nvidia-mig-manager",
}


UNREADY = {
    "desiredNumberScheduled": 2,
    "currentNumberScheduled": 2,
    "numberMisscheduled": 0,
    "numberReady": 0,
    "numberUnavailable": 2,
}


def seed_policy(name: str = "cluster-policy") -> dict[str, Any]:
    policy: dict[str, Any] = yaml.safe_load((DATA / "seed" / "policy.yaml").read_text())
    policy["metadata"] = {"name": name}
    return policy


async def cluster(aclient: AsyncClient, policy: dict[str, Any] | None = None) -> None:
    await aclient.create(CustomResourceDefinition.from_dict(build_crd()))
    await aclient.create(Namespace(metadata=ObjectMeta(name=NS)))
    for node in yaml.safe_load((DATA / "seed" / "nodes.yaml").read_text()):
        node.pop("status", None)
        await aclient.create(Node.from_dict(node))
    await aclient.create(ClusterPolicy.from_dict(policy or seed_policy()))


def controller(aclient: AsyncClient) -> Controller:
    return Controller(
        aclient,
        ControllerSettings(namespace=NS, retry=FAST, debounce_s=0.01),
        now=lambda: "2026-11-27T13:00:00Z",
    )


async def started(aclient: AsyncClient) -> Controller:
    c = controller(aclient)
    await c.sync()
    return c


async def daemonsets(aclient: AsyncClient) -> dict[str, DaemonSet]:
    return {str(ds.metadata.name): ds async for ds in aclient.list(DaemonSet, namespace=NS)}


async def policy_status(aclient: AsyncClient, name: str = "cluster-policy") -> dict[str, Any]:
    return dict((await aclient.get(ClusterPolicy, name)).get("status") or {})


async def report_ready(aclient: AsyncClient) -> None:
    """What the DaemonSet controller would write once every pod is up."""
    for name, ds in (await daemonsets(aclient)).items():
        status = {
            "desiredNumberScheduled": 2,
            "currentNumberScheduled": 2,
            "numberReady": 2,
            "numberAvailable": 2,
            "updatedNumberScheduled": 2,
            "numberMisscheduled": 0,
            "observedGeneration": ds.metadata.generation,
        }
        await aclient.patch(
            DaemonSet.Status, name, {"status": status}, namespace=NS, patch_type=PatchType.MERGE
        )


async def test_the_seed_policy_creates_every_operand_and_reports_what_blocks(
    aclient: AsyncClient,
) -> None:
    await cluster(aclient)
    c = await started(aclient)
    await c.reconcile_once()
    found = await daemonsets(aclient)
    assert set(found) == OPERANDS
    driver = found["nvidia-driver-daemonset"].spec.template.spec.containers[0]
    assert driver.image == "homelab.net/nvcr.io/nvidia/driver:450.156.00-rocky8"
    owner = found["nvidia-device-plugin-daemonset"].metadata.ownerReferences[0]
    assert (owner.kind, owner.name) == ("ClusterPolicy", "cluster-policy")
    node = await aclient.get(Node, "gpu-rocky-1")
    assert node.metadata.labels["nvidia.com/gpu.present"] == "true"
    assert node.metadata.labels["nvidia.com/gpu.deploy.mig-manager"] == "true"
    status = await policy_status(aclient)
    assert status["state"] == "notReady"
    assert status["namespace"] == NS
    ready, error = status["conditions"][:2]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "False", "Error")
    assert (error["type"], error["reason"]) == ("Error", "OperandNotReady")
    assert "state-driver" in error["message"]


async def test_a_daemonset_rollout_the_operator_has_not_seen_blocks_by_name(
    aclient: AsyncClient,
) -> None:
    await cluster(aclient)
    c = await started(aclient)
    await c.reconcile_once()
    await aclient.patch(
        DaemonSet.Status,
        "nvidia-driver-daemonset",
        {"status": {**UNREADY, "observedGeneration": 1}},
        namespace=NS,
        patch_type=PatchType.MERGE,
    )
    await c.sync()
    await c.reconcile_once()
    conditions = {x["type"]: x for x in (await policy_status(aclient))["conditions"]}
    assert conditions["state-driver"]["message"] == "nvidia-driver-daemonset: 0/2 pods available"


async def test_status_turns_ready_when_every_daemonset_reports_ready_and_an_event_says_so(
    aclient: AsyncClient,
) -> None:
    await cluster(aclient)
    c = await started(aclient)
    await c.reconcile_once()
    await report_ready(aclient)
    await c.sync()
    result = await c.reconcile_once()
    status = await policy_status(aclient)
    assert status["state"] == "ready", status
    assert status["conditions"][0]["reason"] == "Reconciled"
    assert result.requeue_after_s is None
    reasons = [e.reason async for e in aclient.list(Event, namespace="default")]
    assert "Ready" in reasons
    assert "NotReady" in reasons
    assert reasons.count("DeprecatedField") == 1  # operator.defaultRuntime, once per generation


async def test_policy_reconciling_until_ready_and_operator_ready_after_its_first_status(
    aclient: AsyncClient,
) -> None:
    """What `helm install --wait` (kstatus) reads: Reconciling=True while the operands roll out,
    False once ready; the operator's readiness waits for its first status write, so the release
    can't look done before the policy has a status."""
    await cluster(aclient)
    c = await started(aclient)
    assert c.metrics.synced
    assert not c.metrics.first_pass_done
    await c.reconcile_once()
    assert c.metrics.first_pass_done
    conditions = {x["type"]: x for x in (await policy_status(aclient))["conditions"]}
    assert conditions["Reconciling"]["status"] == "True"
    assert "state-driver" in conditions["Reconciling"]["message"]
    await report_ready(aclient)
    await c.sync()
    await c.reconcile_once()
    conditions = {x["type"]: x for x in (await policy_status(aclient))["conditions"]}
    assert (conditions["Reconciling"]["status"], conditions["Reconciling"]["reason"]) == (
        "False",
        "Reconciled",
    )


async def test_a_service_monitor_without_its_crd_names_the_crd_and_the_rest_rolls_out(
    aclient: AsyncClient,
) -> None:
    """NVIDIA's main values enable the dcgm-exporter ServiceMonitor; on a cluster without the
    Prometheus Operator's CRD the pass goes on and the state says what is missing."""
    policy = seed_policy()
    policy["spec"].setdefault("dcgmExporter", {})["serviceMonitor"] = {"enabled": True}
    await cluster(aclient, policy)
    c = await started(aclient)
    await c.reconcile_once()
    assert set(await daemonsets(aclient)) >= OPERANDS - {"nvidia-device-plugin-mps-control-daemon"}
    await report_ready(aclient)
    await c.sync()
    await c.reconcile_once()
    status = await policy_status(aclient)
    conditions = {x["type"]: x for x in status["conditions"]}
    assert status["state"] == "notReady"
    assert conditions["state-dcgm-exporter"]["status"] == "False"
    assert (
        "ServiceMonitor nvidia-dcgm-exporter: the ServiceMonitor CRD"
        in (conditions["state-dcgm-exporter"]["message"])
    )
    assert conditions["state-driver"]["status"] == "True"


async def test_a_steady_state_pass_makes_no_write(
    aclient: AsyncClient, apiserver: ApiServer
) -> None:
    await cluster(aclient)
    c = await started(aclient)
    await c.reconcile_once()
    await report_ready(aclient)
    await c.sync()
    await c.reconcile_once()
    before = apiserver.cluster.store.rv
    writes = c.metrics.api_writes_total
    result = await c.reconcile_once()
    assert result.writes == 0
    assert c.metrics.api_writes_total == writes
    assert apiserver.cluster.store.rv == before


async def test_a_spec_change_touches_only_the_objects_it_affects(aclient: AsyncClient) -> None:
    await cluster(aclient)
    c = await started(aclient)
    await c.reconcile_once()
    versions = {n: ds.metadata.resourceVersion for n, ds in (await daemonsets(aclient)).items()}
    await aclient.patch(
        ClusterPolicy,
        "cluster-policy",
        {"spec": {"devicePlugin": {"env": [{"name": "EXTRA", "value": "1"}]}}},
        patch_type=PatchType.MERGE,
    )
    await c.sync()
    result = await c.reconcile_once()
    assert sorted(o["metadata"]["name"] for o in result.applies) == [
        "nvidia-device-plugin-daemonset",
        "nvidia-device-plugin-mps-control-daemon",
    ]
    after = {n: ds.metadata.resourceVersion for n, ds in (await daemonsets(aclient)).items()}
    assert {n for n in versions if versions[n] != after[n]} == {
        "nvidia-device-plugin-daemonset",
        "nvidia-device-plugin-mps-control-daemon",
    }


async def test_disabling_a_component_deletes_its_objects(aclient: AsyncClient) -> None:
    await cluster(aclient)
    c = await started(aclient)
    await c.reconcile_once()
    await aclient.patch(
        ClusterPolicy,
        "cluster-policy",
        {"spec": {"gfd": {"enabled": False}, "dcgmExporter": {"enabled": False}}},
        patch_type=PatchType.MERGE,
    )
    await c.sync()
    result = await c.reconcile_once()
    assert ("Service", NS, "nvidia-dcgm-exporter") in result.deletes
    assert set(await daemonsets(aclient)) == OPERANDS - {
        "gpu-feature-discovery",
        "nvidia-dcgm-exporter",
    }


async def test_operands_false_empties_a_node_and_a_pause_survives(aclient: AsyncClient) -> None:
    await cluster(aclient)
    c = await started(aclient)
    await c.reconcile_once()
    await aclient.patch(
        Node,
        "gpu-rocky-1",
        {"metadata": {"labels": {"nvidia.com/gpu.deploy.operands": "false"}}},
        patch_type=PatchType.MERGE,
    )
    await aclient.patch(
        Node,
        "gpu-rocky-2",
        {"metadata": {"labels": {"nvidia.com/gpu.deploy.device-plugin": "paused-for-mig-change"}}},
        patch_type=PatchType.MERGE,
    )
    await c.sync()
    await c.reconcile_once()
    one = (await aclient.get(Node, "gpu-rocky-1")).metadata.labels
    two = (await aclient.get(Node, "gpu-rocky-2")).metadata.labels
    assert [k for k in one if k.startswith("nvidia.com/gpu.deploy.")] == [
        "nvidia.com/gpu.deploy.operands"
    ]
    assert two["nvidia.com/gpu.deploy.device-plugin"] == "paused-for-mig-change"
    assert two["nvidia.com/gpu.deploy.dcgm-exporter"] == "false"


async def test_a_younger_policy_is_ignored(aclient: AsyncClient) -> None:
    await cluster(aclient)
    await asyncio.sleep(1.05)  # creationTimestamp has one-second resolution
    await aclient.create(ClusterPolicy.from_dict(seed_policy("another-policy")))
    c = await started(aclient)
    result = await c.reconcile_once()
    assert result.active == "cluster-policy"
    assert (await policy_status(aclient, "another-policy"))["state"] == "ignored"
    assert (await policy_status(aclient))["state"] == "notReady"


async def test_a_bad_policy_is_reported_and_changes_nothing(aclient: AsyncClient) -> None:
    bad = seed_policy()
    bad["spec"]["toolkit"] = {"version": "v1.20.0"}
    await cluster(aclient, bad)
    c = await started(aclient)
    result = await c.reconcile_once()
    assert result.applies == ()
    status = await policy_status(aclient)
    assert status["conditions"][1]["reason"] == "ReconcileFailed"
    assert (
        "spec.toolkit: version set but repository, image missing"
        in status["conditions"][1]["message"]
    )


async def eventually(check: Callable[[], Any], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not met in {timeout}s: {check.__doc__}")
        await asyncio.sleep(0.05)


async def test_the_running_operator_follows_changes_across_dropped_watches_and_410(
    aclient: AsyncClient, apiserver: ApiServer
) -> None:
    await cluster(aclient)
    c = controller(aclient)
    stop = asyncio.Event()
    task = asyncio.create_task(c.run(stop))
    try:

        async def created() -> bool:
            """every operand DaemonSet exists"""
            return set(await daemonsets(aclient)) == OPERANDS

        await eventually(created)
        apiserver.drop_watches()
        await aclient.patch(
            ClusterPolicy,
            "cluster-policy",
            {"spec": {"gfd": {"enabled": False}}},
            patch_type=PatchType.MERGE,
        )

        async def gfd_gone() -> bool:
            """gpu-feature-discovery deleted after a dropped watch"""
            return "gpu-feature-discovery" not in await daemonsets(aclient)

        await eventually(gfd_gone)
        apiserver.compact()
        apiserver.drop_watches()
        await aclient.patch(
            ClusterPolicy,
            "cluster-policy",
            {"spec": {"gfd": {"enabled": True}}},
            patch_type=PatchType.MERGE,
        )

        async def gfd_back() -> bool:
            """gpu-feature-discovery back after a 410"""
            return "gpu-feature-discovery" in await daemonsets(aclient)

        await eventually(gfd_back)
        assert apiserver.cluster.store.expired_answers >= 1
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_leadership_passes_to_the_standby_when_the_leader_stops(aclient: AsyncClient) -> None:
    await cluster(aclient)

    def replica(identity: str) -> Controller:
        elector = LeaderElector(
            aclient, LeaderSettings(identity=identity, namespace=NS, lease_s=1, renew_s=0.1)
        )
        return Controller(
            aclient, ControllerSettings(namespace=NS, retry=FAST, debounce_s=0.01), elector=elector
        )

    first, second = replica("a"), replica("b")
    stop_first, stop_second = asyncio.Event(), asyncio.Event()
    tasks = [asyncio.create_task(first.run(stop_first, renew_s=0.1))]
    await eventually(lambda: first.metrics.leading)
    tasks.append(asyncio.create_task(second.run(stop_second, renew_s=0.1)))
    try:
        await eventually(lambda: first.metrics.reconciliation_total > 0)
        await asyncio.sleep(0.3)
        assert not second.metrics.leading
        assert second.metrics.reconciliation_total == 0
        stop_first.set()
        await asyncio.wait_for(tasks[0], 10)
        await eventually(lambda: second.metrics.leading)
        await aclient.patch(
            ClusterPolicy,
            "cluster-policy",
            {"spec": {"gfd": {"enabled": False}}},
            patch_type=PatchType.MERGE,
        )

        async def gfd_gone() -> bool:
            """the new leader applied the change"""
            return "gpu-feature-discovery" not in await daemonsets(aclient)

        await eventually(gfd_gone)
    finally:
        stop_first.set()
        stop_second.set()
        await asyncio.gather(*tasks)
