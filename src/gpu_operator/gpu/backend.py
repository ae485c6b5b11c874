"""Selecting the hardware: the real NVML, or a simulated node (DESIGN.md §5).

``GPU_OPERATOR_SIM`` (or ``--sim``) names a node preset (``dgx-a100``, ``hgx-h100``, ``h200``,
``a30x4``, ``t4``), a model list (``h100x2,t4``) or the path of a state file; unset means the
real ``libnvidia-ml``. ``GPU_OPERATOR_SIM_ROOT`` is where simulated node state lives.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpu_operator.errors import ConfigError

SIM_ENV = "GPU_OPERATOR_SIM"
SIM_ROOT_ENV = "GPU_OPERATOR_SIM_ROOT"


def default_sim_root() -> Path:
    return Path(tempfile.gettempdir()) / f"gpu-operator-sim-{os.getuid()}"


@dataclass(frozen=True)
class HardwareSettings:
    """Which NVML the node agents use."""

    sim: str | None = None
    """Preset, model list or state-file path (``GPU_OPERATOR_SIM``); ``None`` = real NVML."""
    sim_root: Path = Path()
    """Directory of simulated node state (``GPU_OPERATOR_SIM_ROOT``); default a per-user dir
    under the system temp dir, so separate shells simulating one preset share one node."""

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, sim: str | None = None
    ) -> HardwareSettings:
        env = os.environ if env is None else env
        chosen = sim if sim is not None else env.get(SIM_ENV) or None
        root = env.get(SIM_ROOT_ENV)
        return cls(sim=chosen, sim_root=Path(root) if root else default_sim_root())

    @property
    def simulated(self) -> bool:
        return self.sim is not None

    def state_path(self) -> Path:
        """The state file of the simulated node these settings select."""
        if self.sim is None:
            raise ConfigError(f"{SIM_ENV} is not set: no simulated node is selected")
        if "/" in self.sim or self.sim.endswith(".json"):
            return Path(self.sim)
        slug = re.sub(r"[^A-Za-z0-9.-]+", "_", self.sim.strip().lower())
        return self.sim_root / f"{slug}.state.json"


def load_nvml(settings: HardwareSettings, **fake_options: Any) -> Any:
    """The pynvml-shaped object the facade calls: the real module or a simulated node."""
    if not settings.simulated:
        import pynvml

        return pynvml
    from gpu_operator.gpu.fake.nvml_events import FakeNvml
    from gpu_operator.gpu.fake.presets import parse_layout
    from gpu_operator.gpu.fake.state import StateStore, initial_state, seed_for

    path = settings.state_path()
    store = StateStore(path)
    if not store.exists():
        assert settings.sim is not None
        if "/" in settings.sim or settings.sim.endswith(".json"):
            raise ConfigError(f"{SIM_ENV}: simulated node state file {path} does not exist")
        layout = parse_layout(settings.sim)
        clock = fake_options.get("clock")
        boot_time = clock() if clock is not None else None
        store.create(initial_state(settings.sim, layout, seed_for(path), boot_time))
    return FakeNvml(store, **fake_options)
