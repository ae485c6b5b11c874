"""Which image each operand runs: upstream's ``ImagePath`` rule (reference §1.2: repository/
image:version, ``@sha256:`` digests, image alone, env fallbacks), then our built-in defaults.
The driver's OS tag is added by the driver's own rule (``gpu_operator.driver.images``). What a
bare upstream version pin means is decided by the chart from ``upstream_images``'s table."""

from __future__ import annotations

from collections.abc import Mapping

from gpu_operator.errors import ConfigError
from gpu_operator.operator.components_v1 import ImageSpec
from gpu_operator.operator.upstream_images import OUR_IMAGE, OUR_REPOSITORY, OUR_VERSION

OUR_IMAGE_PATH = f"{OUR_REPOSITORY}/{OUR_IMAGE}:{OUR_VERSION}"
__all__ = ["OUR_IMAGE", "OUR_IMAGE_PATH", "OUR_REPOSITORY", "OUR_VERSION"]

# Policy path of the image spec -> the operator-pod env var upstream falls back to.
IMAGE_ENV = {
    "driver": "DRIVER_IMAGE",
    "driver.manager": "DRIVER_MANAGER_IMAGE",
    "toolkit": "CONTAINER_TOOLKIT_IMAGE",
    "devicePlugin": "DEVICE_PLUGIN_IMAGE",
    "dcgm": "DCGM_IMAGE",
    "dcgmExporter": "DCGM_EXPORTER_IMAGE",
    "gfd": "GFD_IMAGE",
    "validator": "VALIDATOR_IMAGE",
    "nodeStatusExporter": "VALIDATOR_IMAGE",
    "operator.initContainer": "CUDA_BASE_IMAGE",
    "migManager": "MIG_MANAGER_IMAGE",
    "draDriver": "DRA_DRIVER_IMAGE",  # ours: the chart sets it to our image
    "gds": "GDS_IMAGE",
    "gdrcopy": "GDRCOPY_IMAGE",
    "vgpuManager": "VGPU_MANAGER_IMAGE",
    "vfioManager": "VFIO_MANAGER_IMAGE",
    "vgpuDeviceManager": "VGPU_DEVICE_MANAGER_IMAGE",
    "sandboxDevicePlugin": "SANDBOX_DEVICE_PLUGIN_IMAGE",
    "kataManager": "KATA_MANAGER_IMAGE",
    "ccManager": "CC_MANAGER_IMAGE",
    "kataSandboxDevicePlugin": "KATA_SANDBOX_DEVICE_PLUGIN_IMAGE",
}

# When neither the policy nor the operator's env names an image: our one image for everything
# we implement; NVIDIA's for the driver and the DCGM host engine (reference §4, v26.7.0).
DEFAULT_IMAGES = {
    "driver": "nvcr.io/nvidia/driver:595.91.07",
    "dcgm": "nvcr.io/nvidia/cloud-native/dcgm:4.6.0-1-ubuntu24.04",
    **dict.fromkeys(
        (
            "driver.manager",
            "toolkit",
            "devicePlugin",
            "dcgmExporter",
            "gfd",
            "validator",
            "nodeStatusExporter",
            "migManager",
            "draDriver",
        ),
        OUR_IMAGE_PATH,
    ),
}


def image_path(spec: ImageSpec | None, path: str, environ: Mapping[str, str]) -> str:
    """The image ``spec`` (at policy ``path``) names, per upstream's rule, else the env var,
    else our default; a half-specified image is a ``ConfigError`` naming the missing field."""
    repository = spec.repository if spec else None
    image = spec.image if spec else None
    version = spec.version if spec else None
    if repository and image and version:
        separator = "@" if version.startswith("sha256:") else ":"
        return f"{repository}/{image}{separator}{version}"
    if image and not repository and not version:
        return image
    if repository or version or image:
        given = [
            k for k, v in (("repository", repository), ("image", image), ("version", version)) if v
        ]
        missing = [k for k in ("repository", "image", "version") if k not in given]
        raise ConfigError(
            f"spec.{path}: {', '.join(given)} set but {', '.join(missing)} missing; "
            "set repository, image and version together, or image alone"
        )
    env = IMAGE_ENV.get(path)
    if env and environ.get(env):
        return environ[env]
    if path in DEFAULT_IMAGES:
        return DEFAULT_IMAGES[path]
    raise ConfigError(f"spec.{path}: no image: set repository, image and version (or ${env})")


def pull_policy(spec: ImageSpec | None) -> str:
    """Upstream's rule: Always, Never or IfNotPresent; anything else is IfNotPresent."""
    value = spec.imagePullPolicy if spec else None
    return value if value in ("Always", "Never", "IfNotPresent") else "IfNotPresent"
