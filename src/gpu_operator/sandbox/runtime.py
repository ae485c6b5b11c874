"""A node's container runtime as far as the toolkit can see it: a process that listens on
``/run/containerd/containerd.sock`` (under the node's root) and reloads its configuration on
SIGHUP — which the toolkit sends to the socket's owner after changing ``config.toml``. Each
reload is counted in ``containerd.reloads`` beside the socket. Runs as its own process (the
toolkit signals the socket's owner: it must not be the sandbox), started and stopped by it
through the sandbox's reaper (so it never outlives the sandbox).

    python -m gpu_operator.sandbox.runtime /node/run/containerd/containerd.sock
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from types import FrameType

from gpu_operator.sandbox.reaper import default_reaper


def serve(path: Path) -> None:
    reloads = path.with_name("containerd.reloads")
    stop = threading.Event()
    count = 0

    def on_hup(signum: int, frame: FrameType | None) -> None:
        nonlocal count
        count += 1
        reloads.write_text(f"{count}\n")

    signal.signal(signal.SIGHUP, on_hup)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    path.unlink(missing_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen(16)
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except (TimeoutError, InterruptedError):
                continue
            conn.close()
    path.unlink(missing_ok=True)


class RuntimeStandIn:
    """The stand-in runtime of one node, as a child process."""

    def __init__(self, node_root: Path):
        self.socket = node_root / "run/containerd/containerd.sock"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 10.0) -> None:
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        self._proc = default_reaper().popen(
            [sys.executable, "-m", "gpu_operator.sandbox.runtime", str(self.socket)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        stop = threading.Event()
        waited = 0.0
        while not self.socket.exists() and waited < timeout_s and self._proc.poll() is None:
            stop.wait(0.05)
            waited += 0.05

    @property
    def reloads(self) -> int:
        try:
            return int(self.socket.with_name("containerd.reloads").read_text())
        except (OSError, ValueError):
            return 0

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(5)
        default_reaper().release(self._proc)
        self._proc = None


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
