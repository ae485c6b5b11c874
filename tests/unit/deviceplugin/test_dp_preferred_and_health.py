"""Preferred allocation (NVLink-aware best effort, distributed/packed) and the pure parts of
health (which devices an event hits, the board's wake-ups)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from gpu_operator.deviceplugin.allocation import AllocationError
from gpu_operator.deviceplugin.config_v1 import load_config
from gpu_operator.deviceplugin.health import HealthBoard, PhysicalDevice, affected_by, is_critical
from gpu_operator.deviceplugin.preferred import (
    best_effort,
    pair_score,
    preferred_full_gpus,
    preferred_shared,
)
from gpu_operator.deviceplugin.resources import build_resources
from gpu_operator.deviceplugin.settings import HealthSettings, resolve_settings
from gpu_operator.gpu import Nvml
from gpu_operator.gpu.records import EventKind, GpuEvent, Topology

pytestmark = pytest.mark.timeout(20)


def table(links: dict[tuple[int, int], int], pcie: int = 10) -> Callable[[int, int], int]:
    """Pair scores: ``links`` NVLinks per pair (×100) on top of a PCIe score."""
    return lambda a, b: pcie + 100 * links.get((min(a, b), max(a, b)), 0)


def test_pair_scores_follow_go_gpuallocator() -> None:
    assert pair_score(Topology("system", 0, False)) == 10
    assert pair_score(Topology("node", 0, False)) == 20
    assert pair_score(Topology("single", 0, False)) == 50
    assert pair_score(Topology("multiple", 12, True)) == 40 + 1200


def test_best_effort_picks_an_nvlink_pair() -> None:
    # NVLink bridges join 0-2 and 1-3 (as on PCIe cards with bridges).
    score = table({(0, 2): 4, (1, 3): 4})
    assert best_effort([0, 1, 2, 3], [], 2, score) == [0, 2]
    assert best_effort([0, 1, 2, 3], [3], 2, score) == [1, 3]


def test_best_effort_keeps_pairs_whole_for_odd_requests() -> None:
    # Taking 3 of 4 should leave a GPU whose partner is gone, not break both pairs evenly.
    score = table({(0, 1): 2, (2, 3): 2, (1, 2): 1})
    assert best_effort([0, 1, 2, 3], [], 2, score) == [0, 1]
    picked = best_effort([0, 1, 2, 3, 4, 5], [], 4, table({(0, 1): 2, (2, 3): 2, (4, 5): 2}))
    assert len(picked) == 4
    assert sum(1 for p in [(0, 1), (2, 3), (4, 5)] if set(p) <= set(picked)) == 2


def test_best_effort_refuses_impossible_requests() -> None:
    with pytest.raises(AllocationError, match="3 devices asked but only 2 available"):
        best_effort([0, 1], [], 3, table({}))
    with pytest.raises(AllocationError, match="must be included"):
        best_effort([0, 1, 2], [0, 1], 1, table({}))


def test_preferred_full_gpus_on_hgx_h100_picks_gpus_sharing_nvlink_and_a_pcie_switch(
    open_sim: Callable[..., Nvml],
) -> None:
    nvml = open_sim("hgx-h100")
    gpus = nvml.gpus()
    resource = build_resources(gpus, {}, resolve_settings()).by_name("nvidia.com/gpu")

    def score(a: int, b: int) -> int:
        return pair_score(nvml.topology(a, b))

    picked = preferred_full_gpus(resource, [g.uuid for g in gpus], [], 2, score)
    a, b = (next(g.index for g in gpus if g.uuid == u) for u in picked)
    assert nvml.topology(a, b).nvlinks == 18
    best = max(score(x.index, y.index) for x in gpus for y in gpus if x.index < y.index)
    assert score(a, b) == best


def test_distributed_spreads_replicas_over_gpus_and_packed_fills_one(
    open_sim: Callable[..., Nvml],
) -> None:
    nvml = open_sim("t4x3")
    config = load_config("sharing:\n  timeSlicing:\n    resources: [{name: gpu, replicas: 4}]\n")
    resource = build_resources(nvml.gpus(), {}, resolve_settings(config=config)).by_name(
        "nvidia.com/gpu"
    )
    ids = [d.id for d in resource.devices]
    gpu_of = {d.id: d.gpu_index for d in resource.devices}
    # GPU 0 already has two replicas taken.
    available = [i for i in ids if i not in ids[:2]]
    spread = preferred_shared(resource, available, [], 3, "distributed")
    assert [gpu_of[i] for i in spread] == [1, 2, 1]
    spread = preferred_shared(resource, available, [], 6, "distributed")
    assert [gpu_of[i] for i in spread] == [1, 2, 1, 2, 0, 1]
    packed = preferred_shared(resource, available, [], 2, "packed")
    assert [gpu_of[i] for i in packed] == [0, 0]
    must = preferred_shared(resource, available, [ids[5]], 2, "packed")
    assert must[0] == ids[5]
    assert gpu_of[must[1]] == 0


def mig(uuid: str, gpu: int, gi: int, ci: int = 0) -> PhysicalDevice:
    return PhysicalDevice(uuid, gpu, f"GPU-{gpu}", gi, ci)


DEVICES = [
    PhysicalDevice("GPU-0", 0, "GPU-0"),
    mig("MIG-a", 1, 1),
    mig("MIG-b", 1, 2),
    mig("MIG-c", 1, 2, 1),
]


@pytest.mark.parametrize(
    ("event", "hit"),
    [
        pytest.param(GpuEvent(0, "GPU-0", EventKind.XID, 48), ["GPU-0"], id="full GPU"),
        pytest.param(GpuEvent(1, "GPU-1", EventKind.XID, 48, 2, 1), ["MIG-c"], id="one MIG device"),
        pytest.param(
            GpuEvent(1, "GPU-1", EventKind.XID, 48, 2, None), ["MIG-b", "MIG-c"], id="a GI"
        ),
        pytest.param(
            GpuEvent(1, "GPU-1", EventKind.XID, 79), ["MIG-a", "MIG-b", "MIG-c"], id="whole GPU"
        ),
    ],
)
def test_an_event_hits_the_matching_mig_devices_or_the_whole_gpu(
    event: GpuEvent, hit: list[str]
) -> None:
    assert [d.uuid for d in affected_by(event, DEVICES)] == hit


def test_only_critical_xid_events_count() -> None:
    settings = HealthSettings()
    assert is_critical(GpuEvent(0, "GPU-0", EventKind.XID, 48), settings)
    assert not is_critical(GpuEvent(0, "GPU-0", EventKind.XID, 13), settings)
    assert not is_critical(GpuEvent(0, "GPU-0", EventKind.DOUBLE_BIT_ECC, 1), settings)


def test_the_board_wakes_waiters_only_on_a_real_change() -> None:
    board = HealthBoard(["GPU-0", "GPU-1"])
    seen = board.generation
    assert board.mark(["GPU-0"], False)
    assert not board.mark(["GPU-0"], False)
    assert not board.mark(["GPU-unknown"], False)
    assert board.generation == seen + 1
    woke: list[int] = []
    waiter = threading.Thread(target=lambda: woke.append(board.wait_change(seen + 1, 5)))
    waiter.start()
    board.mark(["GPU-0"], True)
    waiter.join(5)
    assert woke == [seen + 2]
    assert board.healthy("GPU-0")
    assert board.healthy("GPU-1")
