"""Fixtures for feature-discovery tests: label a simulated node after an optional MIG layout,
with a device-plugin config given as YAML text."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gpu_operator.deviceplugin.config_v1 import load_config
from gpu_operator.discovery.labels import LabelInputs, LabelSet, build_labels
from gpu_operator.discovery.observe import observe
from gpu_operator.gpu import Nvml
from helpers.discovery import LabelSim, apply_layout


@pytest.fixture
def label_sim(open_sim: Callable[..., Nvml]) -> LabelSim:
    def _label(
        preset: str,
        *,
        strategy: str = "none",
        config: str = "",
        layout: str | None = None,
        machine_type: str | None = "DGX A100\n",
        prepare: Callable[[Nvml], None] | None = None,
    ) -> LabelSet:
        nvml = open_sim(preset)
        if layout is not None:
            apply_layout(nvml, layout)
        if prepare is not None:
            prepare(nvml)
        parsed = load_config(config or "version: v1", source="test-config.yaml")
        inputs = LabelInputs(
            mig_strategy=strategy,  # type: ignore[arg-type]
            sharing=parsed.sharing,
            resources=parsed.resources,
            machine_type=machine_type,
            timestamp=None,
        )
        return build_labels(observe(nvml), inputs)

    return _label
