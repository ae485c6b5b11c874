"""No fixed host port: every container the operator renders listens on its pod's own address (a
listen address in its env or args is rewritten to it; a default gets it through
``GPU_OPERATOR_POD_IP``); a declared port another program holds on every interface is remapped;
each running sandbox holds its own loopback networks. (The chart's containers, as the real helm
renders them: tests/contract/chart/test_chart_listen_addresses.py.)"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gpu_operator.listening import POD_PORTS_ENV, listen_address
from gpu_operator.sandbox.network import Networks, machine_ports
from gpu_operator.sandbox.podspec import (
    bind_args,
)
from gpu_operator.sandbox.probes import check
from helpers import fastyaml
from helpers.pod_listening import (
    POD_IP,
    assert_listens_on_the_pods_address,
    pod_with,
    spec_for,
    workload_containers,
)

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port another program listens on, on every interface."""
    with socket.socket() as other:
        other.bind(("0.0.0.0", 0))
        other.listen()
        yield int(other.getsockname()[1])


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param(
            ["gpu-operator", "operator", "--metrics-bind-address=:8080"],
            ["gpu-operator", "operator", f"--metrics-bind-address={POD_IP}:8080"],
            id="a flag's value",
        ),
        pytest.param(
            ["dcgm-exporter", "-a", "0.0.0.0:9400", "--health-probe-bind-address", "[::]:8081"],
            [
                "dcgm-exporter",
                "-a",
                f"{POD_IP}:9400",
                "--health-probe-bind-address",
                f"{POD_IP}:8081",
            ],
            id="separate arguments",
        ),
        pytest.param(
            ["x", "--address=127.0.0.1:9400", "--port=9400", "a=:1"],
            ["x", "--address=127.0.0.1:9400", "--port=9400", "a=:1"],
            id="named hosts, bare ports and non-flags are left alone",
        ),
    ],
)
def test_listen_addresses_in_a_command_line_bind_the_pods_address(
    argv: list[str], expected: list[str]
) -> None:
    assert bind_args(argv, POD_IP) == expected


def test_a_remapped_port_is_written_as_the_machines_port() -> None:
    assert bind_args(["-a", ":9400"], POD_IP, {9400: 41000}) == ["-a", f"{POD_IP}:41000"]


def golden_containers() -> list[pytest.ParameterSet]:
    objects = []
    for golden in sorted((REPO / "tests/data/operator").glob("*/expected.yaml")):
        objects += [o for o in fastyaml.load_all(golden.read_text()) if o]
    return workload_containers(objects)


@pytest.mark.parametrize(("template", "container"), golden_containers())
def test_no_container_the_operator_renders_listens_on_every_interface(
    template: dict[str, Any], container: dict[str, Any], tmp_path: Path
) -> None:
    """The chart's own containers, as the real helm renders them: tests/contract/chart/
    test_chart_listen_addresses.py."""
    assert_listens_on_the_pods_address(template, container, tmp_path)


def test_a_declared_port_another_program_holds_on_every_interface_is_remapped(
    held_port: int, tmp_path: Path
) -> None:
    container = {
        "name": "exporter",
        "image": "ghcr.io/gpu-operator/gpu-operator:v0.1.0",
        "command": ["dcgm-exporter"],
        "env": [{"name": "DCGM_EXPORTER_LISTEN", "value": f":{held_port}"}],
        "ports": [{"name": "metrics", "containerPort": held_port}],
    }
    spec = spec_for(pod_with(container), container, tmp_path)
    table = {int(k): v for k, v in json.loads(spec.env[POD_PORTS_ENV]).items()}
    assert set(table) == {held_port}
    instead = table[held_port]
    assert spec.env["DCGM_EXPORTER_LISTEN"] == f"{POD_IP}:{instead}"
    assert listen_address("", held_port, spec.env) == (POD_IP, instead)
    # The machine's port stands in for the container's; a probe of the pod finds it.
    with socket.socket() as pod_listener:
        pod_listener.bind((POD_IP, instead))
        pod_listener.listen()
        probe = {"tcpSocket": {"port": "metrics"}}
        ports = {"metrics": held_port}
        assert check(probe, env=spec.env, host=POD_IP, ports=ports) == ""


def test_a_free_declared_port_is_kept() -> None:
    with socket.socket() as free:
        free.bind((POD_IP, 0))
        port = int(free.getsockname()[1])
    assert machine_ports(POD_IP, {"ports": [{"containerPort": port}]}) == {}


def test_running_sandboxes_never_share_a_loopback_network(tmp_path: Path) -> None:
    first, second = Networks(tmp_path), Networks(tmp_path)
    a, b = first.claim(), second.claim()
    c = first.claim()
    assert len({a, b, c}) == 3
    first.release()
    assert second.claim() == a  # a network is free again once its sandbox ends
    second.release()
