"""``gpu-operator toolkit cdi-generate`` as a process: the YAML spec it writes for a simulated
node validates against the CDI schema."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from helpers.cdi import validate


def test_the_cli_writes_a_yaml_spec_that_validates(tmp_path: Path) -> None:
    out = tmp_path / "cdi" / "nvidia.yaml"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from gpu_operator.cli import main; main()",
            "--sim",
            "dgx-a100",
            "toolkit",
            "cdi-generate",
            "--output",
            str(out),
            "--driver-root",
            str(tmp_path / "no-driver-here"),
        ],
        capture_output=True,
        text=True,
        env={"GPU_OPERATOR_SIM_ROOT": str(tmp_path / "sim"), "PATH": "/usr/bin:/bin"},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    spec = yaml.safe_load(out.read_text())
    validate(spec)
    assert [d["name"] for d in spec["devices"]][::2][:8] == [str(i) for i in range(8)]
