"""Driver pools: names, images and node selection per OS (and kernel), determinism under any
node order, stale pools, and errors that name the node and label."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpu_operator.driver.pools import plan_pools, sanitize_kernel, stale_pools
from gpu_operator.errors import ConfigError
from gpu_operator.nfd import KERNEL_LABEL, OS_ID_LABEL, OS_VERSION_LABEL
from gpu_operator.operator.cluster import NodeFacts

BASE = "nvcr.io/nvidia/driver:595.91.07"


def node(name: str, os_id: str, version: str, kernel: str | None = None) -> NodeFacts:
    labels = {"nvidia.com/gpu.present": "true", OS_ID_LABEL: os_id, OS_VERSION_LABEL: version}
    if kernel:
        labels[KERNEL_LABEL] = kernel
    return NodeFacts(name, labels, {})


MIXED = [
    node("u1", "ubuntu", "22.04"),
    node("u2", "ubuntu", "22.04"),
    node("r1", "rocky", "8.5"),
    node("r2", "rocky", "8.10"),
    node("h1", "rhel", "9.4"),
]


def test_one_os_keeps_the_upstream_name_and_selects_its_os() -> None:
    (pool,) = plan_pools(MIXED[:2], BASE)
    assert pool.name == "nvidia-driver-daemonset"
    assert pool.image == "nvcr.io/nvidia/driver:595.91.07-ubuntu22.04"
    assert pool.nodes == ("u1", "u2")
    assert pool.node_selector == {OS_ID_LABEL: "ubuntu", OS_VERSION_LABEL: "22.04"}
    assert pool.node_affinity() is None


def test_ubuntu_rocky_and_rhel_nodes_get_one_pool_each_with_major_only_rpm_tags() -> None:
    pools = plan_pools(MIXED, BASE)
    assert [(p.name, p.image, p.nodes) for p in pools] == [
        ("nvidia-driver-daemonset-rhel9", f"{BASE}-rhel9", ("h1",)),
        ("nvidia-driver-daemonset-rocky8", f"{BASE}-rocky8", ("r1", "r2")),
        ("nvidia-driver-daemonset-ubuntu22.04", f"{BASE}-ubuntu22.04", ("u1", "u2")),
    ]


def test_a_pool_of_two_os_versions_selects_each_pair_and_nothing_else() -> None:
    rocky = plan_pools(MIXED, BASE)[1]
    assert rocky.node_selector == {}
    terms = rocky.node_affinity()["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]  # type: ignore[index]
    pairs = [
        tuple(e["values"][0] for e in t["matchExpressions"]) for t in terms["nodeSelectorTerms"]
    ]
    assert pairs == [("rocky", "8.10"), ("rocky", "8.5")]


def test_an_alias_points_alma_nodes_at_the_rhel_build() -> None:
    nodes = [node("a1", "almalinux", "9.4"), node("h1", "rhel", "9.2")]
    (pool,) = plan_pools(nodes, BASE, aliases={"almalinux": "rhel"})
    assert (pool.name, pool.image, pool.nodes) == (
        "nvidia-driver-daemonset",
        f"{BASE}-rhel9",
        ("a1", "h1"),
    )


@given(st.randoms())
def test_the_pools_never_depend_on_node_order(rnd: random.Random) -> None:
    shuffled = list(MIXED)
    rnd.shuffle(shuffled)
    assert plan_pools(shuffled, BASE) == plan_pools(MIXED, BASE)


def test_precompiled_pools_are_per_kernel_and_os_with_upstream_names_and_tags() -> None:
    nodes = [
        node("a", "ubuntu", "22.04", "5.15.0-69-generic"),
        node("b", "ubuntu", "22.04", "5.15.0-69-generic"),
        node("c", "ubuntu", "22.04", "5.15.0-91-generic"),
    ]
    pools = plan_pools(nodes, "nvcr.io/nvidia/driver:535", precompiled=True)
    assert [(p.name, p.image, p.nodes) for p in pools] == [
        (
            "nvidia-driver-daemonset-5.15.0-69-generic-ubuntu22.04",
            "nvcr.io/nvidia/driver:535-5.15.0-69-generic-ubuntu22.04",
            ("a", "b"),
        ),
        (
            "nvidia-driver-daemonset-5.15.0-91-generic-ubuntu22.04",
            "nvcr.io/nvidia/driver:535-5.15.0-91-generic-ubuntu22.04",
            ("c",),
        ),
    ]
    assert pools[0].node_selector[KERNEL_LABEL] == "5.15.0-69-generic"
    assert pools[0].labels() == {"nvidia.com/precompiled": "true"}


def test_kernel_names_lose_the_arch_and_underscores() -> None:
    assert sanitize_kernel("5.14.0-427.13.1.el9_4.x86_64") == "5.14.0-427.13.1.el9.4"


def test_a_digest_image_is_used_unchanged() -> None:
    (pool,) = plan_pools(MIXED[:1], "nvcr.io/nvidia/driver@sha256:abc")
    assert pool.image == "nvcr.io/nvidia/driver@sha256:abc"


def test_pools_that_disappear_are_named_for_deletion_and_foreign_daemonsets_are_not() -> None:
    pools = plan_pools(MIXED[:2], BASE)
    existing = ["nvidia-driver-daemonset-rocky8", "nvidia-driver-daemonset", "nvidia-dcgm"]
    assert stale_pools(existing, pools) == ["nvidia-driver-daemonset-rocky8"]


@pytest.mark.parametrize(
    ("nodes", "precompiled", "message"),
    [
        pytest.param(
            [NodeFacts("bare", {"nvidia.com/gpu.present": "true"}, {})],
            False,
            r"GPU node bare: no OS labels \(feature.node.kubernetes.io/system-os_release.ID",
            id="no OS labels",
        ),
        pytest.param(
            [node("u1", "ubuntu", "22.04")],
            True,
            r"GPU node u1: driver.usePrecompiled needs the .*kernel-version.full",
            id="precompiled without a kernel",
        ),
    ],
)
def test_missing_labels_are_an_error_naming_node_and_label(
    nodes: list[NodeFacts], precompiled: bool, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        plan_pools(nodes, BASE, precompiled=precompiled)


def test_non_gpu_nodes_are_not_in_any_pool() -> None:
    cpu = NodeFacts("cpu", {OS_ID_LABEL: "debian", OS_VERSION_LABEL: "12"}, {})
    assert plan_pools([cpu, *MIXED[:1]], BASE)[0].nodes == ("u1",)
