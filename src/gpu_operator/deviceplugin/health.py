"""Device health: which devices an NVML event affects (pure), the board that holds every
physical device's health and wakes ``ListAndWatch`` streams, and the monitor thread that feeds
it from NVML XID events and GPU-lost checks.

As upstream: only critical XIDs count (not the default-ignored 13, 31, 43, 45, 68, 109 or those
in ``DP_DISABLE_HEALTHCHECKS``), an XID on a MIG device marks only that device, and a GPU that
falls off the bus marks the GPU and its MIG devices. Beyond upstream, with a recovery quiet
period set: a device that passes a fresh NVML check that long after its last critical XID is
Healthy again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from gpu_operator.deviceplugin.settings import HealthSettings
from gpu_operator.errors import GpuError
from gpu_operator.gpu import EventWatcher, HardwareSettings, Nvml
from gpu_operator.gpu.records import EventKind, GpuEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PhysicalDevice:
    """A GPU or MIG device whose health is tracked (replicas share their physical device's)."""

    uuid: str
    gpu_index: int
    gpu_uuid: str
    gpu_instance_id: int | None = None
    compute_instance_id: int | None = None


def affected_by(event: GpuEvent, devices: Iterable[PhysicalDevice]) -> list[PhysicalDevice]:
    """The devices an event hits: the MIG device(s) matching its GI/CI, else the whole GPU."""
    on_gpu = [
        d
        for d in devices
        if d.gpu_uuid == event.gpu_uuid or (not event.gpu_uuid and d.gpu_index == event.gpu_index)
    ]
    if event.gpu_instance_id is None:
        return on_gpu
    return [
        d
        for d in on_gpu
        if d.gpu_instance_id == event.gpu_instance_id
        and (
            event.compute_instance_id is None or d.compute_instance_id == event.compute_instance_id
        )
    ]


def is_critical(event: GpuEvent, settings: HealthSettings) -> bool:
    """Upstream acts on XID events only; ECC events are logged and skipped."""
    return event.kind is EventKind.XID and settings.is_critical(event.data)


class HealthBoard:
    """Health of every physical device, with a generation number that ``ListAndWatch``
    streams wait on: each change wakes them all to send a fresh list."""

    def __init__(self, uuids: Iterable[str]):
        self._unhealthy: dict[str, float] = {}
        self._known = set(uuids)
        self._generation = 0
        self._wakeups = 0
        self._changed = threading.Condition()

    def healthy(self, uuid: str) -> bool:
        return uuid not in self._unhealthy

    @property
    def generation(self) -> int:
        return self._generation

    def mark(self, uuids: Iterable[str], healthy: bool, *, when: float | None = None) -> bool:
        """Set health; returns whether anything changed (and then wakes the watchers)."""
        now = time.monotonic() if when is None else when
        changed = False
        with self._changed:
            for uuid in uuids:
                if uuid not in self._known:
                    continue
                if healthy and uuid in self._unhealthy:
                    del self._unhealthy[uuid]
                    changed = True
                elif not healthy:
                    changed |= uuid not in self._unhealthy
                    self._unhealthy[uuid] = now
            if changed:
                self._generation += 1
                self._changed.notify_all()
        return changed

    def unhealthy_since(self) -> dict[str, float]:
        with self._changed:
            return dict(self._unhealthy)

    def wait_change(self, seen: int, timeout: float) -> int:
        """Block until the generation moves past ``seen`` or ``timeout``; the generation."""
        with self._changed:
            woken = self._wakeups
            self._changed.wait_for(
                lambda: self._generation != seen or self._wakeups != woken, timeout
            )
            return self._generation

    def wake(self) -> None:
        """Wake every waiter (used at shutdown so streams notice the stop flag)."""
        with self._changed:
            self._wakeups += 1
            self._changed.notify_all()


class HealthMonitor:
    """A thread that waits on NVML events for the devices' GPUs and updates the board.

    It opens its own NVML session (NVML handles are not shared across threads here) and
    polls for lost GPUs and recovery once per ``check_interval_s``.
    """

    def __init__(
        self,
        hardware: HardwareSettings,
        devices: Sequence[PhysicalDevice],
        board: HealthBoard,
        settings: HealthSettings,
        *,
        check_interval_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._hardware = hardware
        self._devices = list(devices)
        self._board = board
        self._settings = settings
        self._check_interval_s = check_interval_s
        self._clock = clock
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="device-health", daemon=True)
        # The last critical XID per device and the GPUs found lost (the DRA driver taints by them).
        self._xids: dict[str, int] = {}
        self._lost: set[int] = set()
        self._xid_lock = threading.Lock()

    def start(self) -> None:
        """Start watching; returns once events are registered (so none are missed)."""
        if not self._settings.enabled:
            log.info("health checks disabled (DP_DISABLE_HEALTHCHECKS)")
            return
        self._thread.start()
        self._ready.wait(10)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def xid(self, uuid: str) -> int | None:
        """The last critical XID seen on the device, if any."""
        with self._xid_lock:
            return self._xids.get(uuid)

    def lost(self, gpu_index: int) -> bool:
        """Whether the last check found the GPU lost (fallen off the bus)."""
        with self._xid_lock:
            return gpu_index in self._lost

    def _run(self) -> None:
        gpus = sorted({d.gpu_index for d in self._devices})
        try:
            with Nvml.open(self._hardware) as nvml:
                watcher = self._watch(nvml, gpus)
                self._ready.set()
                try:
                    self._loop(nvml, gpus, watcher)
                finally:
                    if watcher is not None:
                        watcher.close()
        except GpuError as error:
            log.error("health checks could not start, marking all devices unhealthy: %s", error)
            self._board.mark([d.uuid for d in self._devices], False)
        finally:
            self._ready.set()

    @staticmethod
    def _watch(nvml: Nvml, gpus: list[int]) -> EventWatcher | None:
        try:
            # ECC events too, as upstream registers them: logged, never acted on.
            return nvml.watch_events(gpus, ecc=True)
        except GpuError as error:
            if error.nvml_name != "NVMLError_NotSupported":
                raise
            # Upstream: "too old to support healthchecking"; the devices stay healthy.
            log.warning("no NVML events here (%s): only lost-GPU checks run", error)
            return None

    def _loop(self, nvml: Nvml, gpus: list[int], watcher: EventWatcher | None) -> None:
        next_check = self._clock()
        while not self._stop.is_set():
            event = None
            if watcher is None:
                self._stop.wait(self._settings.event_wait_ms / 1000)
            else:
                try:
                    event = watcher.wait(self._settings.event_wait_ms)
                except GpuError as error:
                    # Upstream: any wait error other than a timeout marks all devices.
                    log.error("NVML event wait failed, marking all devices unhealthy: %s", error)
                    self._board.mark([d.uuid for d in self._devices], False)
                    self._stop.wait(1.0)
                    continue
            if event is not None:
                self._on_event(event)
            if self._clock() >= next_check:
                next_check = self._clock() + self._check_interval_s
                self._check(nvml, gpus)

    def _on_event(self, event: GpuEvent) -> None:
        if not is_critical(event, self._settings):
            log.info("ignoring %s event %d on GPU %s", event.kind, event.data, event.gpu_uuid)
            return
        hit = affected_by(event, self._devices)
        with self._xid_lock:
            for device in hit:
                self._xids[device.uuid] = event.data
        log.warning(
            "XID %d on GPU %s (GI %s, CI %s): %d device(s) unhealthy",
            event.data,
            event.gpu_uuid,
            event.gpu_instance_id,
            event.compute_instance_id,
            len(hit),
        )
        self._board.mark([d.uuid for d in hit], False, when=self._clock())

    def _check(self, nvml: Nvml, gpus: list[int]) -> None:
        lost = set()
        for index in gpus:
            if nvml.is_lost(index):
                lost.add(index)
        with self._xid_lock:
            self._lost = lost
        if lost:
            self._board.mark([d.uuid for d in self._devices if d.gpu_index in lost], False)
        quiet = self._settings.recovery_quiet_period_s
        if quiet is None:
            return
        now = self._clock()
        due = [u for u, since in self._board.unhealthy_since().items() if now - since >= quiet]
        for uuid in due:
            device = next(d for d in self._devices if d.uuid == uuid)
            if device.gpu_index in lost or not _passes_check(nvml, device):
                self._board.mark([uuid], False, when=now)  # restart the quiet period
                continue
            log.info("device %s passed its health check after %.0fs: Healthy again", uuid, quiet)
            self._board.mark([uuid], True)


def _passes_check(nvml: Nvml, device: PhysicalDevice) -> bool:
    """A fresh NVML read of the device: the GPU answers and, for MIG, the device still exists."""
    try:
        gpu = nvml.gpu(device.gpu_index)
        if gpu.uuid != device.gpu_uuid:
            return False
        if device.gpu_instance_id is None:
            return True
        return any(m.uuid == device.uuid for m in nvml.mig_devices(device.gpu_index))
    except GpuError:
        return False
