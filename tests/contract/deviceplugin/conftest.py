"""The device plugin against the kubelet stand-in, over real gRPC on unix sockets.

Sockets live in a short directory under /tmp (a unix socket path must stay under 108 bytes,
and pytest's ``tmp_path`` for a sentence-long test name doesn't); simulated nodes live under
the test's ``GPU_OPERATOR_SIM_ROOT``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gpu_operator.deviceplugin.config_v1 import load_config
from gpu_operator.deviceplugin.plugin import DevicePlugin
from gpu_operator.deviceplugin.settings import resolve_settings
from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.gpu.fake.state import StateStore
from gpu_operator.mig.apply import apply_config
from gpu_operator.mig.defaults import default_config_text
from gpu_operator.mig.spec_v1 import load_spec
from gpu_operator.sandbox.kubelet import Kubelet

HALF_BALANCED = """\
version: v1
mig-configs:
  half-balanced:
  - devices: [0, 1]
    mig-enabled: true
    mig-devices: {"1g.5gb": 2, "2g.10gb": 1, "3g.20gb": 1}
  - devices: [2, 3, 4, 5, 6, 7]
    mig-enabled: false
"""


@pytest.fixture
def sockets_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="dp-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def kubelet(sockets_dir: Path) -> Iterator[Kubelet]:
    # The kubelet waits 10 s to dial a plugin back; 2 s keeps a failing dial short here.
    stand_in = Kubelet(
        sockets_dir / "device-plugins", sockets_dir / "pod-resources", dial_timeout_s=2
    )
    stand_in.start()
    yield stand_in
    stand_in.stop()


@pytest.fixture
def hardware(tmp_path: Path) -> Callable[[str], HardwareSettings]:
    def make(preset: str) -> HardwareSettings:
        return HardwareSettings(sim=preset, sim_root=Path(os.environ["GPU_OPERATOR_SIM_ROOT"]))

    return make


@pytest.fixture
def mig_layout(hardware: Callable[[str], HardwareSettings]) -> Callable[[str, str], None]:
    """``mig_layout("dgx-a100", "all-balanced")``: what ``gpu-operator mig apply -c`` does."""

    def apply(preset: str, name: str) -> None:
        text = HALF_BALANCED if name == "half-balanced" else default_config_text()
        spec = load_spec(text, "test config")
        with Nvml.open(hardware(preset)) as nvml:
            apply_config(nvml, spec.select(name, source="test config"))

    return apply


@pytest.fixture
def store(hardware: Callable[[str], HardwareSettings]) -> Callable[[str], StateStore]:
    """The simulated node's state, for fault injection (the node must have been opened)."""
    return lambda preset: StateStore(hardware(preset).state_path())


@pytest.fixture
def start_plugin(
    kubelet: Kubelet, hardware: Callable[[str], HardwareSettings]
) -> Iterator[Callable[..., DevicePlugin]]:
    """``start_plugin("dgx-a100", env={...}, config="...", mig_strategy="mixed")``."""
    started: list[DevicePlugin] = []

    def start(
        preset: str, *, env: dict[str, str] | None = None, config: str = "", **flags: str
    ) -> DevicePlugin:
        settings = resolve_settings(
            {"kubelet_socket": str(kubelet.socket), **flags}, env or {}, load_config(config)
        )
        plugin = DevicePlugin(settings, hardware(preset))
        plugin.start()
        started.append(plugin)
        # Every resource's Register call has returned (the kubelet may list devices sooner).
        assert plugin.supervisor is not None
        assert plugin.plan is not None
        assert plugin.supervisor.wait_registered(len(plugin.plan.resources), 10)
        return plugin

    yield start
    for plugin in started:
        plugin.stop()
