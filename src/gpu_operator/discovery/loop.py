"""The labelling loop: label, write to every writer, sleep ``--sleep-interval`` (or forever
with ``infinite``), repeat; ``--oneshot`` labels once. SIGHUP re-reads the settings and config
file and labels again at once; SIGTERM, SIGINT and SIGQUIT end it. The feature file is left in
place on exit (beyond upstream), so labels don't vanish while the pod restarts.

NVML is opened for each run and closed after (as upstream), so a driver that appears later is
picked up. Signals are taken with ``sigtimedwait`` on blocked signals, not handlers, so a
signal can't interrupt a write half-way.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Literal, Protocol

from gpu_operator.deviceplugin.heap import release_free_memory
from gpu_operator.discovery.labels import LabelInputs, LabelSet, build_labels
from gpu_operator.discovery.observe import observe, read_machine_type
from gpu_operator.discovery.settings import DiscoverySettings
from gpu_operator.discovery.view import NodeView
from gpu_operator.errors import GpuError
from gpu_operator.gpu import HardwareSettings, Nvml

log = logging.getLogger("gpu_operator.discovery")
Wake = Literal["stop", "reload"] | None
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)


class Writer(Protocol):
    def write(self, labels: Mapping[str, str]) -> bool: ...

    def describe(self) -> str: ...


def label_node(
    hardware: HardwareSettings, settings: DiscoverySettings, now: Callable[[], float] = time.time
) -> LabelSet:
    """One labelling run. Without a usable NVML and with ``--fail-on-init-error=false``, only
    the timestamp is labelled (as upstream); otherwise the ``GpuError`` propagates."""
    try:
        with Nvml.open(hardware) as nvml:
            view = observe(nvml)
    except GpuError as error:
        if settings.fail_on_init_error:
            raise
        log.error("%s (--fail-on-init-error=false: labelling without GPUs)", error)
        view = NodeView(driver_version="", cuda_driver_version=0, gpus=())
    inputs = LabelInputs(
        mig_strategy=settings.mig_strategy,
        sharing=settings.sharing,
        resources=settings.resources,
        machine_type=read_machine_type(settings.machine_type_file),
        timestamp=None if settings.no_timestamp else int(now()),
    )
    return build_labels(view, inputs)


class SignalWaiter:
    """Sleeps until a timeout or a signal; call ``block()`` first, from the main thread."""

    signals = (signal.SIGHUP, *STOP_SIGNALS)

    def block(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, self.signals)

    def __call__(self, timeout_s: float | None) -> Wake:
        if timeout_s is None:
            received = signal.sigwait(self.signals)
        else:
            info = signal.sigtimedwait(self.signals, timeout_s)
            if info is None:
                return None
            received = signal.Signals(info.si_signo)
        if received == signal.SIGHUP:
            log.info("received SIGHUP, reloading the config")
            return "reload"
        log.info("received %s, exiting", signal.Signals(received).name)
        return "stop"


def run(
    load: Callable[[], DiscoverySettings],
    make_writers: Callable[[DiscoverySettings], Sequence[Writer]],
    hardware: HardwareSettings,
    wait: Callable[[float | None], Wake],
    now: Callable[[], float] = time.time,
) -> int:
    """Label until stopped; returns the number of labelling runs (for tests and logs)."""
    runs = 0
    while True:
        settings = load()
        writers = make_writers(settings)
        log.info(
            "labelling with mig-strategy=%s to %s",
            settings.mig_strategy,
            ", ".join(w.describe() for w in writers),
        )
        while True:
            result = label_node(hardware, settings, now)
            runs += 1
            for warning in result.warnings:
                log.warning("%s", warning)
            for writer in writers:
                writer.write(result.labels)
            if settings.oneshot:
                return runs
            release_free_memory()  # what NVML's start and shutdown left in the heap
            woke = wait(settings.sleep_interval_s)
            if woke == "stop":
                return runs
            if woke == "reload":
                break
