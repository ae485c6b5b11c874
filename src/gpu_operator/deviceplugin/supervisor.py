"""The plugin lifecycle as an object: serve one gRPC server per resource on its own socket in
the kubelet's device-plugin directory, check it by dialing it, register with the kubelet, and
keep it so when the kubelet restarts. gRPC is ``grpc_h2``'s (HTTP/2 with ``h2``): grpcio is not
loaded in the plugin's process (issue 15: ~15 MiB and ~20 threads).

A watcher thread looks at the directory every ``poll_s`` (a ``stat`` per socket: no inotify
dependency, and it also notices our own socket being deleted): when ``kubelet.sock`` is
re-created (new inode) or one of our sockets vanished, every server is restarted and registers
again at once; when registration fails (no kubelet yet), it is retried with exponential backoff.
``stop`` stops the servers and removes the sockets.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpu_operator.deviceplugin.heap import release_free_memory
from gpu_operator.deviceplugin.servicer import SERVICE, device_plugin_methods
from gpu_operator.errors import ConfigError, GpuOperatorError
from gpu_operator.grpc_h2.client import unary_call
from gpu_operator.grpc_h2.server import Server
from gpu_operator.protos import deviceplugin_v1beta1_pb2 as pb

log = logging.getLogger(__name__)
API_VERSION = "v1beta1"
MAX_UNIX_PATH = 107
"""Bytes a unix socket path may have on Linux (``sun_path`` is 108 with the final NUL)."""
REGISTER = "/v1beta1.Registration/Register"


@dataclass
class Endpoint:
    """One resource's server: ``make_servicer`` builds a fresh servicer on each (re)start."""

    resource_name: str
    socket_name: str
    make_servicer: Callable[[threading.Event], Any]
    server: Server | None = None
    stopping: threading.Event = field(default_factory=threading.Event)
    registered: bool = False


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_ctime_ns


