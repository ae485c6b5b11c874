"""The operator runs the driver upgrade controller after each pass: bumping ``driver.version``
in the ClusterPolicy walks every GPU node through the upgrade states to ``upgrade-done``, never
more than ``maxParallelUpgrades`` at once. The test plays the DaemonSet controller and the
kubelet (driver pods on the newest template, validator pods ready)."""

from __future__ import annotations

from typing import Any

import pytest
from lightkube import AsyncClient, Client
from lightkube.types import PatchType
from test_operator import cluster, seed_policy  # type: ignore[import-not-found]

from gpu_operator.driver.upgrade import IN_PROGRESS, UPGRADE_DONE
from gpu_operator.driver.upgrade_model import STATE_LABEL
from gpu_operator.driver.upgrading import UpgradeSettings, upgrade_step
from gpu_operator.kube import RetryPolicy
from gpu_operator.operator.controller import ClusterPolicy, Controller, ControllerSettings
from helpers.daemonset_pods import ready_pod

pytestmark = pytest.mark.timeout(60)
NS = "gpu-operator"
FAST = RetryPolicy(attempts=4, base_delay_s=0.01, max_delay_s=0.05)
NODES = ("gpu-rocky-1", "gpu-rocky-2")
DRIVER = "nvidia-driver-daemonset"
VALIDATOR = "nvidia-operator-validator"


def play_kubelet(client: Client) -> None:
    """Each GPU node runs the driver DaemonSet's newest template (a deleted driver pod comes
    back on it) and a ready validator pod."""
    from lightkube.resources.apps_v1 import DaemonSet
    from lightkube.resources.core_v1 import Pod

    for app in (DRIVER, VALIDATOR):
        ds = client.get(DaemonSet, app, namespace=NS)
        meta = ds.metadata
        assert meta is not None
        have = {
            p.spec.nodeName for p in client.list(Pod, namespace=NS, labels={"app": app}) if p.spec
        }
        for node in NODES:
            if node in have:
                continue
            client.create(Pod.from_dict(ready_pod(meta, node, NS)))


def states(client: Client) -> dict[str, str]:
    from lightkube.resources.core_v1 import Node

    return {
        n: (client.get(Node, n).metadata.labels or {}).get(STATE_LABEL, "")  # type: ignore[union-attr]
        for n in NODES
    }


async def test_a_driver_version_bump_in_the_policy_walks_every_node_to_upgrade_done(
    clients: tuple[AsyncClient, Client],
) -> None:
    aclient, client = clients
    policy = seed_policy()
    policy["spec"]["driver"]["upgradePolicy"] = {
        "autoUpgrade": True,
        "maxParallelUpgrades": 1,
        "maxUnavailable": 1,
    }
    await cluster(aclient, policy)
    controller = Controller(
        aclient,
        ControllerSettings(namespace=NS, retry=FAST, debounce_s=0.01),
        upgrader=lambda p: upgrade_step(client, p, UpgradeSettings(namespace=NS, retry=FAST)),
    )
    await controller.sync()
    await controller.reconcile_once()
    play_kubelet(client)
    await controller.reconcile_once()
    assert states(client) == dict.fromkeys(NODES, UPGRADE_DONE)
    await controller.reconcile_once()  # metrics describe what a pass observed
    assert controller.metrics.nodes_upgrades_done == 2

    await aclient.patch(
        ClusterPolicy,
        "cluster-policy",
        {"spec": {"driver": {"version": "450.191.01"}}},
        patch_type=PatchType.MERGE,
    )
    await controller.sync()
    seen: list[dict[str, str]] = []
    for _ in range(60):
        await controller.reconcile_once()
        play_kubelet(client)
        seen.append(states(client))
        if all(s == UPGRADE_DONE for s in seen[-1].values()) and len(seen) > 1:
            break
    assert seen[-1] == dict.fromkeys(NODES, UPGRADE_DONE)
    assert any(s in IN_PROGRESS for h in seen for s in h.values()), "the nodes went through it"
    assert max(sum(s in IN_PROGRESS for s in h.values()) for h in seen) == 1
    from lightkube.resources.core_v1 import Pod

    drivers = sorted(
        str(p.metadata.name)
        for p in client.list(Pod, namespace=NS, labels={"app": DRIVER})
        if p.metadata
    )
    assert drivers == [f"{DRIVER}-{n}-g2" for n in NODES]


async def test_at_steady_state_the_upgrade_controller_is_not_even_asked(
    clients: tuple[AsyncClient, Client],
) -> None:
    from lightkube.resources.apps_v1 import DaemonSet

    aclient, client = clients
    await cluster(aclient)
    calls: list[object] = []

    def upgrader(policy: Any) -> Any:
        calls.append(policy)
        return upgrade_step(client, policy, UpgradeSettings(namespace=NS, retry=FAST))

    controller = Controller(
        aclient, ControllerSettings(namespace=NS, retry=FAST, debounce_s=0.01), upgrader=upgrader
    )
    await controller.sync()
    await controller.reconcile_once()
    play_kubelet(client)
    await controller.reconcile_once()
    assert states(client) == dict.fromkeys(NODES, UPGRADE_DONE)
    ds = client.get(DaemonSet, DRIVER, namespace=NS)
    status = {
        "observedGeneration": ds.metadata.generation,
        "desiredNumberScheduled": 2,  # type: ignore[union-attr]
        "updatedNumberScheduled": 2,
        "currentNumberScheduled": 2,
        "numberReady": 2,
        "numberMisscheduled": 0,
    }
    client.patch(
        DaemonSet.Status, DRIVER, {"status": status}, namespace=NS, patch_type=PatchType.MERGE
    )
    await controller.sync()
    before = len(calls)
    await controller.reconcile_once()
    assert len(calls) == before, "nothing to upgrade: no list requests for the upgrade controller"
