"""Guard rails for every test: the real libnvidia-ml is never loaded unless a test is marked
``gpu``, simulated nodes live in a per-test directory, and settings never leak from the
developer's environment."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pynvml
import pytest

from gpu_operator.gpu import HardwareSettings, Nvml

NODE_PRESETS = ["dgx-a100", "hgx-h100", "h200", "a30x4", "t4"]


@pytest.fixture(autouse=True)
def _isolated_environment(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for var in ("GPU_OPERATOR_SIM", "GPU_OPERATOR_SIM_SEED"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("GPU_OPERATOR_SIM_ROOT", str(tmp_path / "sim"))
    if request.node.get_closest_marker("gpu") is None:

        def refuse(*args: object, **kwargs: object) -> None:
            raise AssertionError("this test tried to load the real libnvidia-ml; mark it 'gpu'")

        monkeypatch.setattr(pynvml, "nvmlInit", refuse)
        monkeypatch.setattr(pynvml, "nvmlInitWithFlags", refuse)


class FrozenClock:
    """A clock tests move by hand: simulated telemetry is a pure function of it."""

    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def sim_settings(tmp_path: Path) -> HardwareSettings:
    """Settings for simulated nodes under this test's own directory; pick the preset with
    ``dataclasses.replace(sim_settings, sim="h200")`` or use ``open_sim``."""
    return HardwareSettings(sim=None, sim_root=tmp_path / "sim")


@pytest.fixture
def open_sim(
    tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Nvml]]:
    """``open_sim("dgx-a100")`` → an open ``Nvml`` on a fresh simulated node (closed after);
    state under ``tmp_path / "sim"``, seed fixed, telemetry on the test's frozen ``clock``."""
    opened: list[Nvml] = []

    def _open(spec: str, *, seed: int = 7) -> Nvml:
        monkeypatch.setenv("GPU_OPERATOR_SIM_SEED", str(seed))
        nvml = Nvml.open(HardwareSettings(sim=spec, sim_root=tmp_path / "sim"), clock=clock)
        opened.append(nvml)
        return nvml

    yield _open
    for nvml in opened:
        nvml.close()
