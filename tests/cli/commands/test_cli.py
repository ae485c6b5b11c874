"""The CLI as a user runs it: a real process, its exit status, stdout and stderr."""

from __future__ import annotations

import ctypes.util
import json
import re
import subprocess
from pathlib import Path

import pytest

from helpers.cli import gpu_operator


def run(
    *args: str, sim_root: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    own = {"GPU_OPERATOR_SIM_ROOT": str(sim_root), "GPU_OPERATOR_SIM_SEED": "3", **(env or {})}
    return gpu_operator(*args, env=own)


@pytest.fixture
def sim_root(tmp_path: Path) -> Path:
    return tmp_path / "sim"


@pytest.mark.skipif(
    ctypes.util.find_library("nvidia-ml") is not None, reason="this machine has an NVIDIA driver"
)
def test_without_driver_or_simulation_gpus_prints_one_line_and_fails(sim_root: Path) -> None:
    result = run("gpus", sim_root=sim_root)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "gpu-operator: no NVIDIA driver found: libnvidia-ml.so.1 could not be loaded; "
        "set GPU_OPERATOR_SIM to simulate"
    ]


def test_gpus_json_for_the_h200_preset_has_the_documented_shape(sim_root: Path) -> None:
    result = run("gpus", "--json", sim_root=sim_root, env={"GPU_OPERATOR_SIM": "h200"})
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert {"driverVersion", "cudaDriverVersion", "gpus"} <= set(data)
    gpu = data["gpus"][0]
    assert {
        "index",
        "uuid",
        "name",
        "pciBusId",
        "pciDeviceId",
        "memoryMiB",
        "computeCapability",
        "migCapable",
        "migMode",
        "migProfiles",
        "migDevices",
    } <= set(gpu)
    assert set(gpu["migProfiles"][0]) >= {
        "name",
        "id",
        "instances",
        "memoryMiB",
        "multiprocessors",
        "copyEngines",
        "decoders",
        "encoders",
        "jpegs",
        "ofas",
        "placements",
    }
    assert gpu["uuid"].startswith("GPU-")


def test_dgx_a100_preset_lists_eight_a100s_from_1g5gb_to_7g40gb(sim_root: Path) -> None:
    result = run("--sim", "dgx-a100", "gpus", "--json", sim_root=sim_root)
    assert result.returncode == 0, result.stderr
    gpus = json.loads(result.stdout)["gpus"]
    assert [g["name"] for g in gpus] == ["NVIDIA A100-SXM4-40GB"] * 8
    assert len({g["uuid"] for g in gpus}) == 8
    names = [p["name"] for p in gpus[0]["migProfiles"]]
    assert names[0] == "1g.5gb"
    assert names[-1] == "7g.40gb"


def test_the_table_view_names_every_gpu(sim_root: Path) -> None:
    result = run("--sim", "a30x4", "gpus", "--profiles", sim_root=sim_root)
    assert result.returncode == 0, result.stderr
    rows = re.findall(r"^│ (\d+)\s+│ NVIDIA A30 ", result.stdout, flags=re.MULTILINE)
    assert rows == ["0", "1", "2", "3"]
    assert "GPU 0, 1, 2, 3 (NVIDIA A30) MIG profiles" in result.stdout
    assert "4g.24gb" in result.stdout


def test_an_unknown_preset_is_one_clear_error_and_creates_nothing(sim_root: Path) -> None:
    result = run("--sim", "dgx-z100", "gpus", sim_root=sim_root)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "unknown GPU model or preset 'dgx-z100'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not sim_root.exists() or not any(sim_root.iterdir())


def test_sim_commands_need_a_simulated_node(sim_root: Path) -> None:
    result = run("sim", "lose", "0", sim_root=sim_root)
    assert result.returncode == 1
    assert "set GPU_OPERATOR_SIM or pass --sim" in result.stderr


def test_faults_injected_by_one_command_are_seen_by_the_next(sim_root: Path) -> None:
    assert run("--sim", "dgx-a100", "sim", "lose", "5", sim_root=sim_root).returncode == 0
    result = run("--sim", "dgx-a100", "gpus", "--json", sim_root=sim_root)
    assert result.returncode == 0, result.stderr
    gpus = json.loads(result.stdout)["gpus"]
    assert [g.get("lost", False) for g in gpus] == [False] * 5 + [True] + [False] * 2
    assert "GPU is lost" in gpus[5]["error"]
    assert run("--sim", "dgx-a100", "sim", "reset", "5", sim_root=sim_root).returncode == 0
    after = json.loads(run("--sim", "dgx-a100", "gpus", "--json", sim_root=sim_root).stdout)["gpus"]
    assert not any(g.get("lost") for g in after)


def test_a_bad_fault_is_refused_with_the_reason(sim_root: Path) -> None:
    result = run("--sim", "h200", "sim", "xid", "3", "--code", "79", sim_root=sim_root)
    assert result.returncode == 1
    assert "there is no GPU 3" in result.stderr
    result = run("--sim", "h200", "sim", "process", "0", sim_root=sim_root)
    assert result.returncode == 1
    assert "exactly one of --start or --stop" in result.stderr


def test_a_reset_refused_because_of_a_process_names_it(sim_root: Path) -> None:
    assert run("--sim", "a30", "sim", "process", "0", "--start", sim_root=sim_root).returncode == 0
    result = run("--sim", "a30", "sim", "reset", "0", sim_root=sim_root)
    assert result.returncode == 1
    assert "could not be reset" in result.stderr
    assert "1 process(es)" in result.stderr
