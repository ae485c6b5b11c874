"""A user's shell against ``gpu-operator sandbox up --no-chart`` run in the background, as the
end-to-end tests that type helm and kubectl commands start it: helm (``.tools/helm``) and this
venv's kubectl on PATH, KUBECONFIG pointing at the sandbox."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gpu_operator.sandbox.chart import find_helm

BIN = Path(sys.executable).parent


class Shell:
    """helm and kubectl on PATH, KUBECONFIG pointing at the sandbox."""

    def __init__(self, kubeconfig: Path):
        path = os.pathsep.join([str(find_helm().parent), str(BIN), os.environ["PATH"]])
        self.env = {**os.environ, "PATH": path, "KUBECONFIG": str(kubeconfig)}

    def type(self, line: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", line],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )

    def json(self, line: str) -> dict[str, object]:
        """The JSON a command prints (it must succeed)."""
        done = self.type(line, 60)
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout))

    def items(self, line: str) -> list[dict[str, object]]:
        """The ``items`` of the list a command prints as JSON (it must succeed)."""
        done = self.type(line)
        assert done.returncode == 0, done.stderr
        return list(json.loads(done.stdout)["items"])


@contextmanager
def sandbox_up() -> Iterator[Shell]:
    """`gpu-operator sandbox up --no-chart` in the background (two DGX A100 nodes); stopped
    when the block ends."""
    short = Path(tempfile.mkdtemp(prefix="gos-"))  # unix socket paths stop at 107 bytes
    directory, kubeconfig = short / "sbx", short / "kubeconfig"
    up = subprocess.Popen(
        [
            str(BIN / "gpu-operator"),
            "sandbox",
            "up",
            "--no-chart",
            "--dir",
            str(directory),
            "--kubeconfig",
            str(kubeconfig),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not (directory / "sandbox.pid").exists():
            assert up.poll() is None, "sandbox up exited"
            assert time.monotonic() < deadline, "sandbox up wrote no pid file in 60 s"
            time.sleep(0.2)
        yield Shell(kubeconfig)
    finally:
        up.terminate()
        try:
            up.wait(60)
        except subprocess.TimeoutExpired:
            up.kill()  # its watchdog then clears the pods: nothing outlives the test
            up.wait()
        shutil.rmtree(short, ignore_errors=True)
