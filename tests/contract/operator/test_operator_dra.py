"""The operator and ``draDriver`` against the API server emulator over real HTTP: on a 1.37
cluster it creates the DRA driver's DaemonSet and the DeviceClasses, writes nothing more at
steady state and removes them when the driver is turned off; on a cluster that says it is 1.33
(``GPU_OPERATOR_SANDBOX_KUBERNETES_VERSION``), or with the device plugin on the same nodes, it
refuses: one line in the policy's Error condition and a ReconcileFailed Event, nothing applied."""

from __future__ import annotations

from typing import Any

import pytest
from lightkube import AsyncClient
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.apps_v1 import DaemonSet
from lightkube.resources.core_v1 import Event, Namespace, Node
from lightkube.resources.resource_v1 import DeviceClass

from gpu_operator.kube import RetryPolicy
from gpu_operator.operator.controller import ClusterPolicy, Controller, ControllerSettings
from gpu_operator.operator.crd import build_crd
from gpu_operator.operator.policy_v1 import REQUIRED_SECTIONS
from gpu_operator.sandbox.apiserver.discovery import VERSION_ENV

pytestmark = pytest.mark.timeout(30)
NS = "gpu-operator"
FAST = RetryPolicy(attempts=4, base_delay_s=0.01, max_delay_s=0.05)
DS = "nvidia-dra-driver-gpu-kubelet-plugin"
PCI = {"feature.node.kubernetes.io/pci-10de.present": "true"}


async def cluster(aclient: AsyncClient, spec: dict[str, Any]) -> Controller:
    await aclient.create(CustomResourceDefinition.from_dict(build_crd()))
    await aclient.create(Namespace(metadata=ObjectMeta(name=NS)))
    for name in ("gpu-1", "gpu-2"):
        await aclient.create(Node(metadata=ObjectMeta(name=name, labels=dict(PCI))))
    policy = {
        "apiVersion": "nvidia.com/v1",
        "kind": "ClusterPolicy",
        "metadata": {"name": "cluster-policy"},
        "spec": {**{s: {} for s in REQUIRED_SECTIONS}, **spec},
    }
    await aclient.create(ClusterPolicy.from_dict(policy))
    c = Controller(
        aclient,
        ControllerSettings(namespace=NS, retry=FAST, debounce_s=0.01),
        now=lambda: "2026-12-07T10:00:00Z",
    )
    await c.sync()
    return c


async def daemonsets(aclient: AsyncClient) -> set[str]:
    return {str(ds.metadata.name) async for ds in aclient.list(DaemonSet, namespace=NS)}


async def device_classes(aclient: AsyncClient) -> set[str]:
    return {str(dc.metadata.name) async for dc in aclient.list(DeviceClass)}


async def error_and_events(aclient: AsyncClient) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    status = (await aclient.get(ClusterPolicy, "cluster-policy")).get("status") or {}
    error = next(c for c in status["conditions"] if c["type"] == "Error")
    events = [
        (str(e.reason), str(e.message)) async for e in aclient.list(Event, namespace="default")
    ]
    return error, events


DRA_ONLY = {"devicePlugin": {"enabled": False}, "draDriver": {"enabled": True}}


async def test_on_a_1_37_cluster_the_driver_and_classes_are_created_and_kept_quiet(
    aclient: AsyncClient,
) -> None:
    c = await cluster(aclient, DRA_ONLY)
    result = await c.reconcile_once()
    assert result.failure is None
    assert DS in await daemonsets(aclient)
    assert "nvidia-device-plugin-daemonset" not in await daemonsets(aclient)
    assert await device_classes(aclient) == {"gpu.nvidia.com", "mig.nvidia.com"}
    node = await aclient.get(Node, "gpu-1")
    assert node.metadata.labels["nvidia.com/gpu.deploy.dra-driver"] == "true"
    writes = c.metrics.api_writes_total
    again = await c.reconcile_once()
    assert [o["metadata"]["name"] for o in again.applies] == []
    assert c.metrics.api_writes_total - writes <= 1  # at most the status write
    steady = await c.reconcile_once()
    assert steady.writes == 0

    body = dict(await aclient.get(ClusterPolicy, "cluster-policy"))
    body["spec"] = {**{s: {} for s in REQUIRED_SECTIONS}, "devicePlugin": {"enabled": True}}
    await aclient.replace(ClusterPolicy.from_dict(body))
    await c.sync()
    await c.reconcile_once()
    assert DS not in await daemonsets(aclient)
    assert await device_classes(aclient) == set()


async def test_a_1_33_cluster_is_refused_with_one_line_and_nothing_applied(
    aclient: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(VERSION_ENV, "1.33")
    c = await cluster(aclient, DRA_ONLY)
    result = await c.reconcile_once()
    line = (
        "clusterpolicy/cluster-policy: draDriver.enabled: Kubernetes 1.33 is older than 1.34, "
        "where DRA (resource.k8s.io/v1) is GA: upgrade the cluster or set draDriver.enabled=false"
    )
    assert result.failure == line
    error, events = await error_and_events(aclient)
    assert (error["status"], error["reason"], error["message"]) == ("True", "ReconcileFailed", line)
    assert ("ReconcileFailed", line) in events
    assert await daemonsets(aclient) == set()
    assert await device_classes(aclient) == set()
    node = await aclient.get(Node, "gpu-1")
    assert "nvidia.com/gpu.deploy.dra-driver" not in (node.metadata.labels or {})


async def test_the_device_plugin_on_the_same_nodes_is_refused_and_nothing_applied(
    aclient: AsyncClient,
) -> None:
    c = await cluster(aclient, {"draDriver": {"enabled": True}})
    result = await c.reconcile_once()
    assert result.failure is not None
    assert (
        "draDriver.enabled with devicePlugin.enabled: both would serve every GPU node's GPUs"
        in (result.failure)
    )
    error, events = await error_and_events(aclient)
    assert error["message"] == result.failure
    assert ("ReconcileFailed", result.failure) in events
    assert await daemonsets(aclient) == set()
    assert await device_classes(aclient) == set()
