"""Nothing the sandbox starts outlives it. Three layers, each covering what the one before
misses:

1. **Process groups.** Every process the sandbox starts (a container, a node's runtime
   stand-in) leads its own process group; whatever it spawns (the validator's workload, MIG
   hooks, probes' shells) stays in that group, so one ``killpg`` ends a container and all it
   started, as a runtime ends a container's cgroup.
2. **A parent-death signal.** Each is started with ``PR_SET_PDEATHSIG = SIGKILL`` (through
   util-linux's ``setpriv --pdeathsig``, which execs the command; else a ``preexec_fn`` — that
   forces ``fork()`` over ``vfork()``, and gRPC, loaded in the sandbox, then logs a line per
   fork), from one long-lived thread (the kernel sends the signal when the *thread* that forked
   exits, not the process; a pod worker thread would do so while its container runs on).
3. **A watchdog.** A small process of its own session (so neither Ctrl-C at a terminal nor
   ``timeout``'s signal to the parent's process group reaches it) holds a pipe from the parent.
   The parent tells it each process group it starts and ends; when the pipe closes — the
   parent exited, crashed or was SIGKILLed — it SIGKILLs every group still registered, then
   every process whose environment carries this parent's marker (``GPU_OPERATOR_SANDBOX_REAPER``,
   inherited by every descendant, so even one that left its group with ``setsid`` is found),
   repeating until none is left, and exits.

A clean stop (``sandbox down``, SIGTERM, Ctrl-C) stops containers gracefully first (preStop,
SIGTERM, SIGKILL at the grace period); :meth:`Reaper.close` then closes the pipe and waits for
the watchdog's last sweep, so the command returns only once nothing of it runs.

    python -m gpu_operator.sandbox.reaper TOKEN      # the watchdog (reads +PGID/-PGID lines)
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

MARKER_ENV = "GPU_OPERATOR_SANDBOX_REAPER"
"""Set in the environment of everything the sandbox starts: ``<parent pid>-<random>``."""
PR_SET_PDEATHSIG = 1
SWEEP_ROUNDS = 50


# --- the watchdog (its own process) -----------------------------------------------------


def marked(token: str, proc: Path = Path("/proc")) -> list[int]:
    """PIDs whose environment carries ``MARKER_ENV=token`` (ours to read: same user)."""
    needle = f"{MARKER_ENV}={token}".encode()
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue  # gone, or another user's
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def kill_all(groups: set[int], token: str) -> None:
    """SIGKILL the registered groups, then every marked process, until none is left."""
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    for _ in range(SWEEP_ROUNDS):
        left = [pid for pid in marked(token) if pid != os.getpid()]
        if not left:
            return
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        threading.Event().wait(0.02)  # zombies of a live parent stay listed until reaped


def watch(token: str, lines: Any = None) -> None:
    """Read ``+PGID``/``-PGID`` lines until the parent's end of the pipe closes; then kill."""
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    groups: set[int] = set()
    source = sys.stdin.buffer if lines is None else lines
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdout.close()
    for raw in source:
        line = raw.strip()
        with contextlib.suppress(ValueError):
            if line.startswith(b"+"):
                groups.add(int(line[1:]))
            elif line.startswith(b"-"):
                groups.discard(int(line[1:]))
    kill_all(groups, token)


# --- the parent's side ------------------------------------------------------------------


