"""The NFD labels the operator reads (reference §3.1, §3.4), computed from a node's own files
for clusters without NFD: NVIDIA PCI devices from ``/sys/bus/pci/devices``, the OS from
``/etc/os-release``, the kernel from ``/proc/sys/kernel/osrelease``. Pure reads, no API."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from gpu_operator.errors import ConfigError
from gpu_operator.names import NFD_PREFIX

NFD = NFD_PREFIX
NVIDIA_VENDOR = "10de"
OWNED_PREFIXES = (
    f"{NFD}pci-{NVIDIA_VENDOR}.",
    f"{NFD}pci-0300_{NVIDIA_VENDOR}.",
    f"{NFD}pci-0302_{NVIDIA_VENDOR}.",
    f"{NFD}system-os_release.",
    f"{NFD}kernel-version.",
)


@dataclass(frozen=True)
class FeatureRoots:
    """Where the node's files are (a host mount inside the pod; a temp tree in tests)."""

    sys: Path = Path("/sys")
    os_release: Path = Path("/host/etc/os-release")
    kernel_release: Path = Path("/proc/sys/kernel/osrelease")


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def pci_labels(sys_root: Path) -> dict[str, str]:
    """``pci-10de.present`` and, for display/3D controllers, ``pci-<class>_10de.present``."""
    labels: dict[str, str] = {}
    devices = sys_root / "bus" / "pci" / "devices"
    for device in sorted(devices.iterdir()) if devices.is_dir() else ():
        vendor = _read(device / "vendor").lower().removeprefix("0x")
        if vendor != NVIDIA_VENDOR:
            continue
        labels[f"{NFD}pci-{NVIDIA_VENDOR}.present"] = "true"
        pci_class = _read(device / "class").lower().removeprefix("0x")[:4]
        if pci_class in ("0300", "0302"):
            labels[f"{NFD}pci-{pci_class}_{NVIDIA_VENDOR}.present"] = "true"
    return labels


def parse_os_release(text: str, *, source: str) -> dict[str, str]:
    """``KEY=value`` lines (shell quoting) → a dict; a malformed line is a ``ConfigError``."""
    values = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, raw = line.partition("=")
        try:
            parts = shlex.split(raw)
        except ValueError as error:
            raise ConfigError(f"{source}:{number}: {error}") from error
        if not sep or not key.isidentifier():
            raise ConfigError(f"{source}:{number}: expected KEY=value, got {line!r}")
        values[key] = " ".join(parts)
    return values


def _version_parts(prefix: str, version: str) -> dict[str, str]:
    parts = version.split(".")
    labels = {f"{prefix}.major": parts[0]} if parts[0] else {}
    if len(parts) > 1:
        labels[f"{prefix}.minor"] = parts[1]
    return labels


def os_labels(path: Path) -> dict[str, str]:
    text = _read(path)
    if not text:
        return {}
    release = parse_os_release(text, source=str(path))
    labels = {}
    for key in ("ID", "VERSION_ID", "OSTREE_VERSION"):
        if release.get(key):
            labels[f"{NFD}system-os_release.{key}"] = release[key]
    if release.get("VERSION_ID"):
        labels.update(_version_parts(f"{NFD}system-os_release.VERSION_ID", release["VERSION_ID"]))
    return labels


def kernel_labels(path: Path) -> dict[str, str]:
    full = _read(path)
    if not full:
        return {}
    numbers = full.split("-")[0].split(".")
    labels = {f"{NFD}kernel-version.full": full}
    for name, value in zip(("major", "minor", "revision"), numbers, strict=False):
        labels[f"{NFD}kernel-version.{name}"] = value
    return labels


def node_features(roots: FeatureRoots) -> dict[str, str]:
    """Every label this node should carry, as NFD would write it."""
    return {
        **pci_labels(roots.sys),
        **os_labels(roots.os_release),
        **kernel_labels(roots.kernel_release),
    }


def owns(key: str) -> bool:
    return key.startswith(OWNED_PREFIXES)
