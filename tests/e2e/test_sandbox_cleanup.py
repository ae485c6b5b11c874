"""Nothing a sandbox starts outlives it, and no fixed host port: ``sandbox demo`` killed by
SIGTERM (as ``timeout`` and Ctrl-C do, to its process group) or SIGKILL once its pods run
leaves no process and no listening socket behind; ``sandbox up`` with another program holding
port 8080 on every interface still gets its operator pod Ready, and ``sandbox down`` then
leaves nothing. A lighter sandbox (one node, one pod whose shell starts a grandchild) stopped
by Ctrl-C, or crashing without stopping at all, leaves nothing either.

A process "of the sandbox" is any whose command line or environment names the sandbox's
directory (every pod's ``HOME``, mount table and simulated GPUs live under it), read from /proc.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpu_operator.sandbox.rest import Rest
from helpers.processes import processes_naming

BIN = Path(sys.executable).parent
Address = tuple[str, int]


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _listening() -> dict[int, Address]:
    """Socket inode → (address, port) of every TCP socket listening on IPv4."""
    found = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, state, inode = fields[1], fields[3], int(fields[9])
        if state == "0A":
            hex_ip, hex_port = local.split(":")
            ip = ".".join(str(b) for b in reversed(bytes.fromhex(hex_ip)))
            found[inode] = (ip, int(hex_port, 16))
    return found


def listening_addresses(pids: list[int]) -> set[Address]:
    """The TCP addresses those processes listen on."""
    inodes = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    link = os.readlink(fd)
                    if link.startswith("socket:["):
                        inodes.add(int(link[8:-1]))
    listening = _listening()
    return {listening[i] for i in inodes if i in listening}


def still_listening(addresses: set[Address]) -> set[Address]:
    return addresses & set(_listening().values())


def listeners(addresses: set[Address]) -> dict[Address, list[str]]:
    """Each of those addresses still listened on → the command lines of the processes holding
    it (what a failure must show: the demo's leftover, or another program that took the
    address after the demo released it)."""
    inodes = {i: a for i, a in _listening().items() if a in addresses}
    held: dict[Address, list[str]] = {a: [] for a in inodes.values()}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    link = os.readlink(fd)
                    if link.startswith("socket:[") and int(link[8:-1]) in inodes:
                        command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
                        held[inodes[int(link[8:-1])]].append(
                            f"{entry.name}: {command.decode(errors='replace')}"
                        )
    return held


def wait_for(what: str, check: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not after {timeout_s:g}s")
        time.sleep(0.5)


def server_of(kubeconfig: Path) -> str:
    return str(yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"])


def ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def operator_and_exporters_ready(rest: Rest, exporters: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            pods = rest.list("pods")
        except OSError:
            return False
        names = [p["metadata"]["name"] for p in pods if ready(p)]
        return (
            any(n.startswith("gpu-operator-") for n in names)
            and sum(n.startswith("nvidia-dcgm-exporter-") for n in names) >= exporters
        )

    return check


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short directory (device plugin sockets under it must stay within 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="gos-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


class Demo:
    """``gpu-operator sandbox demo`` in a session of its own, its directory under ``tmp``."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.proc = subprocess.Popen(
            [str(BIN / "gpu-operator"), "sandbox", "demo"],
            env={**os.environ, "TMPDIR": str(tmp)},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,  # it says nothing the test reads
            start_new_session=True,
        )

    def wait_until_its_pods_run(self) -> set[Address]:
        """Once the operator and an exporter on each node are Ready: what it listens on."""
        wait_for("the demo's kubeconfig", lambda: any(self.tmp.glob("gos-demo-*/kubeconfig")), 60)
        kubeconfig = next(self.tmp.glob("gos-demo-*/kubeconfig"))
        rest = Rest(server_of(kubeconfig))
        try:
            wait_for("its operator and exporters Ready", operator_and_exporters_ready(rest, 2), 120)
        finally:
            rest.close()
        return listening_addresses([self.proc.pid, *processes_naming(str(self.tmp))])

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        for pid in processes_naming(str(self.tmp)):  # never leave strays, even if failing
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def demo(short_tmp: Path) -> Iterator[Demo]:
    run = Demo(short_tmp)
    try:
        yield run
    finally:
        run.close()


@pytest.mark.timeout(240)
def test_sigterm_to_sandbox_demo_leaves_no_process_and_no_port_once_it_has_exited(
    demo: Demo,
) -> None:
    held = demo.wait_until_its_pods_run()
    assert len(processes_naming(str(demo.tmp))) > 10  # operator, operands, runtimes
    assert {ip for ip, _ in held} - {"127.0.0.1"}  # its pods' own addresses

    os.killpg(demo.proc.pid, signal.SIGTERM)  # as `timeout` does
    assert demo.proc.wait(120) == 128 + signal.SIGTERM

    assert processes_naming(str(demo.tmp)) == []
    assert still_listening(held) == set(), listeners(held)


