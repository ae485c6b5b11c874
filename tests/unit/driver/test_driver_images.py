"""The driver tag is <version>-<ID><VERSION_ID>, major-only for rhel/rocky/ol, with the alias
table pointing unsupported OSes at a compatible build; precompiled tags add the kernel."""

from __future__ import annotations

import pytest

from gpu_operator.driver.images import NodeOs, driver_image, os_tag, precompiled_image
from gpu_operator.errors import ConfigError
from gpu_operator.operator.components_v1 import ImageSpec
from gpu_operator.operator.images import image_path


@pytest.mark.parametrize(
    ("os", "expected"),
    [
        pytest.param(NodeOs("rocky", "8.5"), "rocky8", id="rocky is major only"),
        pytest.param(NodeOs("rhel", "9.4"), "rhel9", id="rhel is major only"),
        pytest.param(NodeOs("ol", "9.2"), "ol9", id="oracle linux is major only"),
        pytest.param(NodeOs("ubuntu", "22.04"), "ubuntu22.04", id="ubuntu keeps the full version"),
        pytest.param(NodeOs("centos", "8"), "centos8", id="centos keeps its version"),
        pytest.param(NodeOs("Rocky", "10.1"), "rocky10", id="the ID is lowercased"),
    ],
)
def test_the_driver_os_tag_follows_the_rule(os: NodeOs, expected: str) -> None:
    assert os_tag(os) == expected


def test_the_seed_cluster_gets_the_rocky8_driver_from_the_mirror() -> None:
    base = image_path(
        ImageSpec(repository="homelab.net/nvcr.io/nvidia", image="driver", version="450.156.00"),
        "driver",
        {},
    )
    assert (
        driver_image(base, NodeOs("rocky", "8.5"))
        == "homelab.net/nvcr.io/nvidia/driver:450.156.00-rocky8"
    )


def test_an_alias_points_an_unsupported_os_at_a_compatible_build() -> None:
    assert os_tag(NodeOs("almalinux", "9.4"), {"almalinux": "rhel"}) == "rhel9"
    assert os_tag(NodeOs("debian", "12"), {"debian": "ubuntu:22.04"}) == "ubuntu22.04"
    assert os_tag(NodeOs("rocky", "8.5"), {"almalinux": "rhel"}) == "rocky8"


def test_a_digest_driver_image_gets_no_os_suffix() -> None:
    assert driver_image("r/driver@sha256:ab", NodeOs("rocky", "8.5")) == "r/driver@sha256:ab"


def test_a_precompiled_driver_tag_carries_branch_kernel_and_os() -> None:
    image = precompiled_image(
        "nvcr.io/nvidia/driver:535", "5.15.0-69-generic", NodeOs("ubuntu", "22.04"), None
    )
    assert image == "nvcr.io/nvidia/driver:535-5.15.0-69-generic-ubuntu22.04"


def test_a_node_without_os_labels_has_no_tag() -> None:
    with pytest.raises(ConfigError, match="node OS unknown"):
        os_tag(NodeOs("", "8.5"))
