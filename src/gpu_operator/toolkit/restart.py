"""Make the container runtime load its new config, as upstream does: ``signal`` = SIGHUP to the
process that owns the runtime's socket (its PID from the peer credentials, ``SO_PEERCRED``;
the runtime exits and its supervisor starts it again with the new file), ``systemd`` =
``systemctl restart <unit>`` in the host's root, ``none`` = nothing."""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from gpu_operator.errors import GpuOperatorError

ATTEMPTS = 6
RETRY_DELAY_S = 5.0


class RestartError(GpuOperatorError):
    """The runtime could not be told to reload; the message says how we tried."""


def socket_owner_pid(path: Path) -> int:
    """The PID of the process listening on the unix socket ``path``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        try:
            sock.connect(str(path))
        except OSError as error:
            raise RestartError(f"connect to runtime socket {path}: {error.strerror}") from error
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, _uid, _gid = struct.unpack("3i", creds)
    if pid <= 0:
        raise RestartError(f"runtime socket {path}: the peer's PID is unknown")
    return int(pid)


def signal_runtime(
    path: Path,
    *,
    signum: int = signal.SIGHUP,
    attempts: int = ATTEMPTS,
    delay_s: float = RETRY_DELAY_S,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """SIGHUP the socket's owner (retrying while the socket is not up); the PID signalled."""
    last: RestartError | None = None
    for attempt in range(attempts):
        try:
            pid = socket_owner_pid(path)
            os.kill(pid, signum)
            return pid
        except RestartError as error:
            last = error
        except ProcessLookupError:
            last = RestartError(f"runtime socket {path}: its process went away")
        if attempt + 1 < attempts:
            sleep(delay_s)
    raise RestartError(f"{last} (after {attempts} attempts)")


def systemd_restart(unit: str, host_root: Path) -> None:
    """``systemctl restart <unit>``, inside the host's root when we run in a container."""
    argv = ["systemctl", "restart", unit]
    if host_root != Path("/"):
        argv = ["chroot", str(host_root), *argv]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    except (FileNotFoundError, subprocess.TimeoutExpired) as error:
        raise RestartError(f"{' '.join(argv)}: {error}") from error
    if done.returncode != 0:
        raise RestartError(
            f"{' '.join(argv)} exited {done.returncode}: {(done.stderr or done.stdout).strip()}"
        )
