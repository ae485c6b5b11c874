"""``…/pods/NAME/exec`` over a websocket (``v5.channel.k8s.io``, and ``v4``), the protocol
kubectl ≥ 1.30 speaks first: binary frames whose first byte is the channel (0 stdin, 1 stdout,
2 stderr, 3 the closing ``Status``, 4 terminal resize, 255 a v5 "close this channel"). The
emulator checks the pod and container, asks an ``ExecSource`` (the sandbox's kubelets) for the
container's environment, runs the command as a local process with it, and reports the exit
status as a v1 ``Status`` (``NonZeroExitCode`` with the code as a cause, which kubectl turns
into its own exit code). ``tty`` runs the command on a pseudo-terminal. SPDY (kubectl's
fallback, and what older clients speak) is not served: the answer says so."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import signal
import struct
import termios
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import WSMsgType, web

from gpu_operator.sandbox.apiserver.logs import KUBELET_PORT, container_for
from gpu_operator.sandbox.apiserver.status import ApiStatus, bad_request

Obj = dict[str, Any]
PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
READ_CHUNK = 32 * 1024


@dataclass(frozen=True)
class ExecRequest:
    namespace: str
    pod: str
    container: str
    command: tuple[str, ...]
    stdin: bool = False
    tty: bool = False


@dataclass
class ExecTarget:
    """Where the command runs: the container's environment and working directory."""

    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None


class ExecUnavailable(Exception):
    """The container can't run a command (not running, or no process to join): a 400."""


class ExecSource(Protocol):
    def exec_target(self, request: ExecRequest) -> ExecTarget:
        """The environment ``request``'s command runs in; raise ``ExecUnavailable`` if none."""
        ...


def _flag(request: web.Request, name: str, default: bool = False) -> bool:
    return request.query.get(name, "true" if default else "false") in ("true", "1")


def parse(request: web.Request, pod: Obj) -> ExecRequest:
    command = tuple(request.query.getall("command", []))
    if not command:
        raise bad_request("you must specify at least 1 command")
    return ExecRequest(
        namespace=pod["metadata"]["namespace"],
        pod=pod["metadata"]["name"],
        container=container_for(pod, request.query.get("container", "")),
        command=command,
        stdin=_flag(request, "stdin"),
        tty=_flag(request, "tty"),
    )


