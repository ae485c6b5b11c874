"""Driver pools from Node objects read back from the API emulator: an Ubuntu 22.04 + Rocky 8.5 +
RHEL 9.4 cluster gets three pools with the right tags (and the operator renders the same driver
DaemonSets), any list order gives the same pools, removed pools are named for deletion,
precompiled pools follow kernels, and ``preflight --from-cluster`` reads the same nodes."""

from __future__ import annotations

import random
from pathlib import Path

from lightkube import Client
from lightkube.resources.core_v1 import Node
from typer.testing import CliRunner

from gpu_operator.cli import app
from gpu_operator.driver.pools import stale_pools
from gpu_operator.kube import node_dicts as list_nodes
from gpu_operator.operator.cluster import node_facts
from gpu_operator.operator.desired import desired_state
from gpu_operator.operator.policy_v1 import parse_spec
from gpu_operator.operator.render.driver import pools as driver_pools
from gpu_operator.sandbox.apiserver import ServerThread
from helpers.driver_cluster import Cluster

OS_ID = "feature.node.kubernetes.io/system-os_release.ID"
OS_VERSION = "feature.node.kubernetes.io/system-os_release.VERSION_ID"
KERNEL = "feature.node.kubernetes.io/kernel-version.full"
PCI = "feature.node.kubernetes.io/pci-10de.present"
SPEC = {"driver": {"repository": "nvcr.io/nvidia", "image": "driver", "version": "595.91.07"}}


def gpu_node(cluster: Cluster, name: str, os_id: str, version: str, kernel: str = "") -> None:
    labels = {PCI: "true", OS_ID: os_id, OS_VERSION: version}
    if kernel:
        labels[KERNEL] = kernel
    cluster.node(name, labels)


def mixed(cluster: Cluster) -> None:
    gpu_node(cluster, "ubuntu-a", "ubuntu", "22.04")
    gpu_node(cluster, "ubuntu-b", "ubuntu", "22.04")
    gpu_node(cluster, "rocky-a", "rocky", "8.5")
    gpu_node(cluster, "rhel-a", "rhel", "9.4")
    cluster.node("cpu-a", {OS_ID: "debian", OS_VERSION: "12"})


def test_three_operating_systems_get_three_pools_that_the_operator_renders_alike(
    client: Client, cluster: Cluster
) -> None:
    mixed(cluster)
    spec = parse_spec(SPEC, source="test")
    facts = [node_facts(n) for n in list_nodes(client)]
    pools = driver_pools(spec, facts, {})
    assert [(p.name, p.image, p.nodes) for p in pools] == [
        ("nvidia-driver-daemonset-rhel9", "nvcr.io/nvidia/driver:595.91.07-rhel9", ("rhel-a",)),
        ("nvidia-driver-daemonset-rocky8", "nvcr.io/nvidia/driver:595.91.07-rocky8", ("rocky-a",)),
        (
            "nvidia-driver-daemonset-ubuntu22.04",
            "nvcr.io/nvidia/driver:595.91.07-ubuntu22.04",
            ("ubuntu-a", "ubuntu-b"),
        ),
    ]
    rendered = {
        o["metadata"]["name"]: o["spec"]["template"]["spec"]["containers"][0]["image"]
        for o in desired_state(spec, facts).objects()
        if o["kind"] == "DaemonSet" and o["metadata"]["name"].startswith("nvidia-driver")
    }
    assert rendered == {p.name: p.image for p in pools}


def test_the_pools_do_not_depend_on_the_order_the_api_lists_nodes(
    client: Client, cluster: Cluster
) -> None:
    mixed(cluster)
    spec = parse_spec(SPEC, source="test")
    listed = list_nodes(client)
    expected = driver_pools(spec, [node_facts(n) for n in listed], {})
    for seed in range(5):
        random.Random(seed).shuffle(listed)
        assert driver_pools(spec, [node_facts(n) for n in listed], {}) == expected


def test_removing_nodes_names_the_pools_to_delete_and_one_pool_keeps_the_upstream_name(
    client: Client, cluster: Cluster
) -> None:
    mixed(cluster)
    spec = parse_spec(SPEC, source="test")
    before = driver_pools(spec, [node_facts(n) for n in list_nodes(client)], {})
    client.delete(Node, "rocky-a")
    client.delete(Node, "rhel-a")
    after = driver_pools(spec, [node_facts(n) for n in list_nodes(client)], {})
    assert [p.name for p in after] == ["nvidia-driver-daemonset"]
    assert stale_pools([p.name for p in before], after) == [
        "nvidia-driver-daemonset-rhel9",
        "nvidia-driver-daemonset-rocky8",
        "nvidia-driver-daemonset-ubuntu22.04",
    ]


def test_precompiled_drivers_get_one_pool_per_kernel(client: Client, cluster: Cluster) -> None:
    gpu_node(cluster, "a", "ubuntu", "22.04", "5.15.0-69-generic")
    gpu_node(cluster, "b", "ubuntu", "22.04", "5.15.0-91-generic")
    spec = parse_spec(
        {"driver": {**SPEC["driver"], "version": "535", "usePrecompiled": True}}, source="t"
    )
    pools = driver_pools(spec, [node_facts(n) for n in list_nodes(client)], {})
    assert [(p.name, p.image) for p in pools] == [
        (
            "nvidia-driver-daemonset-5.15.0-69-generic-ubuntu22.04",
            "nvcr.io/nvidia/driver:535-5.15.0-69-generic-ubuntu22.04",
        ),
        (
            "nvidia-driver-daemonset-5.15.0-91-generic-ubuntu22.04",
            "nvcr.io/nvidia/driver:535-5.15.0-91-generic-ubuntu22.04",
        ),
    ]


def test_preflight_reads_the_nodes_from_the_cluster(
    cluster: Cluster, server_thread: ServerThread, tmp_path: Path
) -> None:
    mixed(cluster)
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "apiVersion: nvidia.com/v1\nkind: ClusterPolicy\nmetadata: {name: cluster-policy}\n"
        "spec:\n  driver: {repository: nvcr.io/nvidia, image: driver, version: 595.91.07}\n"
    )
    args = ["preflight", "-f", str(policy), "--from-cluster", "--server", server_thread.url]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert [line.split()[:2] for line in result.stdout.splitlines()] == [
        ["nvidia-driver-daemonset-rhel9", "nvcr.io/nvidia/driver:595.91.07-rhel9"],
        ["nvidia-driver-daemonset-rocky8", "nvcr.io/nvidia/driver:595.91.07-rocky8"],
        ["nvidia-driver-daemonset-ubuntu22.04", "nvcr.io/nvidia/driver:595.91.07-ubuntu22.04"],
    ]
