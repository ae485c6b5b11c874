"""The operator with ``driver.useNvidiaDriverCRD`` against the API server emulator over real
HTTP: NVIDIADriver CRs for a Rocky 8 pool and an Ubuntu 22.04 pool give two driver DaemonSets
with the right tags and no ClusterPolicy driver, each CR's status goes notReady → ready with the
DaemonSets and costs no write after; a second CR selecting the same node (created while the
operator runs, seen through its watch) gets a condition naming both CRs and the nodes and no
driver there; and a CR's version change walks only that CR's nodes through the upgrade states.
The test plays the DaemonSet controller and the kubelet where it needs pods."""

from __future__ import annotations

from typing import Any

import pytest
from lightkube import AsyncClient, Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.apps_v1 import DaemonSet
from lightkube.resources.core_v1 import Namespace, Node, Pod
from lightkube.types import PatchType
from test_operator import seed_policy  # type: ignore[import-not-found]

from gpu_operator.driver.groups import OWNER_LABEL
from gpu_operator.driver.upgrade import IN_PROGRESS, UPGRADE_DONE
from gpu_operator.driver.upgrade_model import STATE_LABEL
from gpu_operator.driver.upgrading import UpgradeSettings, upgrade_step
from gpu_operator.kube import RetryPolicy
from gpu_operator.nfd import GPU_PCI_LABELS, KERNEL_LABEL, OS_ID_LABEL, OS_VERSION_LABEL
from gpu_operator.operator import crd, nvidiadriver_crd
from gpu_operator.operator.controller import (
    ClusterPolicy,
    Controller,
    ControllerSettings,
    NVIDIADriver,
)
from helpers.controller_run import controller_running, settled
from helpers.daemonset_pods import ready_pod
from helpers.polling import wait_until_async

pytestmark = pytest.mark.timeout(60)
NS = "gpu-operator"
FAST = RetryPolicy(attempts=4, base_delay_s=0.01, max_delay_s=0.05)
NODES = {"rocky-1": ("rocky", "8.10"), "rocky-2": ("rocky", "8.5"), "ubuntu-1": ("ubuntu", "22.04")}
ROCKY_DS = "nvidia-gpu-driver-rocky-rocky8"
UBUNTU_DS = "nvidia-gpu-driver-ubuntu-ubuntu22.04"
VALIDATOR = "nvidia-operator-validator"


def driver(name: str, version: str = "570.148.08", **spec: Any) -> dict[str, Any]:
    body = {"default": False, "driverType": "gpu", "repository": "nvcr.io/nvidia"}
    body.update({"image": "driver", "version": version, **spec})
    return {
        "apiVersion": "nvidia.com/v1alpha1",
        "kind": "NVIDIADriver",
        "metadata": {"name": name},
        "spec": body,
    }


ROCKY = driver("rocky", nodeSelector={OS_ID_LABEL: "rocky"})
UBUNTU = driver("ubuntu", "580.95.05", nodeSelector={OS_ID_LABEL: "ubuntu"})


async def world(aclient: AsyncClient, *crs: dict[str, Any]) -> None:
    await aclient.create(CustomResourceDefinition.from_dict(crd.build_crd()))
    await aclient.create(CustomResourceDefinition.from_dict(nvidiadriver_crd.build_crd()))
    await aclient.create(Namespace(metadata=ObjectMeta(name=NS)))
    for name, (os_id, version) in NODES.items():
        labels = {
            GPU_PCI_LABELS[0]: "true",
            OS_ID_LABEL: os_id,
            OS_VERSION_LABEL: version,
            KERNEL_LABEL: "5.14.0-427.13.1.el9_4.x86_64",
        }
        await aclient.create(Node(metadata=ObjectMeta(name=name, labels=labels)))
    policy = seed_policy()
    policy["spec"]["driver"]["useNvidiaDriverCRD"] = True
    policy["spec"]["driver"]["upgradePolicy"] = {"autoUpgrade": True, "maxParallelUpgrades": 1}
    await aclient.create(ClusterPolicy.from_dict(policy))
    for body in crs:
        await aclient.create(NVIDIADriver.from_dict(body))


def controller(aclient: AsyncClient, client: Client | None = None) -> Controller:
    upgrades = UpgradeSettings(namespace=NS, retry=FAST)
    return Controller(
        aclient,
        ControllerSettings(namespace=NS, retry=FAST, debounce_s=0.01),
        now=lambda: "2026-12-07T10:00:00Z",
        upgrader=(lambda p: upgrade_step(client, p, upgrades)) if client else None,
    )


