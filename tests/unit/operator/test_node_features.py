"""The node labeller reads NVIDIA PCI devices from /sys, the OS from os-release and the kernel
release, and labels them exactly as NFD does (the keys the operator reads)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpu_operator.errors import ConfigError
from gpu_operator.operator.node_features import FeatureRoots, node_features, owns, parse_os_release

ROCKY = (
    'NAME="Rocky Linux"\nVERSION="8.5 (Green Obsidian)"\nID="rocky"\n'
    'ID_LIKE="rhel centos fedora"\nVERSION_ID="8.5"\n'
)


def node(
    tmp_path: Path, devices: dict[str, tuple[str, str]], os_release: str = ROCKY
) -> FeatureRoots:
    for address, (vendor, pci_class) in devices.items():
        d = tmp_path / "sys" / "bus" / "pci" / "devices" / address
        d.mkdir(parents=True)
        (d / "vendor").write_text(vendor + "\n")
        (d / "class").write_text(pci_class + "\n")
    (tmp_path / "os-release").write_text(os_release)
    (tmp_path / "osrelease").write_text("4.18.0-348.el8.0.2.x86_64\n")
    return FeatureRoots(
        sys=tmp_path / "sys",
        os_release=tmp_path / "os-release",
        kernel_release=tmp_path / "osrelease",
    )


def test_a_rocky_a100_node_gets_the_labels_the_operator_reads(tmp_path: Path) -> None:
    roots = node(
        tmp_path, {"0000:07:00.0": ("0x10de", "0x030200"), "0000:00:01.0": ("0x8086", "0x060400")}
    )
    assert node_features(roots) == {
        "feature.node.kubernetes.io/pci-10de.present": "true",
        "feature.node.kubernetes.io/pci-0302_10de.present": "true",
        "feature.node.kubernetes.io/system-os_release.ID": "rocky",
        "feature.node.kubernetes.io/system-os_release.VERSION_ID": "8.5",
        "feature.node.kubernetes.io/system-os_release.VERSION_ID.major": "8",
        "feature.node.kubernetes.io/system-os_release.VERSION_ID.minor": "5",
        "feature.node.kubernetes.io/kernel-version.full": "4.18.0-348.el8.0.2.x86_64",
        "feature.node.kubernetes.io/kernel-version.major": "4",
        "feature.node.kubernetes.io/kernel-version.minor": "18",
        "feature.node.kubernetes.io/kernel-version.revision": "0",
    }


def test_a_node_without_nvidia_devices_gets_no_pci_label(tmp_path: Path) -> None:
    roots = node(tmp_path, {"0000:00:02.0": ("0x8086", "0x030000")})
    assert not [k for k in node_features(roots) if "pci-" in k]


def test_a_vga_class_nvidia_card_gets_the_0300_label(tmp_path: Path) -> None:
    roots = node(tmp_path, {"0000:01:00.0": ("0x10de", "0x030000")})
    assert node_features(roots)["feature.node.kubernetes.io/pci-0300_10de.present"] == "true"


def test_the_labeller_owns_only_the_keys_it_writes() -> None:
    assert owns("feature.node.kubernetes.io/pci-10de.present")
    assert not owns("feature.node.kubernetes.io/cpu-model.vendor_id")
    assert not owns("feature.node.kubernetes.io/pci-1af4.present")
    assert not owns("nvidia.com/gpu.present")


def test_a_malformed_os_release_line_names_file_and_line() -> None:
    with pytest.raises(ConfigError, match=r"/etc/os-release:2: expected KEY=value"):
        parse_os_release("ID=rocky\nthis is not a pair\n", source="/etc/os-release")
