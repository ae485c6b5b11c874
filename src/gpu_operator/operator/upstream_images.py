"""NVIDIA's image of each operand, as one table: what an upstream version pin means.

A user of NVIDIA's chart pins an operand by version alone (``--set toolkit.version=1.7.2-ubi8``);
upstream that names NVIDIA's image of that operand at that tag. Our chart applies the same rule
from this table (the chart's ``upstream-images.yaml`` is generated from it by
``python -m gpu_operator.operator.upstream_images``), so a version pin runs NVIDIA's image with
the user's tag, or ours with ours — never NVIDIA's repository with our tag, nor our image with
NVIDIA's tag. ``operator.version`` is the exception:
we are the operator, so our operator image stays, and the chart says so (NOTES, and an
annotation on the ClusterPolicy that the operator turns into Events and that ``gpu-operator
images``/``preflight`` print).

The renderers ask :func:`is_ours` whether a container runs our image, because NVIDIA's images
lack our entry points (``gpu-operator wait-for``): those containers get upstream's command."""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from gpu_operator import __version__

OUR_REPOSITORY = "ghcr.io/gpu-operator"
OUR_IMAGE = "gpu-operator"
OUR_VERSION = f"v{__version__}"
# Every tag of ours that was ever published (a version pin outside this list is not ours);
# the running version is always one.
PUBLISHED = ("v0.1.0",)
OUR_RELEASES = tuple(dict.fromkeys((*PUBLISHED, OUR_VERSION)))

# Any repository under NVIDIA's registry path, mirrors included (homelab.net/nvcr.io/nvidia/…).
NVIDIA_REGISTRY_PATH = "nvcr.io/nvidia"

# The ClusterPolicy annotation the chart writes: one line per image decision worth telling.
NOTES_ANNOTATION = "gpu-operator.nvidia.com/image-notes"


@dataclass(frozen=True)
class NvidiaImage:
    """NVIDIA's image of an operand for versions from ``since`` on (``""``: every version)."""

    repository: str
    image: str
    since: str = ""
    default: str = ""
    """NVIDIA's default tag (v26.7.0) when a repository/image is pinned without a version;
    empty where only our image may stand in (the validator: NVIDIA's chart takes its appVersion)."""


# Values/policy key -> NVIDIA's images of that operand, oldest first (reference §4: default
# operand versions by release; the GFD and validator images moved in v24.3.0 / v25.10.0).
UPSTREAM_IMAGES: dict[str, tuple[NvidiaImage, ...]] = {
    "driver": (NvidiaImage("nvcr.io/nvidia", "driver", default="595.91.07"),),
    "driver.manager": (
        NvidiaImage("nvcr.io/nvidia/cloud-native", "k8s-driver-manager", default="v0.12.0"),
    ),
    "toolkit": (NvidiaImage("nvcr.io/nvidia/k8s", "container-toolkit", default="v1.20.0"),),
    "devicePlugin": (NvidiaImage("nvcr.io/nvidia", "k8s-device-plugin", default="v0.20.0"),),
    "gfd": (
        NvidiaImage("nvcr.io/nvidia", "gpu-feature-discovery"),
        NvidiaImage("nvcr.io/nvidia", "k8s-device-plugin", since="0.15.0", default="v0.20.0"),
    ),
    "migManager": (
        NvidiaImage("nvcr.io/nvidia/cloud-native", "k8s-mig-manager", default="v0.15.0"),
    ),
    "dcgmExporter": (
        NvidiaImage("nvcr.io/nvidia/k8s", "dcgm-exporter", default="4.6.0-4.8.3-distroless"),
    ),
    "dcgm": (NvidiaImage("nvcr.io/nvidia/cloud-native", "dcgm", default="4.6.0-1-ubuntu24.04"),),
    "validator": (
        NvidiaImage("nvcr.io/nvidia/cloud-native", "gpu-operator-validator"),
        NvidiaImage("nvcr.io/nvidia", "gpu-operator", since="25.10.0"),
    ),
    "nodeStatusExporter": (
        NvidiaImage("nvcr.io/nvidia/cloud-native", "gpu-operator-validator"),
        NvidiaImage("nvcr.io/nvidia", "gpu-operator", since="25.10.0"),
    ),
    "operator.initContainer": (NvidiaImage("nvcr.io/nvidia", "cuda", default="13.0.1-base-ubi9"),),
}
# NVIDIA's operator image: never run by our chart (we are the operator).
NVIDIA_OPERATOR = NvidiaImage("nvcr.io/nvidia", "gpu-operator")

