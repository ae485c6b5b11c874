"""GPU-pair topology through ``Nvml.topology`` on simulated nodes: the PCIe common ancestor and
the NVLinks (direct or through NVSwitches) that join two GPUs."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gpu_operator.gpu import Nvml
from gpu_operator.gpu.records import Topology

OpenSim = Callable[..., Nvml]


@pytest.mark.parametrize(
    ("a", "b", "ancestor"),
    [
        pytest.param(0, 1, "multiple", id="0-1-same-pcie-switch"),
        pytest.param(6, 7, "multiple", id="6-7-same-pcie-switch"),
        pytest.param(0, 2, "node", id="0-2-same-numa-node"),
        pytest.param(1, 3, "node", id="1-3-same-numa-node"),
        pytest.param(0, 4, "system", id="0-4-across-numa-nodes"),
        pytest.param(3, 7, "system", id="3-7-across-numa-nodes"),
    ],
)
def test_dgx_a100_gpus_are_joined_by_twelve_nvlinks_through_nvswitches(
    open_sim: OpenSim, a: int, b: int, ancestor: str
) -> None:
    nvml = open_sim("dgx-a100")
    expected = Topology(common_ancestor=ancestor, nvlinks=12, via_nvswitch=True)
    assert nvml.topology(a, b) == expected
    assert nvml.topology(b, a) == expected


def test_hgx_h100_gpus_are_joined_by_eighteen_nvlinks_through_nvswitches(
    open_sim: OpenSim,
) -> None:
    nvml = open_sim("hgx-h100")
    assert nvml.topology(2, 3) == Topology("multiple", 18, True)
    assert nvml.topology(2, 5) == Topology("system", 18, True)


def test_a30_gpus_without_nvlink_are_joined_by_pcie_only(open_sim: OpenSim) -> None:
    nvml = open_sim("a30x4")
    assert nvml.topology(0, 1) == Topology("multiple", 0, False)
    assert nvml.topology(1, 2) == Topology("system", 0, False)  # two GPUs per NUMA node


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param("h200", id="h200"),
        pytest.param("t4", id="t4"),
        pytest.param("dgx-a100", id="dgx-a100"),
    ],
)
def test_a_gpu_paired_with_itself_is_internal_with_no_nvlinks(open_sim: OpenSim, spec: str) -> None:
    nvml = open_sim(spec)
    assert nvml.topology(0, 0) == Topology(
        common_ancestor="internal", nvlinks=0, via_nvswitch=False
    )