def _pdeathsig_hook() -> Callable[[], None] | None:
    """A ``preexec_fn`` that asks for SIGKILL when the forking thread ends (Linux only); it
    kills the child at once if the parent is already gone."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # libc's, linked into the interpreter
    except (OSError, AttributeError):
        return None
    parent, kill = os.getpid(), int(signal.SIGKILL)

    def hook() -> None:
        prctl(PR_SET_PDEATHSIG, kill, 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), kill)

    return hook


class Reaper:
    """The parent's end: a spawner thread (for the parent-death signal) and the watchdog."""

    def __init__(self, *, use_setpriv: bool = True) -> None:
        self.token = f"{os.getpid()}-{os.urandom(6).hex()}"
        self._lock = threading.Lock()
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._requests: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = (
            queue.SimpleQueue()
        )
        self._spawner: threading.Thread | None = None
        self._setpriv = (
            (shutil.which("setpriv") or shutil.which("setpriv", path="/usr/bin"))
            if use_setpriv
            else None
        )
        self._pdeathsig = None if self._setpriv else _pdeathsig_hook()

    @property
    def watchdog_pid(self) -> int | None:
        return self._watchdog.pid if self._watchdog is not None else None

    def start(self) -> Reaper:
        with self._lock:
            if self._watchdog is None:
                self._start_locked()
        return self

    def _start_locked(self) -> None:
        self._spawner = threading.Thread(target=self._spawn_loop, daemon=True, name="reaper")
        self._spawner.start()
        self._watchdog = subprocess.Popen(
            [sys.executable, "-m", "gpu_operator.sandbox.reaper", self.token],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd="/",
            start_new_session=True,
        )
        assert self._watchdog.stdout is not None
        ready = self._watchdog.stdout.readline()
        self._watchdog.stdout.close()
        if ready.strip() != b"ready":
            raise RuntimeError("the sandbox's reaper (watchdog process) did not start")

    def _spawn_loop(self) -> None:
        while (request := self._requests.get()) is not None:
            call, future = request
            try:
                future.set_result(call())
            except BaseException as error:  # handed to the caller's thread
                future.set_exception(error)

    def environ(self, env: Mapping[str, str]) -> dict[str, str]:
        """``env`` with this parent's marker (what :func:`marked` finds)."""
        return {**env, MARKER_ENV: self.token}

    def popen(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, **kwargs: Any
    ) -> subprocess.Popen[bytes]:
        """``subprocess.Popen`` as the leader of a new session and process group, marked,
        with the parent-death signal, forked by the long-lived spawner thread, and registered
        with the watchdog. ``release(proc)`` when it has been stopped."""
        self.start()
        environ = self.environ(os.environ if env is None else env)
        future: Future[subprocess.Popen[bytes]] = Future()

        command = list(argv)
        if self._setpriv:
            command = [self._setpriv, "--pdeathsig", "KILL", "--", *command]

        def call() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                command,
                env=environ,
                start_new_session=True,
                preexec_fn=self._pdeathsig,
                **kwargs,
            )

        self._requests.put((call, future))
        proc = future.result()
        self._send(f"+{proc.pid}\n")
        return proc

    def release(self, proc: subprocess.Popen[bytes]) -> None:
        """The process has ended: SIGKILL what is left of its group (as a runtime ends a
        container whose main process exited), and stop watching it."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        self._send(f"-{proc.pid}\n")

    def _send(self, line: str) -> None:
        with self._lock:
            stdin = self._watchdog.stdin if self._watchdog is not None else None
            if stdin is None or stdin.closed:
                return
            with contextlib.suppress(BrokenPipeError, ValueError):
                stdin.write(line.encode())
                stdin.flush()

    def close(self, timeout_s: float = 10.0) -> None:
        """Close the pipe: the watchdog kills whatever is still registered or marked; wait for
        it. Later ``popen`` calls start a new watchdog."""
        with self._lock:
            watchdog, self._watchdog = self._watchdog, None
            if self._spawner is not None:
                self._requests.put(None)
                self._spawner = None
        if watchdog is None:
            return
        if watchdog.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                watchdog.stdin.close()
        try:
            watchdog.wait(timeout_s)
        except subprocess.TimeoutExpired:
            watchdog.kill()
            watchdog.wait()


_default: Reaper | None = None
_default_lock = threading.Lock()


def default_reaper() -> Reaper:
    """This process's reaper (started on first use; closed at exit, waiting for its sweep)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Reaper()
            atexit.register(_default.close)
        return _default


if __name__ == "__main__":
    watch(sys.argv[1])
