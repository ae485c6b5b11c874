"""The driver image's tag rule (reference §3.4–§3.5): a node's OS as NFD labels it becomes the
tag suffix (``rocky8``, ``ubuntu22.04``), through the alias table (``driver.osAliases``); the
driver image is ``<base>-<ostag>``, a precompiled one ``<base>-<kernel>-<ostag>``. Pure; the
base image (``repo/driver:version``) is the operator's to resolve."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gpu_operator.errors import ConfigError

# OS IDs whose driver builds are tagged by major version only (v26.7.0 / main).
MAJOR_ONLY_OS = frozenset({"rhel", "rocky", "ol"})


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