async def driver_daemonsets(aclient: AsyncClient) -> dict[str, DaemonSet]:
    return {
        str(ds.metadata.name): ds
        async for ds in aclient.list(DaemonSet, namespace=NS)
        if ds.metadata and "driver" in str(ds.metadata.name)
    }


async def status(aclient: AsyncClient, name: str) -> dict[str, Any]:
    return dict((await aclient.get(NVIDIADriver, name)).get("status") or {})


async def owners(aclient: AsyncClient) -> dict[str, str | None]:
    return {
        n: ((await aclient.get(Node, n)).metadata.labels or {}).get(OWNER_LABEL)  # type: ignore[union-attr]
        for n in NODES
    }


async def report_ready(aclient: AsyncClient) -> None:
    """What the DaemonSet controller writes once every pod is up."""
    async for ds in aclient.list(DaemonSet, namespace=NS):
        assert ds.metadata is not None
        done = {
            "desiredNumberScheduled": 1,
            "currentNumberScheduled": 1,
            "numberReady": 1,
            "numberAvailable": 1,
            "updatedNumberScheduled": 1,
            "numberMisscheduled": 0,
            "observedGeneration": ds.metadata.generation,
        }
        await aclient.patch(
            DaemonSet.Status,
            str(ds.metadata.name),
            {"status": done},
            namespace=NS,
            patch_type=PatchType.MERGE,
        )


async def test_a_rocky_and_an_ubuntu_cr_give_two_daemonsets_with_their_tags_and_a_status(
    clients: tuple[AsyncClient, Client],
) -> None:
    aclient, _ = clients
    await world(aclient, ROCKY, UBUNTU)
    c = controller(aclient)
    await c.sync()
    await c.reconcile_once()
    found = await driver_daemonsets(aclient)
    assert set(found) == {ROCKY_DS, UBUNTU_DS}  # and no nvidia-driver-daemonset
    images = {n: ds.spec.template.spec.containers[0].image for n, ds in found.items()}  # type: ignore[union-attr]
    assert images == {
        ROCKY_DS: "nvcr.io/nvidia/driver:570.148.08-rocky8",
        UBUNTU_DS: "nvcr.io/nvidia/driver:580.95.05-ubuntu22.04",
    }
    selector = found[ROCKY_DS].spec.template.spec.nodeSelector  # type: ignore[union-attr]
    assert selector[OWNER_LABEL] == "rocky"
    assert await owners(aclient) == {"rocky-1": "rocky", "rocky-2": "rocky", "ubuntu-1": "ubuntu"}
    first = await status(aclient, "rocky")
    assert first["state"] == "notReady"
    assert first["conditions"][1]["reason"] == "DriverNotReady"
    assert first["conditions"][1]["message"] == f"{ROCKY_DS}: not created yet"

    await report_ready(aclient)
    await c.sync()
    await c.reconcile_once()
    ready = await status(aclient, "rocky")
    assert ready["state"] == "ready"
    assert [(x["type"], x["status"], x["reason"]) for x in ready["conditions"]] == [
        ("Ready", "True", "Reconciled"),
        ("Error", "False", "Ready"),
    ]
    assert (await status(aclient, "ubuntu"))["state"] == "ready"
    printed = (await aclient.get(NVIDIADriver, "ubuntu")).get("status")
    assert printed["namespace"] == NS

    writes = c.metrics.api_writes_total
    await c.sync()
    steady = await c.reconcile_once()
    assert steady.writes == 0
    assert c.metrics.api_writes_total == writes


