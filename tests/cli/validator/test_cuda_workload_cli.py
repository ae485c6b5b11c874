"""``gpu-operator validator``'s CUDA workload command as the validation pod runs it: a real process
on a simulated node."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_the_cuda_workload_command_prints_test_passed_under_simulation(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from gpu_operator.cli import main; main()",
            "--sim",
            "t4",
            "validator",
            "cuda-workload",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "GPU_OPERATOR_SIM_ROOT": str(tmp_path / "sim")},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Test PASSED" in done.stdout
