"""A SIGTERM the kernel hands to a worker thread still stops an agent.

A signal sent to a process goes to any of its threads; CPython runs the Python handler only in
the main thread, when it next runs bytecode. An agent whose main thread sat in an untimed
``Event.wait()`` never did, and ignored the SIGTERM (the exporter once outlived its test this
way). Here the signal is sent with ``tgkill`` to a thread other than the main one, as the
kernel may choose to, and the agent must exit 0."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.polling import wait_until

_SYS_TGKILL = {"x86_64": 234, "aarch64": 131}.get(os.uname().machine)


def tgkill(pid: int, tid: int, signum: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(_SYS_TGKILL, pid, tid, signum) != 0:
        raise OSError(ctypes.get_errno(), f"tgkill {pid}/{tid}")


def worker_threads(pid: int) -> list[int]:
    return sorted(int(t) for t in os.listdir(f"/proc/{pid}/task") if int(t) != pid)


@pytest.mark.skipif(_SYS_TGKILL is None, reason="tgkill's syscall number unknown here")
@pytest.mark.parametrize(
    ("args", "ready"),
    [
        pytest.param(("exporter", "-a", "127.0.0.1:0"), "serving metrics on", id="exporter"),
        pytest.param(
            ("validator", "-c", "metrics", "--metrics-port", "0", "-o", "{tmp}/validations"),
            "node status exporter serving",
            id="validator-metrics",
        ),
    ],
)
def test_a_sigterm_delivered_to_a_worker_thread_stops_the_agent(
    tmp_path: Path, args: tuple[str, ...], ready: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPU_OPERATOR_SIM")}
    env.update(GPU_OPERATOR_SIM="h200", GPU_OPERATOR_SIM_ROOT=str(tmp_path / "sim"))
    env["NODE_NAME"] = "gpu-node-1"
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    process = subprocess.Popen(
        [sys.executable, "-c", "from gpu_operator.cli import main; main()", *argv],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert process.stderr is not None
        lines = []
        for line in process.stderr:
            lines.append(line)
            if ready in line:
                break
        else:
            pytest.fail(f"{args[0]} exited before it was ready: {''.join(lines)}")
        assert wait_until(lambda: worker_threads(process.pid), 10), "it runs worker threads"
        tgkill(process.pid, worker_threads(process.pid)[0], signal.SIGTERM)
        process.communicate(timeout=30)
        assert process.returncode == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
