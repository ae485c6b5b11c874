"""Image resolution follows upstream's ImagePath rule, then the operator's env, then our
defaults (the driver's OS tag rule is tested in tests/unit/driver/test_driver_images.py)."""

from __future__ import annotations

import pytest

from gpu_operator.errors import ConfigError
from gpu_operator.operator.components_v1 import ImageSpec
from gpu_operator.operator.images import DEFAULT_IMAGES, image_path, pull_policy


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
