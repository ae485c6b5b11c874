"""``gpu-operator validator`` and ``--sim ... sim`` as the pod runs them: real processes on a
simulated node, upstream's environment variables, the files written and the one line on failure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gpu_operator.gpu import HardwareSettings
from gpu_operator.kube import KubeSettings
from gpu_operator.toolkit.settings import ToolkitSettings
from gpu_operator.validator.components import check_for
from gpu_operator.validator.running import ValidationFailed, run_component
from gpu_operator.validator.settings import ValidatorSettings
from gpu_operator.validator.workloads import PodSettings


def test_a_lost_gpu_fails_the_driver_check_naming_nvml(tmp_path: Path) -> None:
    hardware = HardwareSettings(sim="t4", sim_root=tmp_path / "sim")
    env = {**os.environ, "GPU_OPERATOR_SIM_ROOT": str(tmp_path / "sim")}
    cli = [sys.executable, "-c", "from gpu_operator.cli import main; main()", "--sim", "t4"]
    subprocess.run([*cli, "sim", "lose", "0"], env=env, check=True, capture_output=True)
    settings = ValidatorSettings(component="driver", output_dir=tmp_path / "v")
    check = check_for(settings, hardware, KubeSettings(), PodSettings("n", "ns"), ToolkitSettings())
    with pytest.raises(
        ValidationFailed, match="driver validation failed: NVML on simulated node t4"
    ):
        run_component(tmp_path / "v" / "driver-ready", check)
    assert not (tmp_path / "v" / "driver-ready").exists()


def test_the_validator_command_runs_components_from_upstream_env_vars(tmp_path: Path) -> None:
    out = tmp_path / "validations"
    env = {
        **os.environ,
        "GPU_OPERATOR_SIM_ROOT": str(tmp_path / "sim"),
        "GPU_OPERATOR_SIM": "dgx-a100",
        "OUTPUT_DIR": str(out),
        "WITH_WORKLOAD": "false",
    }
    cli = [sys.executable, "-c", "from gpu_operator.cli import main; main()", "validator"]
    for component in ("driver", "cuda"):
        done = subprocess.run(
            cli, env={**env, "COMPONENT": component}, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
        assert f"{component} validation passed" in done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["cuda-ready", "driver-ready"]
    bad = subprocess.run(
        cli, env={**env, "COMPONENT": "gpu"}, capture_output=True, text=True, check=False
    )
    assert bad.returncode == 1
    assert "COMPONENT='gpu': expected one of driver, toolkit, cuda, plugin, metrics" in bad.stderr
