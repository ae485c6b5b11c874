"""Telemetry of simulated GPUs through ``Nvml`` on the frozen ``clock``: determinism, energy that
never falls, busy versus idle, physical ranges, counters a GPU lacks, GPM and MIG memory."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import pytest

from gpu_operator.errors import GpuError
from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.gpu.fake import faults
from gpu_operator.gpu.fake.state import StateStore
from gpu_operator.gpu.records import Telemetry

MIB = 2**20
OpenSim = Callable[..., Nvml]

# Board power limits (W) of each preset's GPU model.
POWER_LIMIT_W = {"dgx-a100": 400, "hgx-h100": 700, "h200": 700, "a30x4": 165, "t4": 70}
PRESETS = [pytest.param(spec, id=spec) for spec in POWER_LIMIT_W]
GPM_METRICS = [1, 2, 5, 10]  # graphics util, SM util, tensor util, DRAM bandwidth util


class Clock(Protocol):
    """What the ``clock`` fixture is: a frozen clock the test moves."""

    now: float

    def __call__(self) -> float: ...

    def advance(self, seconds: float) -> None: ...


def store_for(tmp_path: Path, spec: str) -> StateStore:
    return StateStore(HardwareSettings(sim=spec, sim_root=tmp_path / "sim").state_path())


@pytest.fixture
def sim(open_sim: OpenSim, tmp_path: Path) -> Callable[..., tuple[Nvml, StateStore]]:
    """``sim("h200", seed=7)`` → an open node, booted at the frozen clock's now, and its state."""

    def _open(spec: str, *, seed: int = 7) -> tuple[Nvml, StateStore]:
        return open_sim(spec, seed=seed), store_for(tmp_path, spec)

    return _open


def known(value: int | None) -> int:
    """A counter the test expects this GPU to have."""
    assert value is not None
    return value


def without_errors(sample: Telemetry) -> Telemetry:
    assert sample.errors == {}
    return sample


# --- determinism -----------------------------------------------------------------------------


def test_telemetry_is_a_function_of_the_clock_alone(
    sim: Callable[..., tuple[Nvml, StateStore]], open_sim: OpenSim, clock: Clock
) -> None:
    nvml, _ = sim("dgx-a100")
    other_session = open_sim("dgx-a100")
    first = [nvml.telemetry(i) for i in range(8)]
    assert [other_session.telemetry(i) for i in range(8)] == first

    clock.advance(17.5)
    moved = [nvml.telemetry(i) for i in range(8)]
    assert moved != first
    clock.advance(-17.5)
    assert [nvml.telemetry(i) for i in range(8)] == first


def test_two_fresh_nodes_with_the_same_seed_and_clock_read_the_same_telemetry(
    sim: Callable[..., tuple[Nvml, StateStore]], clock: Clock
) -> None:
    # "H200-141GB" is the model the "h200" preset has: another node, the same hardware.
    a, _ = sim("h200", seed=11)
    b, _ = sim("H200-141GB", seed=11)
    assert a.gpu(0).uuid != b.gpu(0).uuid
    for _ in range(3):
        assert without_errors(a.telemetry(0)) == without_errors(b.telemetry(0))
        clock.advance(9)


def test_another_seed_gives_other_telemetry(
    sim: Callable[..., tuple[Nvml, StateStore]], clock: Clock
) -> None:
    a, _ = sim("h200", seed=11)
    b, _ = sim("H200-141GB", seed=12)
    samples = []
    for _ in range(3):
        clock.advance(7)
        samples.append((a.telemetry(0), b.telemetry(0)))
    assert any(x.power_mw != y.power_mw for x, y in samples)
    assert any(x.energy_mj != y.energy_mj for x, y in samples)


# --- energy ----------------------------------------------------------------------------------


def test_energy_never_falls_as_time_passes_and_processes_come_and_go(
    sim: Callable[..., tuple[Nvml, StateStore]], clock: Clock
) -> None:
    nvml, store = sim("h200")
    energy: list[int] = []

    def read() -> int:
        value = known(nvml.telemetry(0).energy_mj)
        energy.append(value)
        return value

    idle_start = read()
    for _ in range(5):
        clock.advance(1)
        read()
    idle_gain = read() - idle_start

    pid = faults.start_process(store, 0, clock=clock)
    busy_start = read()
    for _ in range(5):
        clock.advance(1)
        read()
    busy_gain = read() - busy_start
    faults.stop_processes(store, 0, pid, clock=clock)
    read()
    clock.advance(0.25)
    read()
    faults.start_process(store, 0, clock=clock)
    read()
    faults.stop_processes(store, 0, clock=clock)
    read()

    assert energy == sorted(energy), f"energy fell: {energy}"
    assert idle_gain >= 5 * 79_000  # five seconds at at least the H200's 79 W idle power
    assert busy_gain > idle_gain


