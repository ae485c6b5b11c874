"""One simulated node's state file, in process: replaced atomically (a reader holding the old
file still reads it whole) and a broken or missing file reported by name; the same file shared
by real processes is tested in tests/cli/gpu/test_shared_state_processes.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from gpu_operator.errors import ConfigError
from gpu_operator.gpu import HardwareSettings, Nvml
from gpu_operator.gpu.fake import faults
from gpu_operator.gpu.fake.state import StateStore

OpenSim = Callable[..., Nvml]


def settings_for(tmp_path: Path, spec: str) -> HardwareSettings:
    """The settings ``open_sim(spec)`` uses."""
    return HardwareSettings(sim=spec, sim_root=tmp_path / "sim")


# --- another process's changes ---------------------------------------------------------------


# --- the state file --------------------------------------------------------------------------


def test_a_reader_holding_the_old_state_file_still_reads_it_whole_after_an_update(
    open_sim: OpenSim, tmp_path: Path
) -> None:
    open_sim("h200")
    store = StateStore(settings_for(tmp_path, "h200").state_path())
    with store.path.open() as old:
        before = json.loads(store.path.read_text())
        faults.inject_xid(store, 0, 13)
        # A rename replaced the file: the open one is the complete old document.
        assert json.loads(old.read()) == before
    after = json.loads(store.path.read_text())
    assert after["eventSeq"] == before["eventSeq"] + 1
    leftovers = [p.name for p in store.path.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        pytest.param('{"version": 1, "gpus": [', "not valid JSON", id="truncated-json"),
        pytest.param("", "not valid JSON", id="empty"),
        pytest.param("[1, 2, 3]", "not a simulated node state", id="not-an-object"),
        pytest.param('{"version": 99, "gpus": []}', "not a simulated node state", id="version"),
        pytest.param(
            '{"version": 1, "gpus": [{"index": 0, "model": "Z9000"}]}',
            "unknown model 'Z9000'",
            id="unknown-model",
        ),
    ],
)
def test_a_broken_state_file_gives_a_config_error_naming_the_file(
    tmp_path: Path, content: str, problem: str
) -> None:
    settings = settings_for(tmp_path, "h200")
    path = settings.state_path()
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        Nvml.open(settings)
    assert str(path) in str(info.value)
    assert problem in str(info.value)


def test_a_state_file_broken_under_an_open_session_gives_a_config_error_naming_it(
    open_sim: OpenSim, tmp_path: Path
) -> None:
    nvml = open_sim("h200")
    path = settings_for(tmp_path, "h200").state_path()
    path.write_text('{"version": 1, "gpus": [{"ind')
    with pytest.raises(ConfigError, match="not valid JSON") as info:
        nvml.gpu(0)
    assert str(path) in str(info.value)


def test_a_state_file_path_that_does_not_exist_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "node.state.json"
    with pytest.raises(ConfigError, match="does not exist") as info:
        Nvml.open(HardwareSettings(sim=str(missing), sim_root=tmp_path))
    assert str(missing) in str(info.value)
    assert not missing.exists()
