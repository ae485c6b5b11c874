"""Every agent that binds a port or a socket says, when it can't, one line naming the flag and
the address and exits 1: no ``OSError`` traceback (the exporter, the operator's metrics and
health ports, the node status exporter, the device plugin's kubelet socket directory).
Feature discovery, the MIG manager and the config manager bind nothing."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.cli import gpu_operator

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port another socket listens on, on every interface."""
    with socket.socket() as held:
        held.bind(("0.0.0.0", 0))
        held.listen()
        yield int(held.getsockname()[1])


def run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    own = {"GPU_OPERATOR_SIM": "h200", "GPU_OPERATOR_SIM_ROOT": str(tmp_path / "sim"), **env}
    return gpu_operator(*args, env=own, timeout=50)


def the_one_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("gpu-operator:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


IN_USE = "cannot listen there: address already in use (another process listens there)"


def test_the_exporter_names_its_address_flag(tmp_path: Path, busy_port: int) -> None:
    line = the_one_error(run(tmp_path, "exporter", "--address", f"127.0.0.1:{busy_port}"))
    assert line == f"gpu-operator: --address '127.0.0.1:{busy_port}': {IN_USE}"


def test_the_exporter_names_an_address_this_machine_does_not_have(tmp_path: Path) -> None:
    line = the_one_error(run(tmp_path, "exporter", "-a", "192.0.2.1:9400"))
    assert line == (
        "gpu-operator: --address '192.0.2.1:9400': cannot listen there: "
        "no interface of this machine has that address"
    )


@pytest.mark.parametrize("flag", ["--metrics-bind-address", "--health-probe-bind-address"])
def test_the_operator_names_the_metrics_or_health_flag(
    tmp_path: Path, busy_port: int, flag: str
) -> None:
    other = (
        "--health-probe-bind-address"
        if flag == "--metrics-bind-address"
        else "--metrics-bind-address"
    )
    result = run(
        tmp_path,
        "operator",
        "--server",
        "http://127.0.0.1:9",  # never reached: the ports are bound first
        flag,
        f"127.0.0.1:{busy_port}",
        other,
        "127.0.0.1:0",
    )
    line = the_one_error(result)
    assert line.startswith(f"gpu-operator: {flag} '"), line
    assert line.endswith(f":{busy_port}': {IN_USE}"), line


def test_the_node_status_exporter_names_its_port_flag(tmp_path: Path, busy_port: int) -> None:
    result = run(
        tmp_path,
        "validator",
        "-c",
        "metrics",
        "--metrics-port",
        str(busy_port),
        "-o",
        str(tmp_path / "validations"),
        NODE_NAME="gpu-node-1",
    )
    assert the_one_error(result) == f"gpu-operator: --metrics-port ':{busy_port}': {IN_USE}"
    assert not (tmp_path / "validations").exists(), "nothing written"


def test_the_device_plugin_names_a_socket_path_too_long_for_a_unix_socket(
    tmp_path: Path,
) -> None:
    plugin_dir = tmp_path / ("d" * 120)
    plugin_dir.mkdir()
    result = run(
        tmp_path,
        "device-plugin",
        "--kubelet-socket",
        str(plugin_dir / "kubelet.sock"),
        GPU_OPERATOR_SIM="t4",
    )
    socket_path = plugin_dir / "nvidia-gpu.sock"
    assert the_one_error(result) == (
        f"gpu-operator: {socket_path}: cannot listen there: the path is "
        f"{len(os.fsencode(socket_path))} bytes, a unix socket's takes at most 107 "
        "(the device plugin socket lives beside KUBELET_SOCKET)"
    )
    assert list(plugin_dir.iterdir()) == []


def test_the_device_plugin_names_a_directory_in_the_socket_s_place(tmp_path: Path) -> None:
    (tmp_path / "plugins" / "nvidia-gpu.sock").mkdir(parents=True)
    result = run(
        tmp_path,
        "device-plugin",
        "--kubelet-socket",
        str(tmp_path / "plugins" / "kubelet.sock"),
        GPU_OPERATOR_SIM="t4",
    )
    assert the_one_error(result).startswith(
        f"gpu-operator: {tmp_path / 'plugins' / 'nvidia-gpu.sock'}: cannot listen there: "
    )
    assert (tmp_path / "plugins" / "nvidia-gpu.sock").is_dir(), "left as it was"
