"""The device plugin's ConfigMap volume as the kubelet mounts it, for config-manager tests."""

from __future__ import annotations

from pathlib import Path


def configmap_volume(root: Path) -> Path:
    """``root/available-configs`` with keys ``default`` and ``ts-4`` behind ``..data`` links, as
    the kubelet writes a ConfigMap volume."""
    src = root / "available-configs"
    data = src / "..2026_11_27"
    data.mkdir(parents=True)
    (data / "default").write_text("version: v1\n")
    (data / "ts-4").write_text("version: v1\nsharing: {timeSlicing: {}}\n")
    (src / "..data").symlink_to(data.name)
    for key in ("default", "ts-4"):
        (src / key).symlink_to(f"..data/{key}")
    return src
