"""``gpu-operator wait-for`` as a gating init container runs it: a real process that exits 0 once
the files exist and 1 naming the missing ones on timeout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_the_wait_for_command_exits_0_when_files_exist_and_1_naming_them_on_timeout(
    tmp_path: Path,
) -> None:
    there = tmp_path / "cuda-ready"
    there.write_text("")
    command = [sys.executable, "-c", "from gpu_operator.cli import main; main()", "wait-for"]
    env = {**os.environ, "GPU_OPERATOR_SIM_ROOT": str(tmp_path)}
    ok = subprocess.run(
        [*command, str(there)], capture_output=True, text=True, env=env, check=False
    )
    assert ok.returncode == 0, ok.stderr
    late = subprocess.run(
        [*command, str(there), str(tmp_path / "plugin-ready"), "--timeout", "0.2"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert late.returncode == 1
    assert f"timed out after 0.2s waiting for {tmp_path / 'plugin-ready'}" in late.stderr
