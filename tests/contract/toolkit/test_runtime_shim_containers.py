"""Containers started for real through our ``nvidia-container-runtime``: Debian's ``runc`` (and
``crun``) run a busybox bundle whose ``NVIDIA_VISIBLE_DEVICES`` asks for a simulated GPU, and the
container sees that GPU's device node (major/minor as on the host), the control nodes, the
driver's libraries and ``nvidia-smi``, and none of the other GPUs; a container without a request
runs as plain runc would. A real containerd 1.6 loads the toolkit's config and starts a task with
the ``nvidia`` handler's binary. Where the machine can't run containers, each test skips with the
runtime's own reason."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest
import tomlkit

from gpu_operator.toolkit.install import install
from helpers.shim_nodes import GpuNode, bundle_for, make_node

CONFIGS = Path(__file__).parents[2] / "data" / "runtime-configs"
SCRIPT = (
    "ls -ln /dev | grep nvidia; "
    "cat /usr/lib/nvidia-cdi/libcuda.so.1; "
    "/usr/bin/nvidia-smi; "
    'echo "env $NVIDIA_VISIBLE_DEVICES $LD_LIBRARY_PATH"'
)


def runtime_or_skip(name: str, tmp_path: Path, rootfs: Path) -> str:
    """The runtime's path, if it can run a container on this machine (else skip, saying why)."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (apt: {name})")
    if os.geteuid() != 0:
        pytest.skip(f"{name} runs containers only as root here")
    (tmp_path / "probe").mkdir()
    probe = bundle_for(tmp_path / "probe", rootfs, path, "true")
    done = subprocess.run(
        [path, "--root", str(tmp_path / "probe-state"), "run", "--bundle", str(probe), "probe"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"{name} cannot run a container on this machine: {done.stderr.strip()[-300:]}")
    return path


def run_through_shim(node: GpuNode, bundle: Path, state: Path, name: str) -> str:
    """create (as containerd does), start, wait for the exit, delete: the container's output."""
    out = bundle / "out.txt"
    with out.open("wb") as sink:
        create = subprocess.run(
            [str(node.shim), "--root", str(state), "create", "--bundle", str(bundle), name],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
            timeout=60,
            check=False,
        )
    assert create.returncode == 0, out.read_text()
    subprocess.run([str(node.shim), "--root", str(state), "start", name], check=True, timeout=60)
    deadline = time.monotonic() + 30
    while True:
        state_out = subprocess.run(
            [str(node.shim), "--root", str(state), "state", name],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        if json.loads(state_out.stdout)["status"] == "stopped" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    subprocess.run([str(node.shim), "--root", str(state), "delete", name], check=True, timeout=60)
    return out.read_text()


@pytest.mark.parametrize("runtime_name", ["runc", "crun"])
def test_a_gpu_container_sees_its_device_nodes_and_the_driver_files(
    runtime_name: str,
    tmp_path: Path,
    rootfs: Path,
    shim_binary: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runtime = runtime_or_skip(runtime_name, tmp_path, rootfs)
    node = make_node(tmp_path, shim_binary, (runtime,), monkeypatch)
    gpu = node.gpus[2]
    bundle = bundle_for(tmp_path, rootfs, runtime, SCRIPT, f"NVIDIA_VISIBLE_DEVICES={gpu.uuid}")
    output = run_through_shim(node, bundle, tmp_path / "state", "gpu")

    devices = {line.split()[-1]: line for line in output.splitlines() if line.startswith("c")}
    assert set(devices) == {
        f"nvidia{gpu.minor_number}",
        "nvidiactl",
        "nvidia-uvm",
        "nvidia-uvm-tools",
    }, output
    assert f"195, {gpu.minor_number:>3}" in devices[f"nvidia{gpu.minor_number}"]
    assert f"libcuda {node.version}" in output
    assert "simulated nvidia-smi" in output
    assert "env void /usr/lib/nvidia-cdi" in output


def test_a_container_without_a_gpu_runs_as_with_plain_runc(
    tmp_path: Path, rootfs: Path, shim_binary: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = runtime_or_skip("runc", tmp_path, rootfs)
    node = make_node(tmp_path, shim_binary, (runtime,), monkeypatch)
    bundle = bundle_for(tmp_path, rootfs, runtime, "ls /dev; echo done")
    before = (bundle / "config.json").read_bytes()
    output = run_through_shim(node, bundle, tmp_path / "state", "plain")
    assert "nvidia" not in output
    assert output.strip().endswith("done")
    assert (bundle / "config.json").read_bytes() == before


CONTAINERD = shutil.which("containerd")
CTR = shutil.which("ctr")


def test_containerd_1_6_starts_a_task_with_the_nvidia_handlers_binary(
    tmp_path: Path, rootfs: Path, shim_binary: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if CONTAINERD is None or CTR is None:
        pytest.skip("containerd is not installed (apt: containerd)")
    runtime = runtime_or_skip("runc", tmp_path, rootfs)
    node = make_node(tmp_path, shim_binary, (runtime,), monkeypatch)
    config = tmp_path / "config.toml"
    shutil.copy(CONFIGS / "containerd-1.6-default.toml", config)
    socket = tmp_path / "run" / "containerd.sock"
    settings = replace(
        node.settings,
        config=config,
        socket=socket,
        restart_mode="none",
        runtime_version="1.6.20",
        binary_mode="auto",
    )
    install(settings)  # auto: no NVIDIA binary in <ROOT>/toolkit -> ours
    dumped = subprocess.run(
        [CONTAINERD, "--config", str(config), "config", "dump"],
        capture_output=True,
        check=True,
        timeout=30,
    )
    cri = tomlkit.parse(dumped.stdout.decode()).unwrap()["plugins"]["io.containerd.grpc.v1.cri"]
    handler = cri["containerd"]["runtimes"]["nvidia"]
    binary = handler["options"]["BinaryName"]
    assert binary == str(node.shim)
    assert handler["runtime_type"] == "io.containerd.runc.v2"

    log = (tmp_path / "containerd.log").open("wb")
    daemon = subprocess.Popen(
        [
            CONTAINERD,
            "--config",
            str(config),
            "--root",
            str(tmp_path / "root"),
            "--state",
            str(tmp_path / "cstate"),
            "--address",
            str(socket),
        ],
        stdout=log,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 30
        while not socket.exists():
            assert daemon.poll() is None, (tmp_path / "containerd.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "containerd did not open its socket"
            time.sleep(0.05)
        gpu = node.gpus[1]
        done = subprocess.run(
            [
                CTR,
                "--address",
                str(socket),
                "run",
                "--rm",
                "--rootfs",
                "--runtime",
                handler["runtime_type"],
                "--runc-binary",
                binary,
                "--env",
                f"NVIDIA_VISIBLE_DEVICES={gpu.index}",
                str(rootfs),
                "gpu-task",
                "/bin/sh",
                "-c",
                SCRIPT,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0 and "cgroup" in done.stderr:
            pytest.skip(f"containerd cannot start tasks on this machine: {done.stderr.strip()}")
        assert done.returncode == 0, done.stderr
        assert f"nvidia{gpu.minor_number}" in done.stdout
        assert f"nvidia{node.gpus[0].minor_number}\n" not in done.stdout
        assert f"libcuda {node.version}" in done.stdout
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(20)
        log.close()
