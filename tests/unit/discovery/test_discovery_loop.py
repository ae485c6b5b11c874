"""The labelling loop's control flow (oneshot, sleep, reload, stop), in process; the command
as a user runs it is in tests/cli/discovery/test_discovery_cli.py."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

import pytest

from gpu_operator.discovery.loop import Wake, run
from gpu_operator.discovery.settings import DiscoverySettings
from gpu_operator.gpu import HardwareSettings

# --- the loop in-process ---------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.written: list[Mapping[str, str]] = []

    def write(self, labels: Mapping[str, str]) -> bool:
        self.written.append(dict(labels))
        return True

    def describe(self) -> str:
        return "memory"


def scripted(*wakes: Wake) -> tuple[Callable[[float | None], Wake], list[float | None]]:
    timeouts: list[float | None] = []
    queue = list(wakes)

    def wait(timeout_s: float | None) -> Wake:
        timeouts.append(timeout_s)
        return queue.pop(0)

    return wait, timeouts


@pytest.fixture
def t4(tmp_path: Path) -> HardwareSettings:
    return HardwareSettings(sim="t4", sim_root=tmp_path / "sim")


def test_oneshot_labels_once_and_never_waits(t4: HardwareSettings) -> None:
    recorder = Recorder()
    wait, timeouts = scripted()
    settings = DiscoverySettings(oneshot=True)

    assert run(lambda: settings, lambda s: [recorder], t4, wait, now=lambda: 42.0) == 1
    assert timeouts == []
    assert recorder.written[0]["nvidia.com/gfd.timestamp"] == "42"


def test_the_loop_sleeps_the_interval_relabels_reloads_and_stops(t4: HardwareSettings) -> None:
    recorder = Recorder()
    loads: list[DiscoverySettings] = []
    first = DiscoverySettings(sleep_interval_s=30.0, no_timestamp=True)
    reloaded = replace(first, mig_strategy="mixed", sleep_interval_s=None)

    def load() -> DiscoverySettings:
        loads.append(reloaded if loads else first)
        return loads[-1]

    wait, timeouts = scripted(None, "reload", "stop")

    runs = run(load, lambda s: [recorder], t4, wait)

    assert runs == 3
    assert timeouts == [30.0, 30.0, None], "infinite after the reload"
    assert len(loads) == 2
    assert "nvidia.com/mig.strategy" not in recorder.written[1]
    assert recorder.written[2]["nvidia.com/mig.strategy"] == "mixed"
