"""The DRA driver's pure parts and its prepare core, on simulated nodes read through the NVML
facade."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gpu_operator.dra.devices import NodeGpus
from gpu_operator.gpu import Nvml


@pytest.fixture
def node_gpus(open_sim: Callable[..., Nvml]) -> Callable[[str], NodeGpus]:
    """``node_gpus("hgx-h100")``: the simulated node's driver facts and full GPUs."""

    def read(preset: str) -> NodeGpus:
        nvml = open_sim(preset)
        return NodeGpus(system=nvml.system(), gpus=tuple(nvml.gpus()))

    return read
