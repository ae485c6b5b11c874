"""The simulated H100 and H200 at idle read as the real cards did (driver 580.159.04): memory
accounted as the cards account it, the reserved amounts and idle SM clocks measured on them
(docs/hardware.md; shared/reference/h200-nvml-readout.txt for the H200's v1 numbers)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.gpu.fake import faults
from gpu_operator.gpu.fake.state import StateStore

MIB = 1 << 20

MEASURED = {
    # preset: (memory total, reserved bytes, idle SM clock MHz), as the idle cards reported them
    "h200": (150_754_820_096, 644_939_776, 345),
    "h100": (81_559 * MIB, 480 * MIB, 345),
}


@pytest.mark.parametrize("preset", sorted(MEASURED))
def test_an_idle_card_reads_as_the_real_one(open_sim: Callable[..., Nvml], preset: str) -> None:
    total, reserved, idle_clock = MEASURED[preset]
    nvml = open_sim(preset)
    t = nvml.telemetry(0)
    assert t.memory_total_bytes == total
    assert t.memory_reserved_bytes == reserved
    assert t.memory_used_bytes == 0  # nvidia-smi: "0MiB / 143771MiB" on the idle H200
    assert t.memory_free_bytes == total - reserved
    assert t.sm_clock_mhz == idle_clock


def test_the_v1_call_counts_the_reserved_memory_as_used_like_the_h200(
    open_sim: Callable[..., Nvml],
) -> None:
    n: Any = open_sim("h200").nvml
    memory = n.nvmlDeviceGetMemoryInfo(n.nvmlDeviceGetHandleByIndex(0))
    # The read-out: total 150754820096 B, free 150109880320 B, used 644939776 B.
    assert (memory.total, memory.free, memory.used) == (150754820096, 150109880320, 644939776)


def test_a_process_adds_to_used_and_takes_from_free_only(
    open_sim: Callable[..., Nvml], tmp_path: Path
) -> None:
    nvml = open_sim("h200")
    idle = nvml.telemetry(0)
    store = StateStore(HardwareSettings(sim="h200", sim_root=tmp_path / "sim").state_path())
    faults.start_process(store, 0, memory_mib=1000)
    busy = nvml.telemetry(0)
    assert busy.memory_used_bytes == 1000 * MIB
    assert busy.memory_reserved_bytes == idle.memory_reserved_bytes
    assert busy.memory_free_bytes == (idle.memory_free_bytes or 0) - 1000 * MIB
