"""XID events for the exporter: the last XID per GPU or GPU instance, a count per code in a
sliding window (``DCGM_EXP_XID_ERRORS_COUNT``), and a cumulative count per code (ours), so
repeated identical XIDs stay visible instead of hiding behind "last value".

``XidTracker.record`` is pure bookkeeping (bounded: one deque per code, capped); the
``XidWatcher`` thread feeds it from NVML events and never lets an NVML error stop the exporter.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from gpu_operator.errors import GpuOperatorError
from gpu_operator.gpu import Nvml
from gpu_operator.gpu.records import EventKind

log = logging.getLogger(__name__)

MAX_EVENTS_PER_KEY = 10_000

# Names of the XIDs an operator meets most; anything else is "Unknown Error" as upstream.
XID_NAMES: dict[int, str] = {
    0: "No Error",
    13: "Graphics Engine Exception",
    31: "GPU memory page fault",
    32: "Invalid or corrupted push buffer stream",
    38: "Driver firmware error",
    43: "GPU stopped processing",
    45: "Preemptive cleanup, due to previous errors",
    48: "Double Bit ECC Error",
    61: "Internal micro-controller breakpoint/warning",
    62: "Internal micro-controller halt",
    63: "ECC page retirement or row remapping recording event",
    64: "ECC page retirement or row remapper recording failure",
    68: "NVDEC0 Exception",
    69: "Graphics Engine class error",
    74: "NVLINK Error",
    79: "GPU has fallen off the bus",
    92: "High single-bit ECC error rate",
    94: "Contained ECC error",
    95: "Uncontained ECC error",
    109: "Context Switch Timeout Error",
    119: "GSP RPC Timeout",
    120: "GSP Error",
}


def xid_name(code: int) -> str:
    return XID_NAMES.get(code, "Unknown Error")


EntityKey = tuple[int, int | None]
"""(GPU index, GPU-instance id or None for the whole GPU)."""


@dataclass(frozen=True)
class XidView:
    last: dict[EntityKey, int]
    window: dict[tuple[EntityKey, int], int]
    total: dict[tuple[EntityKey, int], int]


class XidTracker:
    """Thread-safe XID bookkeeping, read as an immutable ``XidView``."""

    def __init__(self, window_ms: int, clock: Callable[[], float] = time.monotonic):
        self._window_s = window_ms / 1000
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[EntityKey, int] = {}
        self._times: dict[tuple[EntityKey, int], deque[float]] = {}
        self._total: dict[tuple[EntityKey, int], int] = {}

    def record(self, gpu: int, gi: int | None, code: int) -> None:
        key = (gpu, gi)
        with self._lock:
            self._last[key] = code
            self._times.setdefault((key, code), deque(maxlen=MAX_EVENTS_PER_KEY)).append(
                self._clock()
            )
            self._total[(key, code)] = self._total.get((key, code), 0) + 1

    def view(self) -> XidView:
        cutoff = self._clock() - self._window_s
        with self._lock:
            window = {}
            for key, times in self._times.items():
                while times and times[0] < cutoff:
                    times.popleft()
                if times:
                    window[key] = len(times)
            return XidView(dict(self._last), window, dict(self._total))


WAIT_SLICE_MS = 100
"""How long one NVML event wait blocks. ``nvmlEventSetWait`` cannot be woken from another
thread, so the watcher waits in slices and sees ``stop()`` between two: the exporter's stop
(which must join the watcher before NVML shuts down) takes at most this long, for ten cheap
wait calls a second while idle."""


class XidWatcher(threading.Thread):
    """Feeds a tracker from NVML XID events until ``stop()``."""

    def __init__(self, nvml: Nvml, tracker: XidTracker, poll_ms: int = WAIT_SLICE_MS):
        super().__init__(name="xid-watcher", daemon=True)
        self._nvml = nvml
        self._tracker = tracker
        self._poll_ms = poll_ms
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        try:
            watcher = self._nvml.watch_events()
        except GpuOperatorError as error:
            log.warning("XID events unavailable: %s", error)
            return
        with watcher:
            while not self._stopping.is_set():
                try:
                    event = watcher.wait(self._poll_ms)
                except GpuOperatorError as error:
                    log.warning("XID event wait failed: %s", error)
                    self._stopping.wait(1.0)
                    continue
                if event is not None and event.kind is EventKind.XID and event.gpu_index >= 0:
                    self._tracker.record(event.gpu_index, event.gpu_instance_id, event.data)
