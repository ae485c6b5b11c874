"""The simulator's shared state file across real processes: a GPU instance made by another
process is seen by an open session, concurrent writers lose no update, readers never see a partly
written file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.gpu.fake import faults
from gpu_operator.gpu.fake.state import StateStore
from gpu_operator.gpu.records import MigMode, MigModeValue

OpenSim = Callable[..., Nvml]


def settings_for(tmp_path: Path, spec: str) -> HardwareSettings:
    """The settings ``open_sim(spec)`` uses."""
    return HardwareSettings(sim=spec, sim_root=tmp_path / "sim")


def child_env(settings: HardwareSettings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPU_OPERATOR_SIM")}
    assert settings.sim is not None
    env.update({"GPU_OPERATOR_SIM": settings.sim, "GPU_OPERATOR_SIM_ROOT": str(settings.sim_root)})
    return env


Spawn = Callable[..., "subprocess.Popen[str]"]


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """``spawn(code, settings, *args)`` starts ``python -c code args...`` simulating the node of
    ``settings``; children still running when the test ends are killed."""
    children: list[subprocess.Popen[str]] = []

    def _spawn(code: str, settings: HardwareSettings, *args: str) -> subprocess.Popen[str]:
        child = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code), *args],
            env=child_env(settings),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        children.append(child)
        return child

    yield _spawn
    for child in children:
        if child.poll() is None:
            child.kill()
        child.communicate()


def finish(child: subprocess.Popen[str]) -> str:
    out, err = child.communicate(timeout=30)
    assert child.returncode == 0, err
    return out


CREATE_MIG_GI = """
    from gpu_operator.gpu import Nvml

    with Nvml.open() as nvml:
        mode, status = nvml.set_mig_mode(0, True)
        assert status is None, status
        gi = nvml.create_gpu_instance(0, 9, 4)
        nvml.create_compute_instance(0, gi.id)
        print(nvml.mig_devices(0)[0].uuid)
"""


def test_a_gpu_instance_made_by_another_process_is_seen_by_an_open_session(
    open_sim: OpenSim, tmp_path: Path, spawn: Spawn
) -> None:
    nvml = open_sim("hgx-h100")
    assert nvml.gpu_instances(0) == []
    assert nvml.gpu(0).mig_mode == MigMode(MigModeValue.DISABLED, MigModeValue.DISABLED)

    child_uuid = finish(spawn(CREATE_MIG_GI, settings_for(tmp_path, "hgx-h100"))).strip()

    mode = nvml.mig_mode(0)
    assert mode is not None
    assert mode.enabled
    (gi,) = nvml.gpu_instances(0)
    assert (gi.id, gi.profile_name, gi.placement.start, gi.placement.size) == (2, "3g.40gb", 4, 4)
    assert len(gi.compute_instances) == 1
    assert [d.uuid for d in nvml.mig_devices(0)] == [child_uuid]


FILL_GPUS_AND_INJECT = """
    import sys, time
    from pathlib import Path
    from gpu_operator.gpu import HardwareSettings, Nvml
    from gpu_operator.gpu.fake import faults
    from gpu_operator.gpu.fake.state import StateStore

    gpus = [int(g) for g in sys.argv[1].split(",")]
    ready, go = Path(sys.argv[2]), Path(sys.argv[3])
    store = StateStore(HardwareSettings.from_env().state_path())
    with Nvml.open() as nvml:
        ready.touch()
        while not go.exists():
            time.sleep(0.001)
        for start in range(7):
            for gpu in gpus:
                gi = nvml.create_gpu_instance(gpu, 19, start)  # 1g.5gb
                nvml.create_compute_instance(gpu, gi.id)
                faults.inject_xid(store, gpu, 13)
"""


def test_two_processes_writing_at_once_lose_no_update(
    open_sim: OpenSim, tmp_path: Path, spawn: Spawn
) -> None:
    settings = settings_for(tmp_path, "dgx-a100")
    nvml = open_sim("dgx-a100")
    store = StateStore(settings.state_path())
    for gpu in range(8):
        nvml.set_mig_mode(gpu, True)
        faults.reset_gpu(store, gpu)
    go = tmp_path / "go"
    children = []
    for n, gpus in enumerate(["0,2,4,6", "1,3,5,7"]):
        ready = tmp_path / f"ready-{n}"
        children.append((ready, spawn(FILL_GPUS_AND_INJECT, settings, gpus, str(ready), str(go))))
    deadline = time.monotonic() + 20
    while not all(ready.exists() for ready, _ in children):
        assert time.monotonic() < deadline, "children did not start"
        assert all(child.poll() is None for _, child in children), "a child died"
        time.sleep(0.002)
    go.touch()  # both start writing together
    for _, child in children:
        finish(child)

    for gpu in range(8):
        gis = nvml.gpu_instances(gpu)
        assert sorted(gi.placement.start for gi in gis) == list(range(7)), f"GPU {gpu}"
        assert all(len(gi.compute_instances) == 1 for gi in gis)
    doc = json.loads(store.path.read_text())
    assert doc["eventSeq"] == 2 * 4 * 7
    assert [e["seq"] for e in doc["events"]] == list(range(1, 57))


HAMMER = """
    import sys
    from gpu_operator.gpu import HardwareSettings
    from gpu_operator.gpu.fake import faults
    from gpu_operator.gpu.fake.state import StateStore

    store = StateStore(HardwareSettings.from_env().state_path())
    for i in range(int(sys.argv[1])):
        faults.inject_xid(store, i % 8, 13)
"""


def test_readers_never_see_a_partly_written_state_file(
    open_sim: OpenSim, tmp_path: Path, spawn: Spawn
) -> None:
    settings = settings_for(tmp_path, "dgx-a100")
    open_sim("dgx-a100")
    path = settings.state_path()
    writer = spawn(HAMMER, settings, "150")
    seen = []
    while writer.poll() is None:
        text = path.read_text()
        seen.append(json.loads(text)["eventSeq"])  # fails on a torn or truncated file
    finish(writer)
    assert json.loads(path.read_text())["eventSeq"] == 150
    assert seen == sorted(seen), "a reader saw the state go back in time"
    assert len(set(seen)) > 1, "the reader never overlapped the writer"
