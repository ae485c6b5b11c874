"""Image resolution follows upstream's ImagePath rule, then the operator's env, then our
defaults; the driver tag is <version>-<ID><VERSION_ID>, major-only for rhel/rocky/ol, with the
alias table pointing unsupported OSes at a compatible build."""

from __future__ import annotations

import pytest

from gpu_operator.errors import ConfigError
from gpu_operator.operator.components_v1 import ImageSpec
from gpu_operator.operator.images import (
    DEFAULT_IMAGES,
    NodeOs,
    driver_image,
    image_path,
    os_tag,
    precompiled_image,
    pull_policy,
)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(
            ImageSpec(
                repository="homelab.net/nvcr.io/nvidia", image="driver", version="450.156.00"
            ),
            "homelab.net/nvcr.io/nvidia/driver:450.156.00",
            id="repository, image and version make repository/image:version",
        ),
        pytest.param(
            ImageSpec(repository="r.io/n", image="driver", version="sha256:abc"),
            "r.io/n/driver@sha256:abc",
            id="a sha256 version becomes a digest reference",
        ),
        pytest.param(
            ImageSpec(image="r.io/n/driver@sha256:abc"),
            "r.io/n/driver@sha256:abc",
            id="image alone is used as given",
        ),
    ],
)
def test_an_image_spec_resolves_as_upstream(spec: ImageSpec, expected: str) -> None:
    assert image_path(spec, "driver", {"DRIVER_IMAGE": "ignored"}) == expected


@pytest.mark.parametrize(
    ("spec", "missing"),
    [
        pytest.param(ImageSpec(repository="r.io", version="1"), "image", id="no image"),
        pytest.param(ImageSpec(repository="r.io", image="i"), "version", id="no version"),
        pytest.param(ImageSpec(image="i", version="1"), "repository", id="no repository"),
    ],
)
def test_a_half_specified_image_is_an_error_naming_the_missing_field(
    spec: ImageSpec, missing: str
) -> None:
    with pytest.raises(ConfigError, match=rf"spec\.devicePlugin: .* but {missing} missing"):
        image_path(spec, "devicePlugin", {})


def test_an_empty_spec_falls_back_to_the_operator_env_var() -> None:
    env = {"DEVICE_PLUGIN_IMAGE": "mirror.local/k8s-device-plugin:v0.20.0"}
    assert image_path(None, "devicePlugin", env) == "mirror.local/k8s-device-plugin:v0.20.0"
    assert image_path(ImageSpec(), "nodeStatusExporter", {"VALIDATOR_IMAGE": "v:1"}) == "v:1"


def test_without_spec_or_env_the_driver_is_nvidias_and_the_operands_are_ours() -> None:
    assert image_path(None, "driver", {}).startswith("nvcr.io/nvidia/driver:")
    assert image_path(None, "dcgm", {}).startswith("nvcr.io/nvidia/cloud-native/dcgm:")
    assert image_path(None, "devicePlugin", {}) == DEFAULT_IMAGES["validator"]


def test_an_image_without_any_default_is_an_error_naming_the_env_var() -> None:
    with pytest.raises(ConfigError, match=r"spec\.gds: no image.*\$GDS_IMAGE"):
        image_path(None, "gds", {})


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("Always", "Always"),
        ("Never", "Never"),
        ("IfNotPresent", "IfNotPresent"),
        ("always", "IfNotPresent"),
        (None, "IfNotPresent"),
    ],
)
def test_a_pull_policy_outside_the_enum_becomes_if_not_present(
    given: str | None, expected: str
) -> None:
    assert pull_policy(ImageSpec(imagePullPolicy=given)) == expected


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
