"""The operator and NVIDIADriver CRs beyond the first install, against the API server emulator
over real HTTP: an operator started before the NVIDIADriver CRD existed takes CRs in once the
CRD appears (no restart), and the operator posts Events on NVIDIADriver objects with the
reasons of their status conditions (ConflictingNodeSelector, ReconcileFailed, DriverNotReady,
Reconciled) — once per change, none at steady state."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from lightkube import AsyncClient, Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.core_v1 import Event, Namespace, Node
from test_operator import seed_policy  # type: ignore[import-not-found]
from test_operator_nvidiadriver import (  # type: ignore[import-not-found]
    FAST,
    NODES,
    NS,
    ROCKY_DS,
    driver,
    driver_daemonsets,
    report_ready,
    status,
    world,
)

from gpu_operator.nfd import GPU_PCI_LABELS, OS_ID_LABEL, OS_VERSION_LABEL
from gpu_operator.operator import crd, nvidiadriver_crd
from gpu_operator.operator.controller import (
    ClusterPolicy,
    Controller,
    ControllerSettings,
    NVIDIADriver,
)
from gpu_operator.operator.nvidiadriver_status import cr_events
from helpers.controller_run import controller_running, settled
from helpers.polling import wait_until_async

pytestmark = pytest.mark.timeout(60)


def controller(aclient: AsyncClient) -> Controller:
    settings = ControllerSettings(namespace=NS, retry=FAST, debounce_s=0.01, crd_poll_s=0.05)
    return Controller(aclient, settings, now=lambda: "2026-12-07T10:00:00Z")


async def test_an_operator_started_before_the_crd_takes_crs_in_once_it_appears(
    clients: tuple[AsyncClient, Client],
) -> None:
    aclient, _ = clients
    await aclient.create(CustomResourceDefinition.from_dict(crd.build_crd()))
    await aclient.create(Namespace(metadata=ObjectMeta(name=NS)))
    for name, (os_id, version) in NODES.items():
        labels = {GPU_PCI_LABELS[0]: "true", OS_ID_LABEL: os_id, OS_VERSION_LABEL: version}
        await aclient.create(Node(metadata=ObjectMeta(name=name, labels=labels)))
    policy = seed_policy()
    policy["spec"]["driver"]["useNvidiaDriverCRD"] = True
    await aclient.create(ClusterPolicy.from_dict(policy))
    c = controller(aclient)
    async with controller_running(c):
        assert await wait_until_async(settled(c)), "the first passes settle without the CRD"
        assert not c.drivers_served
        assert not await driver_daemonsets(aclient)

        await aclient.create(CustomResourceDefinition.from_dict(nvidiadriver_crd.build_crd()))
        await aclient.create(
            NVIDIADriver.from_dict(driver("rocky", nodeSelector={OS_ID_LABEL: "rocky"}))
        )

        async def deployed() -> bool:
            return ROCKY_DS in await driver_daemonsets(aclient)

        assert await wait_until_async(deployed), "the CR is taken in without a restart"
        assert c.drivers_served
        # ... and watched from then on: a CR created later is seen too.
        await aclient.create(
            NVIDIADriver.from_dict(driver("ubuntu", nodeSelector={OS_ID_LABEL: "ubuntu"}))
        )

        async def both() -> bool:
            return "nvidia-gpu-driver-ubuntu-ubuntu22.04" in await driver_daemonsets(aclient)

        assert await wait_until_async(both), "the later CR arrives through the watch"
    assert (await status(aclient, "rocky"))["conditions"], "and its status is written"


async def driver_events(aclient: AsyncClient) -> list[Event]:
    return [
        e
        async for e in aclient.list(Event, namespace="default")
        if e.involvedObject.kind == "NVIDIADriver"
    ]


async def test_events_on_nvidiadrivers_name_the_status_reasons_once_per_change(
    clients: tuple[AsyncClient, Client],
) -> None:
    aclient, _ = clients
    unversioned = driver("unversioned", nodeSelector={OS_ID_LABEL: "ubuntu"})
    del unversioned["spec"]["version"]
    await world(aclient, driver("all-gpus", nodeSelector={OS_ID_LABEL: "rocky"}), unversioned)
    c = controller(aclient)
    async with controller_running(c):
        assert await wait_until_async(settled(c))
        await aclient.create(
            NVIDIADriver.from_dict(driver("rocky", nodeSelector={OS_ID_LABEL: "rocky"}))
        )

        async def warned() -> bool:
            return any(e.reason == "ConflictingNodeSelector" for e in await driver_events(aclient))

        assert await wait_until_async(warned), "the younger CR gets a Warning Event"
        await report_ready(aclient)

        async def reconciled() -> bool:
            return any(
                e.reason == "Reconciled" and e.involvedObject.name == "all-gpus"
                for e in await driver_events(aclient)
            )

        assert await wait_until_async(reconciled), "ready again: a Normal Event"
        assert await wait_until_async(settled(c))
        c.dirty.set()  # one more pass at steady state posts nothing
        passes = c.metrics.reconciliation_total
        assert await wait_until_async(lambda: c.metrics.reconciliation_total > passes)
    events = await driver_events(aclient)
    seen = Counter((e.involvedObject.name, e.type, e.reason) for e in events)
    assert seen == {
        ("all-gpus", "Warning", "DriverNotReady"): 1,
        ("all-gpus", "Normal", "Reconciled"): 1,
        ("unversioned", "Warning", "ReconcileFailed"): 1,
        ("rocky", "Warning", "ConflictingNodeSelector"): 1,
    }, seen
    by_reason: dict[str, Any] = {str(e.reason): e for e in events}
    assert "spec.version" in by_reason["ReconcileFailed"].message
    conflict = by_reason["ConflictingNodeSelector"]
    assert conflict.message.startswith("NVIDIADriver rocky selects node(s) rocky-1, rocky-2")
    assert conflict.involvedObject.apiVersion == "nvidia.com/v1alpha1"
    assert conflict.involvedObject.uid == (await aclient.get(NVIDIADriver, "rocky")).metadata.uid
    assert by_reason["DriverNotReady"].message.startswith("nvidia-gpu-driver-all-gpus-rocky8: ")


def test_cr_events_follow_the_error_condition() -> None:
    def status(ok: bool, reason: str, message: str) -> dict[str, Any]:
        ready = ("True", reason, message) if ok else ("False", "Error", message)
        error = ("False", "Ready", "") if ok else ("True", reason, message)
        return {
            "conditions": [
                {"type": t, "status": s, "reason": r, "message": m}
                for t, (s, r, m) in (("Ready", ready), ("Error", error))
            ]
        }

    failed = status(False, "ReconcileFailed", "spec.version: required")
    assert cr_events(None, failed) == [("Warning", "ReconcileFailed", "spec.version: required")]
    assert cr_events(failed, failed) == []
    other = status(False, "ReconcileFailed", "spec.image: bad")
    assert cr_events(failed, other) == [("Warning", "ReconcileFailed", "spec.image: bad")]
    waiting = status(False, "DriverNotReady", "ds: 0/2 pods available")
    assert cr_events(failed, waiting) == [("Warning", "DriverNotReady", "ds: 0/2 pods available")]
    assert cr_events(waiting, status(False, "DriverNotReady", "ds: 1/2 pods available")) == []
    ready = status(True, "Reconciled", "driver ready on 2 node(s)")
    assert cr_events(waiting, ready) == [("Normal", "Reconciled", "driver ready on 2 node(s)")]
    assert cr_events(None, ready) == [("Normal", "Reconciled", "driver ready on 2 node(s)")]
    assert cr_events(ready, status(True, "Reconciled", "driver ready on 3 node(s)")) == []
