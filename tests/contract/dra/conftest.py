"""The DRA driver served for real: its sockets under a short /tmp directory (a unix socket path
stays under 108 bytes), a simulated node under the test's ``GPU_OPERATOR_SIM_ROOT``, claims
and slices in process (``helpers.dra_driver``) until the emulator serves ``resource.k8s.io/v1``."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gpu_operator.dra.plugin import DraDriver
from gpu_operator.dra.settings import resolve_settings
from gpu_operator.gpu import HardwareSettings
from helpers.dra_driver import Claims, Slices, make_driver_root

NODE = "gpu-node-1"


@pytest.fixture
def sockets_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="dra-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def hardware() -> Callable[[str], HardwareSettings]:
    def make(preset: str) -> HardwareSettings:
        return HardwareSettings(sim=preset, sim_root=Path(os.environ["GPU_OPERATOR_SIM_ROOT"]))

    return make


@pytest.fixture
def claims() -> Claims:
    return Claims()


@pytest.fixture
def slices() -> Slices:
    return Slices()


@pytest.fixture
def start_driver(
    sockets_dir: Path,
    tmp_path: Path,
    hardware: Callable[[str], HardwareSettings],
    claims: Claims,
    slices: Slices,
) -> Iterator[Callable[..., DraDriver]]:
    """``start_driver("hgx-h100")``: a DRA driver serving under ``sockets_dir``."""
    started: list[DraDriver] = []

    def start(preset: str, **env: str) -> DraDriver:
        driver_root = tmp_path / "driver"
        if not driver_root.exists():
            make_driver_root(driver_root, "580.159.04")
        settings = resolve_settings(
            {},
            {
                "NODE_NAME": NODE,
                "CDI_ROOT": str(tmp_path / "cdi"),
                "DRIVER_ROOT_CTR_PATH": str(driver_root),
                "KUBELET_REGISTRAR_DIRECTORY_PATH": str(sockets_dir / "plugins_registry"),
                "KUBELET_PLUGINS_DIRECTORY_PATH": str(sockets_dir / "plugins"),
                **env,
            },
        )
        driver = DraDriver(
            settings, hardware(preset), publisher=slices, claims=claims, resync_s=0.5
        )
        driver.start()
        started.append(driver)
        assert driver.published.wait(10)
        return driver

    yield start
    for driver in started:
        driver.stop(clean=True)
