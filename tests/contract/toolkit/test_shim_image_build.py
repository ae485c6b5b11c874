"""The image's build command for the runtime shim (``python -m gpu_operator.toolkit.runtime_shim
OUT``, as docker/Dockerfile runs it, with the C compiler) gives a working binary."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gpu_operator.toolkit.runtime_shim import SOURCE
from helpers.shim_nodes import CC


def test_the_images_build_command_gives_a_working_shim(tmp_path: Path) -> None:
    """docker/Dockerfile runs ``python -m gpu_operator.toolkit.runtime_shim OUT`` from the tree."""
    if CC is None:
        pytest.skip("no C compiler (cc) to build the runtime shim")
    out = tmp_path / "libexec" / "nvidia-container-runtime"
    subprocess.run(
        [sys.executable, "-m", "gpu_operator.toolkit.runtime_shim", str(out)],
        check=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(SOURCE.parents[2])},
    )
    done = subprocess.run([str(out), "--gpu-operator-shim"], capture_output=True, check=True)
    assert done.stdout == b"gpu-operator nvidia-container-runtime\n"
    dockerfile = (SOURCE.parents[3] / "docker" / "Dockerfile").read_text()
    assert "-m gpu_operator.toolkit.runtime_shim" in dockerfile
    assert "--gpu-operator-shim" in dockerfile
