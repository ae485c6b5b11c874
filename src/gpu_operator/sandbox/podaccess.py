"""The sandbox's kubelets as the API server emulator's ``LogSource`` and ``ExecSource``:
``kubectl logs`` reads a container's ``<pod dir>/<container>.log`` (``--previous``: the log of
the run before the last restart, ``<container>.previous.log``), ``-f`` follows the file until
the container stops; ``kubectl exec`` runs the command with the container's environment in its
pod directory, for containers the sandbox runs as local processes (not for the simulated ones:
NVIDIA's driver and DCGM stand-ins, workloads, images it can't pull)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path

from gpu_operator.sandbox.apiserver.logs import LogRequest, LogStream, LogUnavailable
from gpu_operator.sandbox.apiserver.podexec import ExecRequest, ExecTarget, ExecUnavailable
from gpu_operator.sandbox.containers import Container
from gpu_operator.sandbox.pods import PodRunner, PodWorker
from gpu_operator.sandbox.reaper import default_reaper

FOLLOW_POLL_S = 0.1
READ_CHUNK = 64 * 1024
TIMESTAMPS_IGNORED = "the sandbox keeps no time per log line: --timestamps is not applied"


def tail(data: bytes, lines: int | None) -> bytes:
    """The last ``lines`` lines of ``data`` (all of it for ``None``)."""
    if lines is None:
        return data
    if lines == 0:
        return b""
    parts = data.splitlines(keepends=True)
    return b"".join(parts[-lines:])


class SandboxPods:
    """Finds a pod's worker among the nodes' pod runners and serves its logs and exec."""

    def __init__(self, runners: Callable[[], Iterable[PodRunner]]):
        self._runners = runners
        self.open_streams = 0
        """Log streams being read now (a ``-f`` counts until the container stops or the
        client goes away)."""

    def _worker(self, namespace: str, pod: str) -> PodWorker | None:
        for runner in list(self._runners()):
            for worker in list(runner.workers.values()):
                if worker.namespace == namespace and worker.name == pod:
                    return worker
        return None

    def _container(self, namespace: str, pod: str, name: str) -> Container | None:
        worker = self._worker(namespace, pod)
        if worker is None:
            return None
        return next((c for c in [*worker.init, *worker.main] if c.spec.name == name), None)

    # --- LogSource ---------------------------------------------------------------------

    def open_log(self, request: LogRequest) -> LogStream:
        container = self._container(request.namespace, request.pod, request.container)
        where = f'container "{request.container}" in pod "{request.pod}"'
        if container is None:
            raise LogUnavailable(f"{where} is waiting to start: ContainerCreating")
        path = container.previous_log_path if request.previous else container.log_path
        if request.previous and not path.exists():
            raise LogUnavailable(f"previous terminated {where} not found")
        if not path.exists() and container.started_at is None:
            reason = container.waiting_reason or "ContainerCreating"
            raise LogUnavailable(f"{where} is waiting to start: {reason}")
        follow = request.follow and not request.previous
        warnings = [TIMESTAMPS_IGNORED] if request.timestamps else []
        return LogStream(self._read(container, path, request.tail_lines, follow), warnings)

    async def _read(
        self, container: Container, path: Path, lines: int | None, follow: bool
    ) -> AsyncIterator[bytes]:
        self.open_streams += 1
        try:
            try:
                with path.open("rb") as log:
                    data = log.read()
                    position = len(data)
                    if tail(data, lines):
                        yield tail(data, lines)
            except FileNotFoundError:
                position = 0
            while follow:
                running = container.running  # read before the file: a last line is never missed
                chunk = self._read_from(path, position)
                if chunk:
                    position += len(chunk)
                    yield chunk
                elif not running:
                    return
                else:
                    await asyncio.sleep(FOLLOW_POLL_S)
        finally:
            self.open_streams -= 1

    @staticmethod
    def _read_from(path: Path, position: int) -> bytes:
        try:
            with path.open("rb") as log:
                log.seek(position)
                return log.read(READ_CHUNK)
        except FileNotFoundError:
            return b""

    # --- ExecSource --------------------------------------------------------------------

    def exec_target(self, request: ExecRequest) -> ExecTarget:
        container = self._container(request.namespace, request.pod, request.container)
        if container is None or not container.running:
            raise ExecUnavailable(f'container not found ("{request.container}")')
        if container.spec.behaviour != "run":
            raise ExecUnavailable(
                f'container "{request.container}" of pod "{request.pod}" runs no process in the '
                f"sandbox: its image {container.spec.image} is simulated "
                f"({container.spec.behaviour}), so there is nothing to exec into"
            )
        if request.command and Path(request.command[0]).name == "tar":
            # kubectl cp: the container has no filesystem of its own here, and a local tar
            # would copy the machine's files, not the pod's.
            raise ExecUnavailable(
                f'kubectl cp is not served: container "{request.container}" of pod '
                f'"{request.pod}" runs as a local process with no filesystem of its own; its '
                f"host paths live under the node's directory, its log under "
                f"{container.log_path.parent}"
            )
        # The reaper's marker: a command still running when the sandbox dies is swept too.
        env = default_reaper().environ(container.spec.env)
        return ExecTarget(env=env, cwd=str(container.log_path.parent))
