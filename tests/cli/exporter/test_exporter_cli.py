"""``gpu-operator exporter`` as the pod runs it: a real process serving a simulated node until
SIGTERM, the one line it prints for a bad collectors file, and upstream's flags: the 1.x names
served and the flags it has no use for named in one line."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from helpers.exporter import CSV_1X, get


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_cli_serves_a_simulated_node_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPU_OPERATOR_SIM")}
    env.update(
        {
            "GPU_OPERATOR_SIM": "dgx-a100",
            "GPU_OPERATOR_SIM_ROOT": str(tmp_path),
            "NODE_NAME": "gpu-node-1",
            "DCGM_EXPORTER_LISTEN": f"127.0.0.1:{port}",
            "DCGM_EXPORTER_INTERVAL": "500",
        }
    )
    process = subprocess.Popen(
        [sys.executable, "-c", "from gpu_operator.cli import main; main()", "exporter"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        body = b""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                body = get(f"http://127.0.0.1:{port}/metrics")[1]
                break
            except urllib.error.URLError:
                time.sleep(0.1)
        assert b'Hostname="gpu-node-1"' in body
        assert body.count(b"DCGM_FI_DEV_GPU_TEMP{") == 8
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=20)[0]
    assert process.returncode == 0, output.decode()


def test_the_cli_refuses_a_bad_collectors_file_with_its_line(tmp_path: Path) -> None:
    csv = tmp_path / "c.csv"
    csv.write_text("DCGM_FI_DEV_GPU_TEMP, gauge, t\nDCGM_FI_BOGUS, gauge, b\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPU_OPERATOR_SIM")}
    env.update({"GPU_OPERATOR_SIM": "h200", "GPU_OPERATOR_SIM_ROOT": str(tmp_path)})
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from gpu_operator.cli import main; main()",
            "exporter",
            "-f",
            str(csv),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert f"{csv}:2: unknown DCGM field 'DCGM_FI_BOGUS'" in result.stderr


def test_the_command_runs_with_upstream_s_flags_and_names_the_unused_in_one_line(
    tmp_path: Path,
) -> None:
    csv = tmp_path / "1.x-compatibility-metrics.csv"
    csv.write_text(CSV_1X)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPU_OPERATOR_SIM")}
    env.update({"GPU_OPERATOR_SIM": "h200", "GPU_OPERATOR_SIM_ROOT": str(tmp_path / "sim")})
    command = [
        sys.executable, "-c", "from gpu_operator.cli import main; main()", "exporter",
        "-f", str(csv), "-o", "-address", f"127.0.0.1:{port}", "-c", "500",
        "-r", "nv-hostengine:5555", "--kubernetes-enable-pod-uid=true", "--enable-pprof=false",
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        body = b""
        deadline = time.monotonic() + 30
        while not body and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as response:
                    body = response.read()
            except urllib.error.URLError:
                time.sleep(0.1)
        assert b"dcgm_sm_clock{" in body
        assert b'uuid="GPU-' in body
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    notes = [line for line in stderr.splitlines() if "accepted, not used" in line]
    assert len(notes) == 1, stderr
    assert notes[0].endswith(
        "accepted, not used by this exporter: --remote-hostengine-info=nv-hostengine:5555 (no DCGM "
        "here: NVML is read directly); --kubernetes-enable-pod-uid (only with -k/--kubernetes)"
    )
