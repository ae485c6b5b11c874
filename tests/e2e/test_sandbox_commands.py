"""The sandbox's commands as a user runs them: ``sandbox demo`` prints the seed story's result
(its time is measured by bench/ and docs/performance.md, not asserted); ``sandbox up`` serves
the real kubectl through the kubeconfig it printed and ``sandbox down`` stops it with every
process it started."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from helpers.processes import processes_naming

BIN = Path(sys.executable).parent
BALANCED_LINE = "nvidia.com/mig-1g.5gb: 16, nvidia.com/mig-2g.10gb: 8, nvidia.com/mig-3g.20gb: 8"


@pytest.mark.timeout(150)
def test_sandbox_demo_prints_the_seed_story_result() -> None:
    done = subprocess.run(
        [str(BIN / "gpu-operator"), "sandbox", "demo"],
        capture_output=True,
        text=True,
        timeout=140,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for node in ("gpu-node-1", "gpu-node-2"):
        assert re.search(
            rf"{node}: {BALANCED_LINE}",
            out,
        ), out
    assert "state=ready" in out
    # The seed's commands, typed in full (the chart's path is the only thing of ours).
    assert (
        "$ helm install --wait -n gpu-operator-resources --create-namespace --version v1.9.0 "
        "--set mig.strategy=mixed --set driver.repository=homelab.net/nvcr.io/nvidia "
        "--set driver.version=450.156.00 --set driver.manager.version=v0.2.0-ubi8 "
        "--set toolkit.version=1.7.2-ubi8 --set dcgm.version=2.3.1-ubi8 "
        "--set operator.version=v1.9.0-ubi8 "
        "--set operator.initContainer.version=cuda:11.2.1-base-ubi8 "
        "--set validator.version=v1.9.0-ubi8 gpu-operator "
    ) in out
    assert (
        "$ kubectl get node --selector='!node-role.kubernetes.io/master' -o name | xargs -I {} "
        "kubectl label {} nvidia.com/mig.config=all-balanced --overwrite"
    ) in out
    assert "$ kubectl -n gpu-operator-resources get pods" in out
    assert re.search(r"\nnvidia-driver-daemonset-\w+\s+1/1\s+Running", out), out
    assert "ImagePullBackOff" not in out
    assert "CrashLoopBackOff" not in out
    assert 'nvidia.com/mig-3g.20gb": ["MIG-' in out
    assert 'pod="cuda-workload"' in out
    # How long it took is printed; the timing claim lives in docs/performance.md (bench/), not
    # in a test that a busy CI machine would fail.
    assert re.search(r"Seed story done in [\d.]+s", out), out[-2000:]


@pytest.mark.timeout(120)
def test_sandbox_up_serves_kubectl_and_down_stops_everything_it_started(tmp_path: Path) -> None:
    # Short: device plugin sockets live under it (unix socket paths stop at 107 bytes).
    short = Path(tempfile.mkdtemp(prefix="gos-"))
    directory, kubeconfig = short / "sbx", tmp_path / "kubeconfig"
    up = subprocess.Popen(
        [
            str(BIN / "gpu-operator"),
            "sandbox",
            "up",
            "--nodes",
            "h200:1",
            "--os",
            "rocky:8.5",
            "--dir",
            str(directory),
            "--kubeconfig",
            str(kubeconfig),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        listing = ""
        while time.monotonic() < deadline:
            if kubeconfig.exists():
                listing = subprocess.run(
                    [str(BIN / "kubectl"), "--kubeconfig", str(kubeconfig), "get", "pods", "-A"],
                    capture_output=True,
                    text=True,
                    timeout=30,
                    check=False,
                ).stdout
                if re.search(r"nvidia-device-plugin-daemonset-\w+\s+1/1\s+Running", listing):
                    break
            time.sleep(1)
        assert re.search(r"nvidia-device-plugin-daemonset-\w+\s+1/1\s+Running", listing), listing
        assert len(processes_naming(str(directory))) > 1  # its pods' processes
        # A running plugin registers with the kubelet, which then reports the resource: poll.
        shown = ""
        while time.monotonic() < deadline + 30:
            shown = subprocess.run(
                [str(BIN / "gpu-operator"), "sandbox", "status", "--dir", str(directory)],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            ).stdout
            if "node gpu-node-1: nvidia.com/gpu: 1" in shown:
                break
            time.sleep(1)
        assert "node gpu-node-1: nvidia.com/gpu: 1" in shown
        assert "sandbox-control-plane: no GPU resources" in shown
        down = subprocess.run(
            [str(BIN / "gpu-operator"), "sandbox", "down", "--dir", str(directory)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert down.returncode == 0, down.stdout + down.stderr
        assert up.wait(30) == 0
    finally:
        if up.poll() is None:
            up.terminate()
            up.wait(30)
        if up.stdout is not None:
            up.stdout.close()
    assert processes_naming(str(directory)) == []
    assert not (directory / "sandbox.pid").exists()
    shutil.rmtree(short)


def test_a_sandbox_directory_too_deep_for_unix_sockets_is_refused_before_anything_starts(
    tmp_path: Path,
) -> None:
    deep = tmp_path / ("d" * 60)
    done = subprocess.run(
        [str(BIN / "gpu-operator"), "sandbox", "up", "--dir", str(deep)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1
    assert "too deep" in done.stderr
    assert "unix socket path limit" in done.stderr