def exit_status(code: int) -> dict[str, Any]:
    """The ``Status`` a kubelet writes on the error channel when the command ended."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: exit status {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def _failure(message: str) -> dict[str, Any]:
    return {"metadata": {}, "status": "Failure", "message": message, "reason": "InternalError"}


class _Session:
    """One exec: the process, and the pumps between it and the websocket."""

    def __init__(self, ws: web.WebSocketResponse, request: ExecRequest, target: ExecTarget):
        self.ws, self.request, self.target = ws, request, target
        self.proc: asyncio.subprocess.Process | None = None
        self.master: int | None = None
        self.v5 = ws.ws_protocol == PROTOCOLS[0]
        self._send_lock = asyncio.Lock()

    async def send(self, channel: int, data: bytes) -> None:
        async with self._send_lock:
            if not self.ws.closed:
                await self.ws.send_bytes(bytes([channel]) + data)

    async def start(self) -> None:
        stdio: dict[str, Any]
        if self.request.tty:
            self.master, slave = os.openpty()
            stdio = {"stdin": slave, "stdout": slave, "stderr": slave}
        else:
            slave = -1
            stdin = asyncio.subprocess.PIPE if self.request.stdin else asyncio.subprocess.DEVNULL
            stdio = {
                "stdin": stdin,
                "stdout": asyncio.subprocess.PIPE,
                "stderr": asyncio.subprocess.PIPE,
            }
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.request.command,
                env=self.target.env,
                cwd=self.target.cwd,
                start_new_session=True,
                **stdio,
            )
        finally:
            if slave >= 0:
                os.close(slave)

    async def _pump(self, stream: asyncio.StreamReader | None, channel: int) -> None:
        while stream is not None:
            data = await stream.read(READ_CHUNK)
            if not data:
                return
            await self.send(channel, data)

    async def _pump_tty(self) -> None:
        assert self.master is not None
        loop = asyncio.get_running_loop()
        while True:
            try:
                data = await loop.run_in_executor(None, os.read, self.master, READ_CHUNK)
            except OSError:  # EIO: the terminal's last process is gone
                return
            if not data:
                return
            await self.send(STDOUT, data)

    async def _from_client(self) -> None:
        """stdin, resizes and v5 close frames from kubectl until it closes the socket."""
        assert self.proc is not None
        async for message in self.ws:
            if message.type != WSMsgType.BINARY or not message.data:
                continue
            channel, data = message.data[0], message.data[1:]
            if channel == STDIN and data:
                await self._write_stdin(data)
            elif channel == RESIZE and self.master is not None:
                with contextlib.suppress(ValueError, OSError):
                    size = json.loads(data)
                    packed = struct.pack("HHHH", size["Height"], size["Width"], 0, 0)
                    fcntl.ioctl(self.master, termios.TIOCSWINSZ, packed)
            elif channel == CLOSE and data[:1] == bytes([STDIN]):
                self._close_stdin()

    async def _write_stdin(self, data: bytes) -> None:
        assert self.proc is not None
        if self.master is not None:
            os.write(self.master, data)
        elif self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.write(data)
            with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                await self.proc.stdin.drain()

    def _close_stdin(self) -> None:
        assert self.proc is not None
        if self.master is not None:
            os.write(self.master, b"\x04")  # ^D: end of input on a terminal
        elif self.proc.stdin is not None:
            self.proc.stdin.close()

    async def run(self) -> int:
        assert self.proc is not None
        outputs = (
            [asyncio.ensure_future(self._pump_tty())]
            if self.master is not None
            else [
                asyncio.ensure_future(self._pump(self.proc.stdout, STDOUT)),
                asyncio.ensure_future(self._pump(self.proc.stderr, STDERR)),
            ]
        )
        client = asyncio.ensure_future(self._from_client())
        try:
            waiter = asyncio.ensure_future(self.proc.wait())
            await asyncio.wait([waiter, client], return_when=asyncio.FIRST_COMPLETED)
            if not waiter.done():  # kubectl went away first: end the command too
                self.kill()
            code = await waiter
            await asyncio.wait(outputs, timeout=5)
            return code
        finally:
            for task in (*outputs, client):
                task.cancel()
            if self.master is not None:
                os.close(self.master)

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)


async def serve(request: web.Request, pod: Obj, source: ExecSource | None) -> web.StreamResponse:
    wanted = parse(request, pod)
    node = (pod.get("spec") or {}).get("nodeName")
    if not node:
        raise bad_request(f"pod {wanted.pod} does not have a host assigned")
    if source is None:
        raise ApiStatus(
            500,
            f"error dialing backend: no kubelet answers on {node}:{KUBELET_PORT}: this API "
            "server emulator runs without one (ApiServer(exec_source=...) is not set)",
        )
    try:
        target = source.exec_target(wanted)
    except ExecUnavailable as error:
        raise bad_request(str(error)) from None
    upgrade = request.headers.get("Upgrade", "").lower()
    if upgrade != "websocket":
        raise bad_request(
            f"exec needs a websocket upgrade ({', '.join(PROTOCOLS)}); this emulator does not "
            f"serve {upgrade or 'a plain request'} (SPDY)"
        )
    ws = web.WebSocketResponse(protocols=PROTOCOLS, max_msg_size=0, autoping=True)
    await ws.prepare(request)
    session = _Session(ws, wanted, target)
    try:
        try:
            await session.start()
        except OSError as error:
            reason = (
                "executable file not found in $PATH"
                if isinstance(error, FileNotFoundError)
                else error.strerror or str(error)
            )
            status = _failure(
                f'error executing command in container: exec: "{wanted.command[0]}": {reason}'
            )
        else:
            status = exit_status(await session.run())
        await session.send(ERROR, json.dumps(status).encode())
    finally:
        session.kill()
        await ws.close()
    return ws