def test_energy_is_skipped_when_not_asked_for(
    sim: Callable[..., tuple[Nvml, StateStore]],
) -> None:
    nvml, _ = sim("hgx-h100")
    assert nvml.telemetry(0).energy_mj is not None
    sample = nvml.telemetry(0, with_energy=False)
    assert sample.energy_mj is None
    assert sample.power_mw is not None


# --- busy and idle ---------------------------------------------------------------------------


def test_a_busy_gpu_shows_more_utilization_power_and_memory_than_an_idle_one(
    sim: Callable[..., tuple[Nvml, StateStore]], clock: Clock
) -> None:
    nvml, store = sim("dgx-a100")
    faults.start_process(store, 0, memory_mib=8192, clock=clock)
    for _ in range(6):
        clock.advance(13)
        busy, idle = without_errors(nvml.telemetry(0)), without_errors(nvml.telemetry(1))
        assert known(busy.gpu_util_pct) > known(idle.gpu_util_pct) == 0
        assert known(busy.power_mw) > known(idle.power_mw)
        assert known(busy.sm_clock_mhz) > known(idle.sm_clock_mhz)
        assert known(busy.memory_used_bytes) - known(idle.memory_used_bytes) == 8192 * MIB
        assert known(busy.nvlink_rx_kib) > known(idle.nvlink_rx_kib)


@pytest.mark.parametrize("spec", PRESETS)
@pytest.mark.parametrize("busy", [pytest.param(False, id="idle"), pytest.param(True, id="busy")])
def test_counters_stay_within_physical_ranges(
    sim: Callable[..., tuple[Nvml, StateStore]], clock: Clock, spec: str, busy: bool
) -> None:
    nvml, store = sim(spec)
    if busy:
        faults.start_process(store, 0, memory_mib=2048, clock=clock)
    limit_mw = POWER_LIMIT_W[spec] * 1000
    for _ in range(24):  # two minutes in 5 s steps: a whole power cycle
        clock.advance(5)
        s = without_errors(nvml.telemetry(0))
        assert 0 <= known(s.gpu_util_pct) <= 100
        assert 0 <= known(s.memory_util_pct) <= 100
        assert 20 <= known(s.gpu_temp_c) <= 100
        assert s.memory_temp_c is None or 20 <= s.memory_temp_c <= 100
        assert 0 < known(s.power_mw) <= limit_mw
        reserved = known(s.memory_reserved_bytes)
        assert reserved > 0
        assert (
            known(s.memory_used_bytes) + known(s.memory_free_bytes) + reserved
            == s.memory_total_bytes
        )
        assert (known(s.memory_used_bytes) > 0) is busy
        assert (known(s.gpu_util_pct) > 0) is busy


# --- counters a GPU lacks --------------------------------------------------------------------


def test_a_t4_has_no_memory_temperature_or_remapped_rows_but_reads_the_rest(
    sim: Callable[..., tuple[Nvml, StateStore]],
) -> None:
    nvml, _ = sim("t4")
    sample = without_errors(nvml.telemetry(0))
    assert sample.memory_temp_c is None
    assert sample.remapped_rows is None
    assert sample.nvlink_rx_kib is None
    assert sample.nvlink_tx_kib is None
    assert None not in (sample.gpu_temp_c, sample.power_mw, sample.energy_mj, sample.ecc)
    assert sample.gpu_util_pct == 0


def test_an_h200_without_nvlink_has_no_nvlink_counters(
    sim: Callable[..., tuple[Nvml, StateStore]],
) -> None:
    nvml, _ = sim("h200")
    sample = without_errors(nvml.telemetry(0))
    assert (sample.nvlink_rx_kib, sample.nvlink_tx_kib) == (None, None)
    assert sample.memory_temp_c is not None
    assert sample.remapped_rows is not None


def test_a_dgx_a100_has_nvlink_counters_that_grow_while_busy(
    sim: Callable[..., tuple[Nvml, StateStore]], clock: Clock
) -> None:
    nvml, store = sim("dgx-a100")
    before = without_errors(nvml.telemetry(0))
    faults.start_process(store, 0, clock=clock)
    clock.advance(10)
    after = without_errors(nvml.telemetry(0))
    assert known(after.nvlink_rx_kib) > known(before.nvlink_rx_kib)
    assert known(after.nvlink_tx_kib) > known(before.nvlink_tx_kib)


def test_double_bit_ecc_errors_count_and_remap_a_row(
    sim: Callable[..., tuple[Nvml, StateStore]],
) -> None:
    nvml, store = sim("h200")
    faults.inject_ecc(store, 0, double_bit=True)
    faults.inject_ecc(store, 0, double_bit=False)
    faults.inject_ecc(store, 0, double_bit=False)
    sample = without_errors(nvml.telemetry(0))
    assert sample.ecc is not None
    assert dataclasses.astuple(sample.ecc) == (2, 1, 2, 1)
    assert sample.remapped_rows is not None
    assert sample.remapped_rows.uncorrectable == 1


