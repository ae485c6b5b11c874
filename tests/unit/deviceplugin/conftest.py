"""Simulated nodes for the device plugin's pure core: MIG layouts are made with the real
``mig apply`` (mig-parted's named configs) on the simulator, once per session for each layout
(``helpers/sim_layouts.py``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gpu_operator.gpu import Nvml
from gpu_operator.mig.apply import apply_config
from gpu_operator.mig.defaults import default_config_text
from gpu_operator.mig.spec_v1 import load_spec
from helpers.sim_layouts import apply_once

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


def apply_mig(nvml: Nvml, name: str, text: str | None = None) -> None:
    """The real apply, once per session for each layout and starting state (sim_layouts)."""

    def apply(nvml: Nvml) -> None:
        spec = load_spec(text or default_config_text(), "test config")
        apply_config(nvml, spec.select(name, source="test config"))

    apply_once(nvml, f"{name}\n{text or ''}", apply)


@pytest.fixture
def node(open_sim: Callable[..., Nvml]) -> Callable[..., Nvml]:
    """``node("dgx-a100", "all-balanced")`` → an open simulated node with that MIG layout."""

    def make(preset: str, layout: str | None = None) -> Nvml:
        nvml = open_sim(preset)
        if layout == "half-balanced":
            apply_mig(nvml, layout, HALF_BALANCED)
        elif layout is not None:
            apply_mig(nvml, layout)
        return nvml

    return make
