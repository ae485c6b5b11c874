"""The operator refuses ``draDriver.enabled`` with one line naming the field and what to do when
the cluster is older than Kubernetes 1.34, does not serve ``resource.k8s.io/v1``, or the device
plugin would serve the same GPUs (no ``draDriver.nodeSelector`` split, or one that still selects
nodes where the device plugin runs); a refused policy is a failed pass that applies nothing."""

from __future__ import annotations

from typing import Any

import pytest

from gpu_operator.operator.cluster import NodeFacts
from gpu_operator.operator.dra_refusals import ApiFacts, parse_version, refusals
from gpu_operator.operator.policy_v1 import parse_spec
from gpu_operator.operator.reconcile import Observed, plan

PCI = {"feature.node.kubernetes.io/pci-10de.present": "true"}
DP = "nvidia.com/gpu.deploy.device-plugin"
DRA = "nvidia.com/gpu.deploy.dra-driver"
NEW = ApiFacts((1, 34), True)


def node(name: str, **labels: str) -> NodeFacts:
    return NodeFacts(name=name, labels={**PCI, DP: "true", DRA: "true", **labels}, annotations={})


def refused(
    spec: dict[str, Any], api: ApiFacts = NEW, nodes: tuple[NodeFacts, ...] = ()
) -> list[str]:
    return refusals(parse_spec(spec, source="t"), nodes, api)


DRA_ONLY = {"devicePlugin": {"enabled": False}, "draDriver": {"enabled": True}}


@pytest.mark.parametrize(
    ("info", "version"),
    [
        ({"major": "1", "minor": "33"}, (1, 33)),
        ({"major": "1", "minor": "34+"}, (1, 34)),  # as GKE/EKS write it
        ({"gitVersion": "v1.35.2-eks-1"}, (1, 35)),
        ({}, None),
    ],
)
def test_the_server_version_is_read_as_providers_write_it(
    info: dict[str, str], version: tuple[int, int] | None
) -> None:
    assert parse_version(info) == version


def test_off_is_never_refused() -> None:
    assert refused({}, ApiFacts((1, 20), False)) == []


def test_kubernetes_older_than_1_34_is_refused_with_one_line() -> None:
    assert refused(DRA_ONLY, ApiFacts((1, 33), True)) == [
        "draDriver.enabled: Kubernetes 1.33 is older than 1.34, where DRA (resource.k8s.io/v1) "
        "is GA: upgrade the cluster or set draDriver.enabled=false"
    ]
    assert refused(DRA_ONLY, ApiFacts((1, 34), True)) == []


def test_a_server_without_resource_k8s_io_v1_is_refused() -> None:
    (line,) = refused(DRA_ONLY, ApiFacts((1, 35), False))
    assert line.startswith("draDriver.enabled: the API server does not serve resource.k8s.io/v1")


def test_an_unknown_server_is_not_refused() -> None:  # gpu-operator render from files
    assert refused(DRA_ONLY, ApiFacts()) == []


def test_the_device_plugin_on_every_node_with_the_dra_driver_is_refused() -> None:
    (line,) = refused({"draDriver": {"enabled": True}})
    assert line == (
        "draDriver.enabled with devicePlugin.enabled: both would serve every GPU node's GPUs; "
        "set devicePlugin.enabled=false, or draDriver.nodeSelector to nodes labelled "
        "nvidia.com/gpu.deploy.device-plugin=false"
    )


def test_a_node_selector_split_is_accepted_and_an_overlap_names_the_nodes() -> None:
    spec = {"draDriver": {"enabled": True, "nodeSelector": {DP: "false"}}}
    split = (node("gpu-dp"), node("gpu-dra", **{DP: "false"}))
    assert refused(spec, nodes=split) == []
    loose = {"draDriver": {"enabled": True, "nodeSelector": {"pool": "a"}}}
    (line,) = refused(loose, nodes=(node("gpu-1", pool="a"), node("gpu-2", pool="b")))
    assert "both would serve the GPUs of node gpu-1 (" in line
    assert "gpu-2" not in line


def test_a_node_paused_for_the_dra_driver_does_not_count() -> None:
    spec = {"draDriver": {"enabled": True, "nodeSelector": {"pool": "a"}}}
    assert refused(spec, nodes=(node("gpu-1", pool="a", **{DRA: "false"}),)) == []


def policy(spec: dict[str, Any]) -> dict[str, Any]:
    meta = {"name": "cluster-policy", "uid": "u1", "generation": 2, "creationTimestamp": "t"}
    return {"metadata": meta, "spec": spec}


def test_a_refused_policy_applies_nothing_and_says_why_in_its_status_and_an_event() -> None:
    gpu = NodeFacts(name="gpu-1", labels=dict(PCI), annotations={})
    result = plan(
        Observed(policies=[policy(DRA_ONLY)], nodes=[gpu], owned={}, api=ApiFacts((1, 33), True))
    )
    assert not result.applies
    assert not result.node_patches
    assert not result.deletes
    status = result.statuses["cluster-policy"]
    assert status["state"] == "notReady"
    error = next(c for c in status["conditions"] if c["type"] == "Error")
    assert error["status"] == "True"
    assert error["message"] == (
        "clusterpolicy/cluster-policy: draDriver.enabled: Kubernetes 1.33 is older than 1.34, "
        "where DRA (resource.k8s.io/v1) is GA: upgrade the cluster or set draDriver.enabled=false"
    )
    (event,) = result.events
    assert (event.reason, event.type, event.message) == (
        "ReconcileFailed",
        "Warning",
        error["message"],
    )


def test_the_same_policy_on_a_1_34_cluster_renders_the_driver() -> None:
    gpu = NodeFacts(name="gpu-1", labels=dict(PCI), annotations={})
    result = plan(Observed(policies=[policy(DRA_ONLY)], nodes=[gpu], owned={}, api=NEW))
    assert result.failure is None
    names = {o["metadata"]["name"] for o in result.applies}
    assert {"nvidia-dra-driver-gpu-kubelet-plugin", "gpu.nvidia.com", "mig.nvidia.com"} <= names
