"""The driver's two unix sockets and their gRPC servers: the DRA service on
``<plugins>/gpu.nvidia.com/dra.sock`` and the registration service on
``<plugins_registry>/gpu.nvidia.com-reg.sock`` (the names upstream's kubelet plugin helper
uses). The DRA socket is served first, so the kubelet never finds a registration whose
endpoint doesn't answer; ``stop`` removes the registration socket first (the kubelet then
deregisters the driver) and both sockets are gone afterwards."""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc

from gpu_operator.deviceplugin.supervisor import MAX_UNIX_PATH
from gpu_operator.dra import DRIVER_NAME
from gpu_operator.dra.servicer import DraServicer, RegistrationServicer
from gpu_operator.errors import ConfigError
from gpu_operator.protos.grpc_api import add_dra_plugin_servicer, add_plugin_registration_servicer

log = logging.getLogger(__name__)
DRA_SOCKET = "dra.sock"
REGISTRATION_SOCKET = f"{DRIVER_NAME}-reg.sock"


def _listen(path: Path, add: Any, servicer: Any, what: str) -> Any:
    size = len(os.fsencode(path))
    if size > MAX_UNIX_PATH:
        raise ConfigError(
            f"{path}: cannot listen there: the path is {size} bytes, a unix socket's takes at "
            f"most {MAX_UNIX_PATH} ({what})"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)  # a stale socket of an earlier run
    except OSError as error:
        raise ConfigError(f"{path}: cannot listen there: {error.strerror or error} ({what})") from (
            error
        )
    server = grpc.server(ThreadPoolExecutor(max_workers=4, thread_name_prefix="dra-grpc"))
    add(servicer, server)
    try:
        bound = server.add_insecure_port(f"unix://{path}")
    except RuntimeError:  # grpcio >= 1.60 raises instead of returning 0
        bound = 0
    if bound == 0:
        server.stop(grace=None)
        raise ConfigError(f"{path}: cannot listen there: gRPC could not bind the unix socket")
    server.start()
    log.info("serving %s on %s", what, path)
    return server


class DraServer:
    def __init__(self, registrar_dir: Path, plugin_dir: Path, servicer: DraServicer):
        self.dra_socket = plugin_dir / DRA_SOCKET
        self.registration_socket = registrar_dir / REGISTRATION_SOCKET
        self.servicer = servicer
        self.registration = RegistrationServicer(str(self.dra_socket))
        self._servers: list[tuple[Path, Any]] = []

    def start(self) -> None:
        try:
            for path, add, servicer, what in (
                (self.dra_socket, add_dra_plugin_servicer, self.servicer, "the DRA service"),
                (
                    self.registration_socket,
                    add_plugin_registration_servicer,
                    self.registration,
                    "the plugin registration service",
                ),
            ):
                self._servers.append((path, _listen(path, add, servicer, what)))
        except ConfigError:
            self.stop()
            raise

    def stop(self) -> None:
        for path, server in reversed(self._servers):
            server.stop(grace=0.2).wait(2)
            path.unlink(missing_ok=True)
        self._servers.clear()
