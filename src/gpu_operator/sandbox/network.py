"""The sandbox's stand-in for pods' network namespaces: addresses and ports no other sandbox or
program on the machine can take from its pods.

- Each node gets a loopback network of its own, ``127.<N>.0.0/16`` (its pods are
  ``127.<N>.x.y``), claimed with a lock file (``flock``) that every running sandbox of this
  user respects and the kernel releases when the sandbox ends, however it ends. Two sandboxes
  at once so never share a pod address.
- A container's declared ports (``ports[].containerPort``) that can't be bound on its pod's
  address (another program listens on ``0.0.0.0`` with that port, which Linux lets no other
  address share) get a free port of the machine instead; the container finds it in
  ``GPU_OPERATOR_POD_PORTS`` (``gpu_operator.listening``), and so do the probes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

LOCK_DIR = Path(tempfile.gettempdir()) / f"gpu-operator-sandbox-networks-{os.getuid()}"
FIRST, LAST = 1, 254


class Networks:
    """The loopback networks (second octets) one sandbox holds."""

    def __init__(self, lock_dir: Path = LOCK_DIR):
        self.lock_dir = lock_dir
        self._held: dict[int, IO[bytes]] = {}

    def claim(self) -> int:
        """The first ``N`` no running sandbox holds (``127.<N>.0.0/16`` is then ours)."""
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        for octet in range(FIRST, LAST + 1):
            if octet in self._held:
                continue
            lock = (self.lock_dir / f"127.{octet}.lock").open("ab")
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                lock.close()
                continue
            self._held[octet] = lock
            return octet
        raise OSError(f"every loopback network 127.{FIRST}-{LAST}.0.0/16 is held by a sandbox")

    def release(self) -> None:
        for lock in self._held.values():
            lock.close()
        self._held.clear()


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the listeners do
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def machine_ports(pod_ip: str, container: Mapping[str, Any]) -> dict[int, int]:
    """Container port → the machine's port, for each declared TCP port that can't be had on
    ``pod_ip`` (empty when all can: the usual case)."""
    remapped: dict[int, int] = {}
    for entry in container.get("ports") or []:
        if str(entry.get("protocol", "TCP")).upper() != "TCP":
            continue
        with contextlib.suppress(KeyError, TypeError, ValueError):
            port = int(entry["containerPort"])
            if not _bindable(pod_ip, port):
                remapped[port] = _free_port(pod_ip)
    return remapped
