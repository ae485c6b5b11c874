"""Shared by the feature-discovery tests: the simulator's CUDA labels and MIG layouts by name."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from gpu_operator.discovery.labels import LabelSet
from gpu_operator.gpu import Nvml
from gpu_operator.mig.apply import apply_config
from gpu_operator.mig.defaults import default_spec
from gpu_operator.mig.spec_v1 import MigConfigEntry, load_spec
from helpers.sim_layouts import apply_once

LabelSim = Callable[..., LabelSet]

CUDA_LABELS = {
    "nvidia.com/cuda.driver.major": "580",
    "nvidia.com/cuda.driver.minor": "159",
    "nvidia.com/cuda.driver.rev": "04",
    "nvidia.com/cuda.driver-version.major": "580",
    "nvidia.com/cuda.driver-version.minor": "159",
    "nvidia.com/cuda.driver-version.revision": "04",
    "nvidia.com/cuda.driver-version.full": "580.159.04",
    "nvidia.com/cuda.runtime.major": "13",
    "nvidia.com/cuda.runtime.minor": "0",
    "nvidia.com/cuda.runtime-version.major": "13",
    "nvidia.com/cuda.runtime-version.minor": "0",
    "nvidia.com/cuda.runtime-version.full": "13.0",
}
"""The simulator's driver is 580.159.04 with CUDA 13.0 (13000)."""


def apply_layout(nvml: Nvml, layout: str) -> None:
    """``layout``: a shipped config name (``all-balanced``) or ``{"1g.5gb": 7}``-style devices
    for every GPU, or ``enabled-empty`` (MIG on, no instances). Applied for real once per
    session for each layout and starting state (``helpers/sim_layouts.py``)."""
    apply_once(nvml, f"layout {layout}", lambda nvml: _apply_layout(nvml, layout))


def _apply_layout(nvml: Nvml, layout: str) -> None:
    if layout.startswith("{"):
        text = (
            "version: v1\nmig-configs:\n  c:\n    - devices: all\n      mig-enabled: true\n"
            f"      mig-devices: {layout}\n"
        )
        apply_config(nvml, load_spec(text, "test.yaml").select("c"))
    elif layout == "enabled-empty":
        text = (
            "version: v1\nmig-configs:\n  c:\n    - devices: all\n      mig-enabled: true\n"
            "      mig-devices: {}\n"
        )
        apply_config(nvml, load_spec(text, "test.yaml").select("c"))
    else:
        apply_config(nvml, default_spec().select(layout))


def apply_entries(entries: Sequence[MigConfigEntry]) -> Callable[[Nvml], None]:
    """A ``prepare`` step that applies mig-parted config entries."""

    def prepare(nvml: Nvml) -> None:
        apply_once(nvml, f"entries {list(entries)!r}", lambda nvml: apply_config(nvml, entries))

    return prepare