class PluginSupervisor:
    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        plugin_dir: Path,
        kubelet_socket: Path | None,
        *,
        poll_s: float = 0.05,
        backoff_s: tuple[float, float] = (0.1, 5.0),
        dial_timeout_s: float = 5.0,
        wake: Callable[[], None] = lambda: None,
    ):
        self.endpoints = list(endpoints)
        self.plugin_dir = plugin_dir
        self.kubelet_socket = kubelet_socket
        self._poll_s = poll_s
        self._backoff = backoff_s
        self._dial_timeout_s = dial_timeout_s
        self._wake = wake
        """Wakes blocked ``ListAndWatch`` streams so they see their stop flag at once."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._registered = threading.Condition(self._lock)
        self.registrations = 0
        """How many successful Register calls so far (tests and the benchmark wait on it)."""

    # --- public ----------------------------------------------------------------------

    def start(self) -> None:
        """Serve every endpoint and check it; register (retrying in the background)."""
        try:
            self.plugin_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            why = "a file is in the way" if isinstance(error, FileExistsError) else error.strerror
            raise ConfigError(
                f"{self.plugin_dir}: cannot create the device plugin directory: {why or error}"
            ) from error
        with self._lock:
            self._serve_all()
        self._thread = threading.Thread(target=self._watch, name="plugin-supervisor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        with self._lock:
            self._stop_all()

    def wait_registered(self, count: int, timeout: float) -> bool:
        """Block until at least ``count`` registrations have happened in total."""
        with self._registered:
            return self._registered.wait_for(lambda: self.registrations >= count, timeout)

    def socket_path(self, endpoint: Endpoint) -> Path:
        return self.plugin_dir / endpoint.socket_name

    # --- serving ---------------------------------------------------------------------

    def _serve_all(self) -> None:
        """Serve every endpoint; the first failure is raised once all were tried."""
        errors = []
        for endpoint in self.endpoints:
            try:
                self._serve(endpoint)
            except GpuOperatorError as error:
                errors.append(error)
        if errors:
            raise errors[0]

    def _serve(self, endpoint: Endpoint) -> None:
        path = self.socket_path(endpoint)
        try:
            path.unlink(missing_ok=True)  # a stale socket from an earlier run
        except OSError as error:
            raise ConfigError(
                f"{path}: cannot listen there: {error.strerror or error} (the device plugin "
                "socket lives beside KUBELET_SOCKET)"
            ) from error
        size = len(os.fsencode(path))
        if size > MAX_UNIX_PATH:
            raise ConfigError(
                f"{path}: cannot listen there: the path is {size} bytes, a unix socket's takes "
                f"at most {MAX_UNIX_PATH} (the device plugin socket lives beside KUBELET_SOCKET)"
            )
        endpoint.stopping = threading.Event()
        servicer = endpoint.make_servicer(endpoint.stopping)
        server = Server(path, device_plugin_methods(servicer), name=f"dp-{endpoint.socket_name}")
        try:
            server.start()
        except OSError as error:
            why = (error.strerror or str(error)).lower()
            raise ConfigError(
                f"{path}: cannot listen there: {why} (the device plugin socket lives beside "
                "KUBELET_SOCKET)"
            ) from error
        endpoint.server = server
        endpoint.registered = False
        # Upstream dials its own socket before registering: a server that can't be reached
        # must not be announced.
        deadline = time.monotonic() + self._dial_timeout_s
        while True:
            try:
                unary_call(path, SERVICE + "GetDevicePluginOptions", b"", 1.0)
                break
            except (OSError, ValueError) as error:
                # A restarting kubelet may delete the socket we just made; the watcher
                # then serves again, so don't sit out the whole dial timeout.
                gone = not path.exists()
                if gone or time.monotonic() > deadline:
                    server.stop()
                    endpoint.server = None  # never registered in this state
                    problem = "removed while starting" if gone else "did not answer"
                    raise GpuOperatorError(f"{path}: own socket {problem}") from error
                time.sleep(0.05)
        log.info("serving %s on %s", endpoint.resource_name, path)

    def _stop_all(self, grace: float | None = 0.2) -> None:
        """Stop every server; ``grace`` lets in-flight calls finish (``None``: cancel them)."""
        for endpoint in self.endpoints:
            endpoint.stopping.set()
        self._wake()
        for endpoint in self.endpoints:
            if endpoint.server is not None:
                endpoint.server.stop(grace=grace)
                endpoint.server = None
            endpoint.registered = False
            self.socket_path(endpoint).unlink(missing_ok=True)

    # --- registering and watching -----------------------------------------------------

    def _register(self, endpoint: Endpoint) -> bool:
        assert self.kubelet_socket is not None
        request = pb.RegisterRequest(
            version=API_VERSION,
            endpoint=endpoint.socket_name,
            resource_name=endpoint.resource_name,
            options=pb.DevicePluginOptions(get_preferred_allocation_available=True),
        )
        try:
            unary_call(
                self.kubelet_socket, REGISTER, request.SerializeToString(), self._dial_timeout_s
            )
        except (OSError, ValueError) as error:
            log.warning(
                "registering %s with %s failed: %s",
                endpoint.resource_name,
                self.kubelet_socket,
                getattr(error, "details", None) or error,
            )
            return False
        log.info("registered %s with the kubelet", endpoint.resource_name)
        with self._registered:
            endpoint.registered = True
            self.registrations += 1
            self._registered.notify_all()
        return True

    def _watch(self) -> None:
        kubelet = self.kubelet_socket
        seen = _identity(kubelet) if kubelet else None
        delay = self._backoff[0]
        next_try = serve_again_at = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            current = _identity(kubelet) if kubelet else None
            # Our socket gone while kubelet.sock is gone too: the kubelet is restarting and
            # cleaning the directory; serving now would race its cleanup, so wait for it.
            ours_gone = (kubelet is None or current is not None) and any(
                not self.socket_path(e).exists() for e in self.endpoints
            )
            kubelet_new = current is not None and current != seen
            if kubelet_new or (ours_gone and now >= serve_again_at):
                log.info(
                    "%s: restarting the plugin servers",
                    "kubelet.sock re-created" if kubelet_new else "a plugin socket vanished",
                )
                with self._lock:
                    self._stop_all(grace=None)  # the kubelet that called us is gone
                    if self._stop.is_set():
                        break
                    try:
                        self._serve_all()
                        serve_again_at = now
                        release_free_memory()  # the old servers' freed state
                    except GpuOperatorError as error:
                        log.error("%s", error)
                        serve_again_at = now + self._backoff[0]  # not in a tight loop
                delay, next_try = self._backoff[0], now
            seen = current
            pending = [e for e in self.endpoints if not e.registered and e.server is not None]
            if kubelet is not None and pending and now >= next_try:
                failed = [e for e in pending if not self._register(e)]
                if failed:
                    next_try = time.monotonic() + delay
                    delay = min(delay * 2, self._backoff[1])
                else:
                    delay = self._backoff[0]
            self._stop.wait(self._poll_s)