@pytest.mark.timeout(240)
def test_sigkill_of_sandbox_demo_leaves_no_process_and_no_port(demo: Demo) -> None:
    held = demo.wait_until_its_pods_run()

    os.killpg(demo.proc.pid, signal.SIGKILL)
    demo.proc.wait()

    # Nothing of it can clean up now but its reaper, a process of its own: poll.
    wait_for("no process of the demo", lambda: processes_naming(str(demo.tmp)) == [], 60)
    # A pod whose command line and environment name no path of the demo (the operator) is
    # found by the reaper's marker, not by the check above: poll for its ports too.
    with contextlib.suppress(pytest.fail.Exception):
        wait_for("no port of the demo", lambda: still_listening(held) == set(), 60)
    assert still_listening(held) == set(), listeners(held)


@contextlib.contextmanager
def port_8080_held_by_another_program() -> Iterator[None]:
    """Listen on 0.0.0.0:8080 (on Linux no other address may then bind port 8080), or, where
    another sandbox's pod already holds some 127.x.y.z:8080, on 127.0.0.1:8080; where that is
    taken too, something else holds it, which is the same situation."""
    with socket.socket() as other:
        for host in ("0.0.0.0", "127.0.0.1"):
            try:
                other.bind((host, 8080))
            except OSError:
                continue
            other.listen()
            break
        yield


@pytest.mark.timeout(240)
def test_sandbox_up_with_port_8080_taken_runs_its_operator_and_down_leaves_nothing(
    short_tmp: Path,
) -> None:
    directory, kubeconfig = short_tmp / "sbx", short_tmp / "kubeconfig"
    with port_8080_held_by_another_program():
        up = subprocess.Popen(
            [
                *(str(BIN / "gpu-operator"), "sandbox", "up", "--nodes", "h200:1"),
                *("--dir", str(directory), "--kubeconfig", str(kubeconfig)),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_for("the kubeconfig", kubeconfig.exists, 60)
            rest = Rest(server_of(kubeconfig))
            try:
                wait_for("operator Ready", operator_and_exporters_ready(rest, 1), 150)
            finally:
                rest.close()
            held = listening_addresses([up.pid, *processes_naming(str(directory))])
            assert {ip for ip, _ in held} - {"127.0.0.1"}  # its pods' own addresses
            down = subprocess.run(
                [str(BIN / "gpu-operator"), "sandbox", "down", "--dir", str(directory)],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert down.returncode == 0, down.stdout + down.stderr
            assert "sandbox stopped" in down.stdout
            # `down` returns once the sandbox's process has removed its pid file, which it
            # does after its reaper's last sweep; the process itself may still be exiting.
            assert [p for p in processes_naming(str(directory)) if p != up.pid] == []
            assert up.wait(30) == 0
            assert still_listening(held) == set(), listeners(held)
        finally:
            if up.poll() is None:
                os.killpg(up.pid, signal.SIGKILL)
            up.wait()


# One GPU node, no chart; one pod of our image whose shell leaves a grandchild running.
LIGHT = """
import sys, time
from pathlib import Path
from gpu_operator import __version__
from gpu_operator.sandbox.cluster import Sandbox
from gpu_operator.sandbox.nodes import parse_nodes

how = sys.argv[2]
sandbox = Sandbox(parse_nodes("h200:1", "rocky:8.5"), Path(sys.argv[1]))
pod = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "shell", "namespace": "default"},
    "spec": {"nodeName": "gpu-node-1", "containers": [{
        "name": "shell", "image": f"ghcr.io/gpu-operator/gpu-operator:v{__version__}",
        "command": ["sh", "-c", "sleep 600 & exec sleep 601"]}]},
}
if how == "crash":
    sandbox.start()  # never stopped: the crash below skips it
else:
    sandbox.__enter__()
try:
    sandbox.rest.create("pods", pod, "default")
    while (sandbox.rest.get("pods", "shell", "default") or {}).get("status", {}).get(
        "phase"
    ) != "Running":
        time.sleep(0.2)
    print("running", flush=True)
    sys.stdin.readline()  # until the test has seen the pod's processes (Ctrl-C comes first)
    raise RuntimeError("a bug in the sandbox")
finally:
    if how != "crash":
        sandbox.stop()
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "how",
    [
        pytest.param("ctrl-c", id="Ctrl-C (SIGINT) stops it"),
        pytest.param("crash", id="a crash that never stops it"),
    ],
)
def test_a_sandbox_stopped_by_ctrl_c_or_crashing_leaves_no_process(
    short_tmp: Path, how: str
) -> None:
    directory = short_tmp / "sbx"
    parent = subprocess.Popen(
        [sys.executable, "-c", LIGHT, str(directory), how],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert parent.stdout is not None
        assert parent.stdout.readline() == "running\n"
        sleeps = {b"sleep\x00600\x00", b"sleep\x00601\x00"}  # the grandchild, the container

        def both_run() -> bool:
            return {cmdline(p) for p in processes_naming(str(directory))} >= sleeps

        wait_for("the container and its grandchild run", both_run, 30)
        assert any(
            b"gpu_operator.sandbox.runtime" in cmdline(p) for p in processes_naming(str(directory))
        )
        if how == "ctrl-c":
            os.killpg(parent.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends
        _, err = parent.communicate("crash now\n", timeout=60)
        if how == "crash":
            assert "RuntimeError: a bug in the sandbox" in err
        else:
            assert "KeyboardInterrupt" in err
        assert processes_naming(str(directory)) == []
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)
        parent.wait()
        for stream in (parent.stdin, parent.stdout, parent.stderr):
            if stream is not None:
                stream.close()
