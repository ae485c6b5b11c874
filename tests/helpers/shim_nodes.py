"""Helpers for real containers through our runtime shim: a busybox rootfs bundle, a node with a
simulated GPU (NVML simulated, its device nodes made with mknod, a stand-in driver tree) and the
shim as ``toolkit install`` puts it on the node. Root only (mknod, namespaces)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.toolkit import shim_install
from gpu_operator.toolkit.runtime_config import ShimSettings
from gpu_operator.toolkit.runtime_shim import NAMES, build
from gpu_operator.toolkit.settings import ToolkitSettings

CC = shutil.which("cc") or shutil.which("gcc")
BUSYBOX = shutil.which("busybox")
PRESET = "a30x4"


@pytest.fixture(scope="session")
def shim_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if CC is None:
        pytest.skip("no C compiler (cc) to build the runtime shim")
    return build(tmp_path_factory.mktemp("shim") / "nvidia-container-runtime", cc=CC)


@pytest.fixture(scope="session")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rootfs with a static busybox and its applets."""
    if BUSYBOX is None:
        pytest.skip("busybox is not installed (apt: busybox-static)")
    root = tmp_path_factory.mktemp("rootfs")
    (root / "bin").mkdir()
    shutil.copy(BUSYBOX, root / "bin" / "busybox")
    for applet in ("sh", "ls", "cat", "echo", "stat", "test"):
        (root / "bin" / applet).symlink_to("busybox")
    for directory in ("proc", "sys", "dev", "tmp", "usr/lib", "usr/bin"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    return root


@dataclass
class GpuNode:
    settings: ToolkitSettings
    gpus: list[Any]
    version: str

    @property
    def shim(self) -> Path:
        return self.settings.toolkit_dir / NAMES[0]


def make_node(
    tmp_path: Path,
    shim_binary: Path,
    runtimes: tuple[str, ...],
    monkeypatch: pytest.MonkeyPatch,
) -> GpuNode:
    if os.geteuid() != 0:
        pytest.skip("device nodes (mknod) and containers need root")
    monkeypatch.setenv("GPU_OPERATOR_SIM", PRESET)
    with Nvml.open(HardwareSettings.from_env()) as nvml:
        version = nvml.system().driver_version
        gpus = nvml.gpus()
    driver = tmp_path / "driver"
    lib = driver / "usr/lib/x86_64-linux-gnu"
    lib.mkdir(parents=True)
    for name in ("libcuda", "libnvidia-ml"):
        (lib / f"{name}.so.{version}").write_text(f"{name} {version}\n")
    (driver / "usr/bin").mkdir(parents=True)
    (driver / "usr/bin/nvidia-smi").write_text("#!/bin/sh\necho simulated nvidia-smi\n")
    (driver / "usr/bin/nvidia-smi").chmod(0o755)
    dev = tmp_path / "devroot/dev"
    dev.mkdir(parents=True)
    nodes = {f"nvidia{g.minor_number}": g.minor_number for g in gpus}
    nodes.update({"nvidiactl": 255, "nvidia-uvm": 0, "nvidia-uvm-tools": 1})
    for name, minor in nodes.items():
        os.mknod(dev / name, 0o666 | 0o020000, os.makedev(195, minor))
    settings = ToolkitSettings(
        runtime="containerd",
        root=tmp_path / "usr-local-nvidia",
        driver_root=driver,
        dev_root=dev.parent,
        shim_binary=shim_binary,
        runtime_shim=ShimSettings(runtimes=runtimes),
    )
    shim_install.install(settings)
    return GpuNode(settings, gpus, version)


def bundle_for(tmp_path: Path, rootfs: Path, runtime: str, script: str, *env: str) -> Path:
    """An OCI bundle from the runtime's own ``spec`` output, running ``sh -c script``."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    subprocess.run([runtime, "spec"], cwd=bundle, check=True, capture_output=True, timeout=30)
    config = json.loads((bundle / "config.json").read_text())
    config["root"] = {"path": str(rootfs), "readonly": True}
    config["process"]["terminal"] = False
    config["process"]["args"] = ["/bin/sh", "-c", script]
    config["process"]["env"].extend(env)
    (bundle / "config.json").write_text(json.dumps(config, indent=2))
    return bundle
