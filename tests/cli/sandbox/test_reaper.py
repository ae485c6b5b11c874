"""Nothing the sandbox starts outlives it, with plain ``sleep`` processes standing in for pods:
the watchdog ends every registered group and every marked descendant when its parent dies by
SIGKILL; the parent-death signal ends a direct child even without the watchdog, and a child
forked for a thread that has since ended lives on while its parent does; a finished container's
leftovers go with it; a clean close leaves nothing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gpu_operator.sandbox.reaper import MARKER_ENV, Reaper, marked
from helpers.polling import wait_until

# A parent process that starts its "pods" through a Reaper, says what it started, and waits to
# be killed.
PARENT = """
import json, os, subprocess, sys, threading
from gpu_operator.sandbox.reaper import Reaper

reaper = Reaper(use_setpriv=os.environ['USE_SETPRIV'] == '1')
procs = []
def spawn():
    procs.append(reaper.popen(sys.argv[1:], stdin=subprocess.DEVNULL))
worker = threading.Thread(target=spawn)  # a short-lived thread, as a pod worker can be
worker.start()
worker.join()
print(json.dumps({"token": reaper.token, "watchdog": reaper.watchdog_pid,
                  "child": procs[0].pid}), flush=True)
sys.stdin.read()
"""


def alive(pid: int) -> bool:
    """Running (not a zombie awaiting its reaper)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_for(what: str, condition: Callable[[], bool]) -> None:
    assert wait_until(condition, timeout_s=20.0), f"still not true: {what}"


class Parent:
    def __init__(self, *argv: str, setpriv: bool = True):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", PARENT, *argv],
            env={**os.environ, "USE_SETPRIV": "1" if setpriv else "0"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        told = json.loads(self.proc.stdout.readline())
        self.token: str = told["token"]
        self.watchdog: int = told["watchdog"]
        self.child: int = told["child"]

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.kill()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        for pid in marked(self.token):  # never leave the test's own strays behind
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def parents() -> Iterator[Callable[..., Parent]]:
    started: list[Parent] = []

    def start(*argv: str, setpriv: bool = True) -> Parent:
        started.append(Parent(*argv, setpriv=setpriv))
        return started[-1]

    yield start
    for parent in started:
        parent.close()


@pytest.mark.timeout(60)
def test_a_sigkilled_parent_leaves_no_child_grandchild_or_escaped_descendant(
    parents: Callable[..., Parent],
) -> None:
    # The "pod" starts two grandchildren in its group and one that leaves it (setsid).
    parent = parents("sh", "-c", "sleep 600 & sleep 600 & setsid sleep 600 & wait")
    wait_for("the pod and its 3 sleeps run", lambda: len(marked(parent.token)) == 4)
    escaped = [p for p in marked(parent.token) if os.getpgid(p) != parent.child]
    assert len(escaped) == 1  # setsid really left the group: only the marker finds it

    parent.kill()

    wait_for("every process of the parent is gone", lambda: marked(parent.token) == [])
    wait_for("the watchdog has exited", lambda: not alive(parent.watchdog))


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "setpriv",
    [
        pytest.param(True, id="through setpriv --pdeathsig"),
        pytest.param(False, id="through prctl in a preexec_fn"),
    ],
)
def test_the_parent_death_signal_ends_a_direct_child_even_without_the_watchdog(
    parents: Callable[..., Parent], setpriv: bool
) -> None:
    if setpriv and not shutil.which("setpriv"):
        pytest.skip("util-linux setpriv is not installed")
    parent = parents("sleep", "600", setpriv=setpriv)
    # Forked on behalf of a thread that has ended, the child still runs: the parent-death
    # signal follows the reaper's long-lived spawner thread, not the caller's.
    assert alive(parent.child)
    os.kill(parent.watchdog, signal.SIGKILL)
    wait_for("the watchdog is gone", lambda: not alive(parent.watchdog))
    assert alive(parent.child)

    parent.kill()

    wait_for("the child died with its parent", lambda: not alive(parent.child))


@pytest.mark.timeout(30)
def test_a_finished_container_takes_what_it_left_in_its_group_with_it() -> None:
    reaper = Reaper()
    try:
        proc = reaper.popen(
            ["sh", "-c", "sleep 600 >/dev/null & echo started"], stdout=subprocess.PIPE
        )
        assert proc.communicate(timeout=10)[0] == b"started\n"
        wait_for("the leftover sleep is seen", lambda: len(marked(reaper.token)) == 1)

        reaper.release(proc)

        wait_for("the leftover is gone", lambda: marked(reaper.token) == [])
    finally:
        reaper.close()


@pytest.mark.timeout(30)
def test_close_ends_what_still_runs_and_returns_once_it_is_gone() -> None:
    reaper = Reaper()
    proc = reaper.popen(["sleep", "600"])
    assert proc.poll() is None

    reaper.close()

    assert proc.wait(10) == -signal.SIGKILL
    assert marked(reaper.token) == []


def test_everything_started_carries_the_marker_and_leads_its_own_group() -> None:
    reaper = Reaper()
    try:
        proc = reaper.popen(["sleep", "600"], env={"PATH": os.environ["PATH"]})
        # The child execs through setpriv: read its environment once `sleep` itself runs.
        deadline = time.monotonic() + 10
        while b"sleep" not in Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")[0]:
            assert time.monotonic() < deadline, "sleep never started"
            time.sleep(0.01)
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0")
        assert f"{MARKER_ENV}={reaper.token}".encode() in environ
        assert os.getpgid(proc.pid) == proc.pid
        assert os.getsid(proc.pid) == proc.pid
        assert reaper.environ({"A": "1"}) == {"A": "1", MARKER_ENV: reaper.token}
    finally:
        reaper.close()
    assert proc.wait(10) == -signal.SIGKILL
