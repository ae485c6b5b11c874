"""NVIDIA's operand images as the sandbox plays them. A user who pins an upstream version
(``--set toolkit.version=1.7.2-ubi8``) gets NVIDIA's image rendered; the sandbox has no
container engine, so it runs our implementation of that image's contract: the entry points the
image ships (``driver-manager`` in ``k8s-driver-manager``, ``nvidia-toolkit`` in
``container-toolkit`` …) map to our subcommands, and a shell script gets its host paths placed
under the node's root. An entry point the image does not ship is a clear crash, never a hang.
Pure: decides, runs nothing."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

SHELLS = frozenset({"sh", "bash", "/bin/sh", "/bin/bash", "/usr/bin/sh", "/usr/bin/bash"})


@dataclass(frozen=True)
class UpstreamImage:
    """One of NVIDIA's operand images: the executables it ships (by base name) and the one
    its ``ENTRYPOINT`` runs when a pod gives no ``command``."""

    entry_points: frozenset[str]
    default: str | None


UPSTREAM_IMAGES: Mapping[str, UpstreamImage] = {
    "k8s-driver-manager": UpstreamImage(frozenset({"driver-manager"}), "driver-manager"),
    "container-toolkit": UpstreamImage(frozenset({"nvidia-toolkit"}), "nvidia-toolkit"),
    "gpu-operator-validator": UpstreamImage(
        frozenset({"nvidia-validator", "vectorAdd"}), "nvidia-validator"
    ),
    "k8s-device-plugin": UpstreamImage(
        frozenset({"nvidia-device-plugin", "gpu-feature-discovery", "config-manager"}),
        "nvidia-device-plugin",
    ),
    "gpu-feature-discovery": UpstreamImage(
        frozenset({"gpu-feature-discovery", "config-manager"}), "gpu-feature-discovery"
    ),
    "k8s-mig-manager": UpstreamImage(
        frozenset({"nvidia-mig-manager", "nvidia-mig-parted"}), "nvidia-mig-manager"
    ),
    "dcgm-exporter": UpstreamImage(frozenset({"dcgm-exporter"}), "dcgm-exporter"),
}
"""Images whose contract the sandbox plays with our implementation (``driver``, ``dcgm`` and
``cuda`` have behaviours of their own: a simulated driver load, the host engine, a workload)."""


def image_name(image: str) -> str:
    """``nvcr.io/nvidia/k8s/container-toolkit:1.7.2-ubi8`` → ``container-toolkit``."""
    return image.rsplit("/", 1)[-1].split("@")[0].split(":")[0]


@dataclass(frozen=True)
class Unplayable:
    """Why a container of an upstream image can't run here (its entry point is unknown)."""

    message: str


def entry_argv(image: str, command: list[str], args: list[str]) -> list[str] | Unplayable:
    """The argv an upstream image's container runs (``ENTRYPOINT`` when no ``command``), or why
    the sandbox can't play it."""
    name = image_name(image)
    known = UPSTREAM_IMAGES[name]
    argv = [*command, *args] if command else [*([known.default] if known.default else []), *args]
    if not argv:
        return Unplayable(f"image {image}: no command and no entry point the sandbox knows")
    head = argv[0]
    if head in SHELLS or head.rsplit("/", 1)[-1] in known.entry_points:
        return [head if head in SHELLS else head.rsplit("/", 1)[-1], *argv[1:]]
    return Unplayable(
        f"image {image} has no entry point {head!r} the sandbox can play "
        f"(NVIDIA's {name} ships: {', '.join(sorted(known.entry_points))})"
    )


def remap_script(argv: list[str], mounts: Mapping[str, str]) -> list[str]:
    """``sh -c SCRIPT``: the container's mount paths inside SCRIPT become the node's local
    directories (a local shell sees the machine's ``/run``, not the pod's)."""
    if len(argv) < 3 or argv[0] not in SHELLS or argv[1] != "-c":
        return argv
    script = argv[2]
    for path in sorted((p for p in mounts if p != "/"), key=len, reverse=True):
        pattern = re.compile(re.escape(path) + r"(?=[/\s'\";)]|$)")
        script = pattern.sub(mounts[path].replace("\\", "\\\\"), script)
    return [argv[0], "-c", script, *argv[3:]]