async def test_two_crs_selecting_one_node_get_a_condition_naming_both_and_one_driver(
    clients: tuple[AsyncClient, Client],
) -> None:
    aclient, _ = clients
    everything = driver("all-gpus")
    await world(aclient, everything)
    c = controller(aclient)
    async with controller_running(c):
        assert await wait_until_async(settled(c)), "the first passes settle"
        await aclient.create(
            NVIDIADriver.from_dict(driver("rocky", nodeSelector={OS_ID_LABEL: "rocky"}))
        )

        async def conflicted() -> bool:
            conditions = (await status(aclient, "rocky")).get("conditions") or []
            return any(x["reason"] == "ConflictingNodeSelector" for x in conditions)

        assert await wait_until_async(conflicted), "the younger CR is told, through the watch"
    rocky = await status(aclient, "rocky")
    assert rocky["state"] == "notReady"
    ready, error = rocky["conditions"]
    assert (ready["status"], ready["reason"]) == ("False", "Error")
    assert (error["type"], error["status"]) == ("Error", "True")
    assert error["message"].startswith(
        "NVIDIADriver rocky selects node(s) rocky-1, rocky-2 that NVIDIADriver all-gpus (older) "
        "already drives"
    )
    assert await owners(aclient) == dict.fromkeys(NODES, "all-gpus")
    found = await driver_daemonsets(aclient)
    assert set(found) == {
        "nvidia-gpu-driver-all-gpus-rocky8",
        "nvidia-gpu-driver-all-gpus-ubuntu22.04",
    }
    for ds in found.values():
        assert ds.spec.template.spec.nodeSelector[OWNER_LABEL] == "all-gpus"  # type: ignore[union-attr]


def play_kubelet(client: Client) -> None:
    """Each node runs its driver DaemonSet's newest template (the one whose nodeSelector it
    matches; a deleted driver pod comes back on it) and a ready validator pod."""
    nodes = {str(n.metadata.name): n.metadata.labels or {} for n in client.list(Node) if n.metadata}
    for ds in client.list(DaemonSet, namespace=NS):
        meta, spec = ds.metadata, ds.spec
        assert meta is not None
        assert spec is not None
        assert spec.template.spec is not None
        app = str(meta.name)
        if "driver" not in app and app != VALIDATOR:
            continue
        selector = spec.template.spec.nodeSelector or {}
        have = {
            p.spec.nodeName for p in client.list(Pod, namespace=NS, labels={"app": app}) if p.spec
        }
        for node, labels in nodes.items():
            if node in have or any(labels.get(k) != v for k, v in selector.items()):
                continue
            client.create(Pod.from_dict(ready_pod(meta, node, NS)))


def states(client: Client) -> dict[str, str]:
    return {
        n: (client.get(Node, n).metadata.labels or {}).get(STATE_LABEL, "")  # type: ignore[union-attr]
        for n in NODES
    }


def driver_pods(client: Client) -> set[str]:
    return {
        str(p.metadata.name)
        for p in client.list(Pod, namespace=NS)
        if p.metadata and "driver" in str(p.metadata.name)
    }


async def test_a_crs_version_change_walks_only_that_crs_nodes_through_the_upgrade(
    clients: tuple[AsyncClient, Client],
) -> None:
    aclient, client = clients
    await world(aclient, ROCKY, UBUNTU)
    c = controller(aclient, client)
    await c.sync()
    await c.reconcile_once()
    play_kubelet(client)
    await c.reconcile_once()
    assert states(client) == dict.fromkeys(NODES, UPGRADE_DONE)
    ubuntu_pods = {p for p in driver_pods(client) if "ubuntu" in p}
    assert ubuntu_pods == {f"{UBUNTU_DS}-ubuntu-1-g1"}

    await aclient.patch(
        NVIDIADriver, "rocky", {"spec": {"version": "570.195.03"}}, patch_type=PatchType.MERGE
    )
    await c.sync()
    seen: list[dict[str, str]] = []
    for _ in range(60):
        await c.reconcile_once()
        play_kubelet(client)
        seen.append(states(client))
        if len(seen) > 1 and all(s == UPGRADE_DONE for s in seen[-1].values()):
            break
    assert seen[-1] == dict.fromkeys(NODES, UPGRADE_DONE)
    rocky_moved = {n for h in seen for n, s in h.items() if s in IN_PROGRESS}
    assert rocky_moved == {"rocky-1", "rocky-2"}, "only the changed CR's nodes were upgraded"
    assert all(h["ubuntu-1"] == UPGRADE_DONE for h in seen)
    assert max(sum(s in IN_PROGRESS for s in h.values()) for h in seen) == 1
    image = (await driver_daemonsets(aclient))[ROCKY_DS].spec.template.spec.containers[0].image  # type: ignore[union-attr]
    assert image == "nvcr.io/nvidia/driver:570.195.03-rocky8"
    assert {p for p in driver_pods(client) if "rocky" in p} == {
        f"{ROCKY_DS}-rocky-1-g2",
        f"{ROCKY_DS}-rocky-2-g2",
    }
    assert {p for p in driver_pods(client) if "ubuntu" in p} == ubuntu_pods, "never restarted"