# --- GPM -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec", [pytest.param("h200", id="h200"), pytest.param("hgx-h100", id="hgx-h100")]
)
def test_gpm_samples_the_hopper_metrics_over_an_interval(
    sim: Callable[..., tuple[Nvml, StateStore]], clock: Clock, spec: str
) -> None:
    nvml, store = sim(spec)
    assert nvml.gpm_supported(0)
    idle = nvml.gpm_sample(0, GPM_METRICS, interval_s=1.0, sleep=clock.advance)
    assert set(idle.values) == set(GPM_METRICS)
    assert all(v == 0 for v in idle.values.values())

    faults.start_process(store, 0, clock=clock)
    busy = nvml.gpm_sample(0, [*GPM_METRICS, 9999], interval_s=1.0, sleep=clock.advance)
    assert set(busy.values) == set(GPM_METRICS), "an unknown metric is left out"
    assert all(0 < v <= 100 for v in busy.values.values())
    assert busy.values[1] >= busy.values[2]  # SM activity never exceeds graphics activity


def test_a_gpm_stream_yields_the_metrics_since_its_previous_read(
    sim: Callable[..., tuple[Nvml, StateStore]], clock: Clock
) -> None:
    nvml, store = sim("h200")
    with nvml.gpm_stream(0) as stream:
        assert stream.read(GPM_METRICS) is None, "the first read only takes a sample"
        clock.advance(1)
        idle = stream.read(GPM_METRICS)
        faults.start_process(store, 0, clock=clock)
        clock.advance(1)
        busy = stream.read(GPM_METRICS)
    assert idle is not None
    assert busy is not None
    assert idle.values == dict.fromkeys(GPM_METRICS, 0.0)
    assert set(busy.values) == set(GPM_METRICS)
    assert all(0 < v <= 100 for v in busy.values.values())


def test_gpm_follows_only_the_busy_gpu_instance(
    sim: Callable[..., tuple[Nvml, StateStore]], clock: Clock
) -> None:
    nvml, store = sim("hgx-h100")
    nvml.set_mig_mode(0, True)
    busy_gi = nvml.create_gpu_instance(0, 9, 0)
    idle_gi = nvml.create_gpu_instance(0, 9, 4)
    for gi in (busy_gi, idle_gi):
        nvml.create_compute_instance(0, gi.id)
    faults.start_process(store, 0, gi=busy_gi.id, clock=clock)

    def util(gi_id: int) -> float:
        sample = nvml.gpm_sample(0, [1], gpu_instance_id=gi_id, sleep=clock.advance)
        return sample.values[1]

    assert util(busy_gi.id) > 0
    assert util(idle_gi.id) == 0


@pytest.mark.parametrize(
    "spec", [pytest.param("dgx-a100", id="dgx-a100"), pytest.param("t4", id="t4")]
)
def test_gpm_is_not_supported_before_hopper(
    sim: Callable[..., tuple[Nvml, StateStore]], clock: Clock, spec: str
) -> None:
    nvml, _ = sim(spec)
    assert not nvml.gpm_supported(0)
    with pytest.raises(GpuError) as info:
        nvml.gpm_sample(0, GPM_METRICS, sleep=clock.advance)
    assert info.value.nvml_name == "NVMLError_NotSupported"


# --- MIG devices -----------------------------------------------------------------------------


def test_mig_telemetry_reports_the_memory_of_the_mig_device(
    sim: Callable[..., tuple[Nvml, StateStore]], clock: Clock, tmp_path: Path
) -> None:
    nvml, store = sim("dgx-a100")
    nvml.set_mig_mode(0, True)
    faults.reset_gpu(store, 0)
    big = nvml.create_gpu_instance(0, 9, 4)  # 3g.20gb: 20096 MiB
    small = nvml.create_gpu_instance(0, 19, 0)  # 1g.5gb: 4864 MiB
    for gi in (big, small):
        nvml.create_compute_instance(0, gi.id)
    faults.start_process(store, 0, gi=big.id, memory_mib=3000, clock=clock)

    by_gi = {d.gpu_instance_id: d for d in nvml.mig_devices(0)}
    big_sample = without_errors(nvml.mig_telemetry(0, by_gi[big.id].index))
    small_sample = without_errors(nvml.mig_telemetry(0, by_gi[small.id].index))

    assert big_sample.memory_total_bytes == 20096 * MIB == by_gi[big.id].memory_total_bytes
    assert small_sample.memory_total_bytes == 4864 * MIB == by_gi[small.id].memory_total_bytes
    assert big_sample.memory_used_bytes == 3000 * MIB
    assert small_sample.memory_used_bytes == 0
    assert small_sample.memory_free_bytes == 4864 * MIB