_NUMBERS = re.compile(r"[0-9]+(?:\.[0-9]+)*")


def _numbers(version: str) -> tuple[int, ...] | None:
    found = _NUMBERS.search(version)
    return tuple(int(n) for n in found.group(0).split(".")) if found else None


def at_least(version: str, since: str) -> bool:
    """Whether ``version``'s leading X.Y.Z (``v0.2.0-ubi8`` → 0.2.0) is at least ``since``; a
    version without a number (``latest``) counts as the newest."""
    have = _numbers(version)
    if not since or have is None:
        return True
    want = tuple(int(n) for n in since.split("."))
    width = max(len(have), len(want))
    return have + (0,) * (width - len(have)) >= want + (0,) * (width - len(want))


def nvidia_image(key: str, version: str) -> NvidiaImage:
    """NVIDIA's image of operand ``key`` for ``version`` (the newest entry it reaches)."""
    chosen = UPSTREAM_IMAGES[key][0]
    for entry in UPSTREAM_IMAGES[key]:
        if at_least(version, entry.since):
            chosen = entry
    return chosen


def split_reference(reference: str) -> tuple[str, str, str]:
    """``repo/path/name:tag`` (or ``@sha256:…``) → (``repo/path``, ``name``, ``tag``)."""
    rest, at, digest = reference.partition("@")
    tag = digest if at else ""
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if not at and colon > slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
    repository, _, name = rest.rpartition("/")
    return repository, name, tag


def nvidia_repository(repository: str) -> bool:
    """NVIDIA's registry path, or a mirror keeping it (``homelab.net/nvcr.io/nvidia``)."""
    return NVIDIA_REGISTRY_PATH in repository


def is_ours(reference: str) -> bool:
    """Whether an image reference runs our image (any registry, any tag): its name is ours and
    its repository is not NVIDIA's (whose operator image has the same name)."""
    repository, name, _ = split_reference(reference)
    return name == OUR_IMAGE and not nvidia_repository(repository)


def known_nvidia_images() -> frozenset[tuple[str, str]]:
    """Every (repository, image) of NVIDIA's this table can render."""
    return frozenset(
        (entry.repository, entry.image) for entries in UPSTREAM_IMAGES.values() for entry in entries
    )


def image_notes(policy: Mapping[str, Any]) -> list[str]:
    """The chart's image notes on a ClusterPolicy object (its ``NOTES_ANNOTATION``)."""
    annotations = (policy.get("metadata") or {}).get("annotations") or {}
    text = str(annotations.get(NOTES_ANNOTATION) or "")
    return [line.strip() for line in text.splitlines() if line.strip()]


def note_event(line: str) -> tuple[str, str, str]:
    """(reason, message, type) of the Event an image note becomes: ``OperatorImageKept`` for
    an operator pin we did not follow, ``OurImageKept`` where an NVIDIA image without NVIDIA's
    tag became ours, ``UpstreamImage`` where a pin runs NVIDIA's image."""
    key = re.split(r"[=:]", line, maxsplit=1)[0]
    if key.startswith("operator.") and not key.startswith("operator.initContainer"):
        return "OperatorImageKept", line, "Warning"
    if "runs our " in line:
        return "OurImageKept", line, "Warning"
    return "UpstreamImage", line, "Normal"


def chart_table() -> str:
    """The table as the chart reads it (``.Files.Get "upstream-images.yaml"``)."""
    table = {
        "ours": {
            "repository": OUR_REPOSITORY,
            "image": OUR_IMAGE,
            "releases": list(OUR_RELEASES),
        },
        "nvidiaRegistryPath": NVIDIA_REGISTRY_PATH,
        "notesAnnotation": NOTES_ANNOTATION,
        "nvidiaOperator": {
            "repository": NVIDIA_OPERATOR.repository,
            "image": NVIDIA_OPERATOR.image,
        },
        "operands": {
            key: [
                {
                    "repository": e.repository,
                    "image": e.image,
                    "since": e.since,
                    "default": e.default,
                }
                for e in entries
            ]
            for key, entries in UPSTREAM_IMAGES.items()
        },
    }
    header = (
        "# Generated from src/gpu_operator/operator/upstream_images.py; do not edit. Regenerate:\n"
        "#   python -m gpu_operator.operator.upstream_images > "
        "deployments/gpu-operator/upstream-images.yaml\n"
        "# NVIDIA's image of each operand: what a version pin means (docs/install.md).\n"
    )
    return header + yaml.safe_dump(table, sort_keys=False)


if __name__ == "__main__":
    sys.stdout.write(chart_table())
