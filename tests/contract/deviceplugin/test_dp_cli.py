"""``gpu-operator device-plugin`` as a real process: it registers with the kubelet stand-in,
SIGTERM removes its sockets, bad input exits with one clear line, and a GPU-less node with
``FAIL_ON_INIT_ERROR=false`` waits instead of exiting."""

from __future__ import annotations

import ctypes.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gpu_operator.sandbox.kubelet import Kubelet

pytestmark = pytest.mark.timeout(30)

NO_DRIVER = pytest.mark.skipif(
    ctypes.util.find_library("nvidia-ml") is not None, reason="this machine has an NVIDIA driver"
)


def spawn(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("GPU_OPERATOR_SIM")}
    full_env.update({"GPU_OPERATOR_SIM_ROOT": os.environ["GPU_OPERATOR_SIM_ROOT"], **env})
    return subprocess.Popen(
        [sys.executable, "-c", "from gpu_operator.cli import main; main()", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
    )


def finish(process: subprocess.Popen[str], timeout: float = 15) -> tuple[int, str]:
    _, stderr = process.communicate(timeout=timeout)
    return process.returncode, stderr


def test_the_command_registers_and_sigterm_removes_its_sockets(kubelet: Kubelet) -> None:
    process = spawn(
        "device-plugin",
        "--mig-strategy=none",
        env={"GPU_OPERATOR_SIM": "a30x4", "KUBELET_SOCKET": str(kubelet.socket)},
    )
    try:
        assert kubelet.wait_until(lambda: kubelet.allocatable("nvidia.com/gpu") == 4, 15)
        assert (kubelet.plugin_dir / "nvidia-gpu.sock").is_socket()
    finally:
        process.send_signal(signal.SIGTERM)
        code, stderr = finish(process)
    assert code == 0, stderr
    assert "received SIGTERM" in stderr
    assert not (kubelet.plugin_dir / "nvidia-gpu.sock").exists()
    assert kubelet.wait_until(lambda: kubelet.allocatable("nvidia.com/gpu") == 0)


def test_sighup_restarts_the_plugin_and_it_registers_again(kubelet: Kubelet) -> None:
    process = spawn(
        "device-plugin", env={"GPU_OPERATOR_SIM": "t4", "KUBELET_SOCKET": str(kubelet.socket)}
    )
    try:
        assert kubelet.wait_until(lambda: len(kubelet.manager.registrations) >= 1, 15)
        process.send_signal(signal.SIGHUP)
        assert kubelet.wait_until(lambda: len(kubelet.manager.registrations) >= 2, 5)
    finally:
        process.send_signal(signal.SIGTERM)
        code, stderr = finish(process)
    assert code == 0, stderr


def test_a_bad_config_file_exits_with_one_line_naming_file_line_and_key(
    tmp_path: Path, kubelet: Kubelet
) -> None:
    config = tmp_path / "plugin.yaml"
    config.write_text("version: v1\nsharing:\n  timeSlicing:\n    resources:\n    - name: gpu\n")
    process = spawn(
        "device-plugin",
        env={
            "GPU_OPERATOR_SIM": "t4",
            "KUBELET_SOCKET": str(kubelet.socket),
            "CONFIG_FILE": str(config),
        },
    )
    code, stderr = finish(process)
    assert code == 1
    assert stderr.strip().splitlines() == [
        f"gpu-operator: {config}:5: sharing.timeSlicing.resources[0].replicas: Field required"
    ]
    assert kubelet.manager.registrations == []


def test_a_resources_section_upstream_ignores_is_ignored_with_one_warning_naming_its_line(
    tmp_path: Path, kubelet: Kubelet
) -> None:
    config = tmp_path / "plugin.yaml"
    config.write_text(
        "version: v1\nresources:\n  gpus:\n  - pattern: '*'\n    name: shared\n"
        "  mig:\n  - pattern: '*'\n    name: shared\n"
    )
    process = spawn(
        "device-plugin",
        "--mig-strategy=mixed",
        env={
            "GPU_OPERATOR_SIM": "a30x4",
            "KUBELET_SOCKET": str(kubelet.socket),
            "CONFIG_FILE": str(config),
        },
    )
    try:
        assert kubelet.wait_until(lambda: kubelet.allocatable("nvidia.com/gpu") == 4, 15)
        assert kubelet.resource_names() == ["nvidia.com/gpu"], "nothing renamed, nothing merged"
    finally:
        process.send_signal(signal.SIGTERM)
        code, stderr = finish(process)
    assert code == 0, stderr
    warnings = [line for line in stderr.splitlines() if "resources:" in line]
    assert len(warnings) == 1, stderr
    assert f"WARNING gpu_operator.deviceplugin.settings: {config}:2: resources: " in warnings[0]
    assert warnings[0].endswith(
        f"note resources.gpus[0] ({config}:4) and resources.mig[0] ({config}:7) both name "
        "nvidia.com/shared, which would put whole GPUs and MIG devices in one resource"
    )


def test_a_bad_flag_value_exits_naming_the_flag(kubelet: Kubelet) -> None:
    process = spawn(
        "device-plugin",
        "--mig-strategy",
        "mixd",
        env={"GPU_OPERATOR_SIM": "t4", "KUBELET_SOCKET": str(kubelet.socket)},
    )
    code, stderr = finish(process)
    assert code == 1
    assert stderr.strip() == (
        "gpu-operator: --mig-strategy: 'mixd' is not one of none, single, mixed"
    )


@NO_DRIVER
def test_without_gpus_it_exits_by_default(kubelet: Kubelet) -> None:
    code, stderr = finish(spawn("device-plugin", env={"KUBELET_SOCKET": str(kubelet.socket)}))
    assert code == 1
    assert "no NVIDIA driver found" in stderr


@NO_DRIVER
def test_without_gpus_and_fail_on_init_error_false_it_logs_and_waits(kubelet: Kubelet) -> None:
    process = spawn(
        "device-plugin",
        "--fail-on-init-error=false",
        env={"KUBELET_SOCKET": str(kubelet.socket)},
    )
    time.sleep(2.0)
    still_running = process.poll() is None
    process.send_signal(signal.SIGTERM)
    code, stderr = finish(process)
    assert still_running, stderr
    assert code == 0
    assert "no NVIDIA driver found" in stderr
    assert "waiting indefinitely" in stderr
    assert kubelet.manager.registrations == []
