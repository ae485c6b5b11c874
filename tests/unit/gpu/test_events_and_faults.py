"""XID and ECC events through ``Nvml.watch_events``, GPU loss and recovery, and the simulator's
fault-injection API refusing bad input without touching the node."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gpu_operator.errors import ConfigError, GpuError, GpuLostError
from gpu_operator.gpu import EventWatcher, HardwareSettings, Nvml
from gpu_operator.gpu.fake import faults
from gpu_operator.gpu.fake.state import StateStore
from gpu_operator.gpu.records import EventKind, GpuEvent

OpenSim = Callable[..., Nvml]
WAIT_MS = 2000  # generous: an event that is there arrives at once


def store_for(tmp_path: Path, spec: str) -> StateStore:
    return StateStore(HardwareSettings(sim=spec, sim_root=tmp_path / "sim").state_path())


@pytest.fixture
def node(open_sim: OpenSim, tmp_path: Path) -> tuple[Nvml, StateStore]:
    """An 8-GPU HGX H100 node, idle, MIG off."""
    return open_sim("hgx-h100"), store_for(tmp_path, "hgx-h100")


def next_event(watcher: EventWatcher) -> GpuEvent:
    event = watcher.wait(WAIT_MS)
    assert event is not None, "no event arrived"
    return event


# --- XID events ------------------------------------------------------------------------------


def test_an_injected_xid_reaches_a_watcher_with_its_code_and_gpu(
    node: tuple[Nvml, StateStore],
) -> None:
    nvml, store = node
    with nvml.watch_events() as watcher:
        faults.inject_xid(store, 3, 48)
        event = next_event(watcher)
    assert event == GpuEvent(
        gpu_index=3,
        gpu_uuid=nvml.gpu(3).uuid,
        kind=EventKind.XID,
        data=48,
        gpu_instance_id=None,
        compute_instance_id=None,
    )


def test_events_arrive_in_the_order_they_were_injected(node: tuple[Nvml, StateStore]) -> None:
    nvml, store = node
    with nvml.watch_events() as watcher:
        for gpu, code in [(0, 13), (5, 31), (0, 43)]:
            faults.inject_xid(store, gpu, code)
        got = [next_event(watcher) for _ in range(3)]
        assert watcher.wait(20) is None
    assert [(e.gpu_index, e.data) for e in got] == [(0, 13), (5, 31), (0, 43)]


def test_an_xid_on_a_mig_device_names_its_gpu_and_compute_instance(
    node: tuple[Nvml, StateStore],
) -> None:
    nvml, store = node
    nvml.set_mig_mode(2, True)
    gi = nvml.create_gpu_instance(2, 9, 4)  # 3g.40gb at 4 → GI 2
    ci = nvml.create_compute_instance(2, gi.id)
    with nvml.watch_events() as watcher:
        faults.inject_xid(store, 2, 31, gi=gi.id, ci=ci.id)
        event = next_event(watcher)
    assert (event.gpu_index, event.gpu_uuid) == (2, nvml.gpu(2).uuid)
    assert (event.kind, event.data) == (EventKind.XID, 31)
    assert (event.gpu_instance_id, event.compute_instance_id) == (gi.id, ci.id)


def test_waiting_with_no_event_returns_none_after_the_timeout(
    node: tuple[Nvml, StateStore],
) -> None:
    nvml, _ = node
    with nvml.watch_events() as watcher:
        started = time.monotonic()
        assert watcher.wait(60) is None
        waited = time.monotonic() - started
    assert 0.05 <= waited < 1.0


def test_a_watcher_does_not_see_events_injected_before_it_was_created(
    node: tuple[Nvml, StateStore],
) -> None:
    nvml, store = node
    faults.inject_xid(store, 0, 13)
    with nvml.watch_events() as watcher:
        assert watcher.wait(30) is None
        faults.inject_xid(store, 0, 94)
        assert next_event(watcher).data == 94


def test_a_watcher_sees_only_the_gpus_it_watches(node: tuple[Nvml, StateStore]) -> None:
    nvml, store = node
    with nvml.watch_events([1]) as watcher:
        faults.inject_xid(store, 0, 13)
        faults.inject_xid(store, 1, 45)
        event = next_event(watcher)
        assert (event.gpu_index, event.data) == (1, 45)
        assert watcher.wait(20) is None


def test_two_watchers_each_get_every_event(node: tuple[Nvml, StateStore]) -> None:
    nvml, store = node
    with nvml.watch_events() as first, nvml.watch_events() as second:
        faults.inject_xid(store, 4, 63)
        assert next_event(first).data == 63
        assert next_event(second).data == 63


# --- ECC events ------------------------------------------------------------------------------


def test_ecc_events_reach_a_watcher_that_asked_for_them(node: tuple[Nvml, StateStore]) -> None:
    nvml, store = node
    with nvml.watch_events(ecc=True) as watcher:
        faults.inject_ecc(store, 6, double_bit=False)
        faults.inject_ecc(store, 6, double_bit=True)
        single = next_event(watcher)
        double = next_event(watcher)
    assert (single.kind, single.gpu_index) == (EventKind.SINGLE_BIT_ECC, 6)
    assert (double.kind, double.gpu_index) == (EventKind.DOUBLE_BIT_ECC, 6)
    ecc = nvml.telemetry(6).ecc
    assert ecc is not None
    assert (ecc.volatile_corrected, ecc.volatile_uncorrected) == (1, 1)


def test_a_watcher_for_xids_only_skips_ecc_events(node: tuple[Nvml, StateStore]) -> None:
    nvml, store = node
    with nvml.watch_events() as watcher:
        faults.inject_ecc(store, 0, double_bit=True)
        faults.inject_xid(store, 0, 48)
        event = next_event(watcher)
        assert (event.kind, event.data) == (EventKind.XID, 48)
        assert watcher.wait(20) is None


# --- losing a GPU ----------------------------------------------------------------------------


def test_a_lost_gpu_sends_xid_79_and_then_fails_every_call(
    node: tuple[Nvml, StateStore],
) -> None:
    nvml, store = node
    with nvml.watch_events() as watcher:
        faults.lose_gpu(store, 2)
        event = next_event(watcher)
    assert (event.kind, event.data) == (EventKind.XID, 79)

    with pytest.raises(GpuLostError):
        nvml.gpu(2)
    with pytest.raises(GpuLostError):
        nvml.telemetry(2)
    assert nvml.is_lost(2)
    assert nvml.lost_gpus() == [2]
    # The others still answer.
    assert not nvml.is_lost(1)
    assert nvml.gpu(1).index == 1
    assert nvml.telemetry(3).errors == {}


def test_the_xid_79_event_names_the_gpu_that_fell_off(node: tuple[Nvml, StateStore]) -> None:
    nvml, store = node
    uuid = nvml.gpu(2).uuid
    with nvml.watch_events() as watcher:
        faults.lose_gpu(store, 2)
        event = next_event(watcher)
    assert (event.gpu_index, event.gpu_uuid, event.data) == (2, uuid, 79)


def test_a_gpu_lost_error_from_telemetry_names_the_gpu(node: tuple[Nvml, StateStore]) -> None:
    nvml, store = node
    nvml.telemetry(5)  # an exporter has read the GPU before: its handle is cached
    faults.lose_gpu(store, 5)
    with pytest.raises(GpuLostError, match="GPU 5"):
        nvml.telemetry(5)


def test_resetting_a_lost_gpu_brings_it_back(node: tuple[Nvml, StateStore]) -> None:
    nvml, store = node
    uuid = nvml.gpu(4).uuid
    faults.lose_gpu(store, 4)
    assert nvml.lost_gpus() == [4]

    faults.reset_gpu(store, 4)

    assert nvml.lost_gpus() == []
    assert not nvml.is_lost(4)
    assert nvml.gpu(4).uuid == uuid
    assert nvml.telemetry(4).power_mw is not None


# --- bad fault input -------------------------------------------------------------------------

BAD_FAULTS: list[object] = [
    pytest.param(lambda s: faults.inject_xid(s, 8, 13), "no GPU 8", id="xid-gpu-out-of-range"),
    pytest.param(lambda s: faults.inject_xid(s, -1, 13), "no GPU -1", id="xid-negative-gpu"),
    pytest.param(lambda s: faults.inject_xid(s, 0, 0), "XID code", id="xid-code-0"),
    pytest.param(lambda s: faults.inject_xid(s, 0, -31), "XID code", id="xid-negative-code"),
    pytest.param(
        lambda s: faults.inject_xid(s, 0, 13, gi=5), "no GPU instance 5", id="xid-unknown-gi"
    ),
    pytest.param(
        lambda s: faults.inject_xid(s, 0, 13, gi=2, ci=3),
        "no compute instance 3",
        id="xid-unknown-ci",
    ),
    pytest.param(
        lambda s: faults.inject_xid(s, 0, 13, ci=0),
        "must name its GPU instance",
        id="xid-ci-without-gi",
    ),
    pytest.param(lambda s: faults.inject_ecc(s, 8, double_bit=True), "no GPU 8", id="ecc-gpu"),
    pytest.param(lambda s: faults.lose_gpu(s, 9), "no GPU 9", id="lose-gpu-out-of-range"),
    pytest.param(lambda s: faults.reset_gpu(s, 8), "no GPU 8", id="reset-gpu-out-of-range"),
    pytest.param(lambda s: faults.start_process(s, 8), "no GPU 8", id="process-gpu"),
    pytest.param(
        lambda s: faults.start_process(s, 0), "name the GPU instance", id="process-mig-no-gi"
    ),
    pytest.param(
        lambda s: faults.start_process(s, 0, gi=5), "no GPU instance 5", id="process-unknown-gi"
    ),
    pytest.param(
        lambda s: faults.start_process(s, 1, gi=2), "only for MIG mode", id="process-gi-no-mig"
    ),
    pytest.param(
        lambda s: faults.stop_processes(s, 0, 424242), "no process 424242", id="stop-unknown-pid"
    ),
]


@pytest.mark.parametrize(("inject", "message"), BAD_FAULTS)
def test_bad_fault_input_is_refused_with_a_config_error_and_changes_nothing(
    node: tuple[Nvml, StateStore], inject: Callable[[StateStore], object], message: str
) -> None:
    nvml, store = node
    nvml.set_mig_mode(0, True)  # GPU 0: MIG with GI 2 (3g.40gb at 4) holding CI 0
    gi = nvml.create_gpu_instance(0, 9, 4)
    nvml.create_compute_instance(0, gi.id)
    state_before = store.path.read_bytes()
    with nvml.watch_events(ecc=True) as watcher:
        with pytest.raises(ConfigError, match=message):
            inject(store)
        assert watcher.wait(20) is None
    assert store.path.read_bytes() == state_before
    assert nvml.lost_gpus() == []


def test_processes_are_listed_with_their_gpu_instance(node: tuple[Nvml, StateStore]) -> None:
    nvml, store = node
    assert nvml.processes(0) == []
    pid = faults.start_process(store, 0, memory_mib=2048)
    (process,) = nvml.processes(0)
    assert (process.pid, process.used_memory_bytes, process.gpu_instance_id) == (
        pid,
        2048 * 2**20,
        None,
    )


def test_nvml_errors_read_as_words_even_without_the_library(node: tuple[Nvml, StateStore]) -> None:
    nvml, _ = node
    nvml.set_mig_mode(0, True)
    nvml.reset_gpus([0])
    profile = next(p for p in nvml.gi_profiles(0) if p.name == "3g.40gb")
    nvml.create_gpu_instance(0, profile.id, 0)
    with pytest.raises(
        GpuError,
        match=r"GPU 0: nvmlDeviceCreateGpuInstanceWithPlacement\(3g\.40gb, start 0\): "
        r"Insufficient Resources",
    ):
        nvml.create_gpu_instance(0, profile.id, 0)
