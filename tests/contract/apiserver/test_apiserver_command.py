"""``gpu-operator sandbox apiserver``: runs in the foreground, prints its URL, writes a
kubeconfig that kubectl uses, stops cleanly on SIGINT, and refuses a port in use clearly."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(30)
BIN = Path(sys.executable).parent


def test_apiserver_command_serves_kubectl(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc.yaml"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from gpu_operator.cli import main; main()",
            "sandbox",
            "apiserver",
            "--port",
            "0",
            "--kubeconfig",
            str(kubeconfig),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("API server emulator listening on http://127.0.0.1:"), first
        assert proc.stdout.readline().strip() == f"kubeconfig: {kubeconfig}"
        kubectl = shutil.which("kubectl", path=str(BIN))
        if kubectl is not None:
            out = subprocess.run(
                [kubectl, "--kubeconfig", str(kubeconfig), "get", "ns", "-o", "name"],
                capture_output=True,
                text=True,
                timeout=20,
            )
            assert "namespace/default" in out.stdout.split(), out.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err


def test_port_in_use_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                "from gpu_operator.cli import main; main()",
                "sandbox",
                "apiserver",
                "--port",
                str(port),
                "--kubeconfig",
                str(tmp_path / "kc"),
            ],
            capture_output=True,
            text=True,
            timeout=20,
        )
    assert result.returncode == 1
    assert result.stderr.strip() == f"gpu-operator: --port {port}: 127.0.0.1:{port} is in use"
