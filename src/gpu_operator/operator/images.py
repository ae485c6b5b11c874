"""Which image each operand runs: upstream's ``ImagePath`` rule (reference §1.2: repository/
image:version, ``@sha256:`` digests, image alone, env fallbacks), then our built-in defaults;
and the driver tag rule of §3.4 with the OS alias table (``driver.osAliases``). What a bare
upstream version pin means is decided by the chart from ``upstream_images``'s table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

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
        ),
        OUR_IMAGE_PATH,
    ),
}

# OS IDs whose driver builds are tagged by major version only (v26.7.0 / main).
MAJOR_ONLY_OS = frozenset({"rhel", "rocky", "ol"})


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


@dataclass(frozen=True, order=True)
class NodeOs:
    """A node's OS as NFD labels it (``system-os_release.ID`` / ``.VERSION_ID``)."""

    id: str
    version_id: str


def os_tag(os: NodeOs, aliases: Mapping[str, str] | None = None) -> str:
    """The driver tag suffix for ``os``: ``rocky8`` for Rocky 8.5, ``ubuntu22.04`` for Ubuntu.

    An alias maps a node's OS ID to another build: ``almalinux: rhel`` (keep the node's
    version) or ``debian: "ubuntu:22.04"`` (a fixed version too).
    """
    os_id, version = os.id.lower(), os.version_id
    target = (aliases or {}).get(os_id)
    if target:
        os_id, _, pinned = target.partition(":")
        version = pinned or version
    if not os_id or not version:
        raise ConfigError(f"node OS unknown (ID={os.id!r}, VERSION_ID={os.version_id!r})")
    if os_id in MAJOR_ONLY_OS:
        version = version.split(".")[0]
    return f"{os_id}{version}"


def driver_image(base: str, os: NodeOs, aliases: Mapping[str, str] | None = None) -> str:
    """``<base>-<ostag>``; a digest (``sha256:``) is used unchanged."""
    if "sha256:" in base:
        return base
    return f"{base}-{os_tag(os, aliases)}"


def precompiled_image(base: str, kernel: str, os: NodeOs, aliases: Mapping[str, str] | None) -> str:
    """``<repo>/<image>:<branch>-<kernel>-<ostag>`` (reference §3.5)."""
    if "sha256:" in base:
        return base
    return f"{base}-{kernel}-{os_tag(os, aliases)}"
