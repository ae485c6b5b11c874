"""Guard rails for every test: the real libnvidia-ml is never loaded unless a test is marked
``gpu``, simulated nodes live in a per-test directory, settings never leak from the developer's
environment, and no test reaches a real API server through the caller's ``KUBECONFIG`` or
``~/.kube`` (``HOME`` is a per-test directory). The API server emulator fixtures every tier uses
live here too (see tests/README.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pynvml
import pytest
from lightkube import AsyncClient, Client

from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.kube import build_async_client, build_client
from gpu_operator.sandbox.apiserver import ApiServer, ServerThread
from helpers.emulator import new_apiserver, settings_for
from helpers.isolation import isolate_from_real_clusters

NODE_PRESETS = ["dgx-a100", "hgx-h100", "h200", "a30x4", "t4"]


@pytest.fixture(autouse=True)
def _isolated_environment(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    for var in ("GPU_OPERATOR_SIM", "GPU_OPERATOR_SIM_SEED"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("GPU_OPERATOR_SIM_ROOT", str(tmp_path / "sim"))
    # HOME beside, not inside, tmp_path: tests list their tmp_path.
    isolate_from_real_clusters(monkeypatch, tmp_path_factory.mktemp("home"))
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


@pytest.fixture
def server_thread() -> Iterator[ServerThread]:
    """An empty API server emulator on its own thread, for synchronous clients and subprocesses
    (``server_thread.server.write_kubeconfig(path)`` gives them a kubeconfig)."""
    with ServerThread(new_apiserver()) as thread:
        yield thread


@pytest.fixture
def client(server_thread: ServerThread) -> Iterator[Client]:
    """A synchronous lightkube client to ``server_thread``, built as the agents build theirs."""
    client = build_client(settings_for(server_thread.url))
    yield client
    client.close()


@pytest.fixture
async def apiserver() -> AsyncIterator[ApiServer]:
    """An empty API server emulator on the test's own event loop."""
    async with new_apiserver() as server:
        yield server


@pytest.fixture
async def aclient(apiserver: ApiServer) -> AsyncIterator[AsyncClient]:
    """An asyncio lightkube client to ``apiserver``, built as the agents build theirs."""
    client = build_async_client(settings_for(apiserver.url))
    yield client
    await client.close()
