"""Every interface means the pod's own address (and port, where the sandbox remapped it) when
the sandbox names one; production addresses pass unchanged."""

from __future__ import annotations

import json

import pytest

from gpu_operator.listening import POD_IP_ENV, POD_PORTS_ENV, listen_address, machine_port

SANDBOX = {POD_IP_ENV: "127.4.0.9", POD_PORTS_ENV: json.dumps({"8080": 41000})}


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        pytest.param("", 8080, ("127.4.0.9", 41000), id="default :8080, remapped port"),
        pytest.param("0.0.0.0", 8081, ("127.4.0.9", 8081), id="0.0.0.0:8081, port kept"),
        pytest.param("::", 9400, ("127.4.0.9", 9400), id="every IPv6 interface"),
        pytest.param("127.0.0.1", 8080, ("127.0.0.1", 8080), id="a named host is kept"),
    ],
)
def test_every_interface_is_the_pods_own_address_in_the_sandbox(
    host: str, port: int, expected: tuple[str, int]
) -> None:
    assert listen_address(host, port, SANDBOX) == expected


def test_without_the_sandbox_variables_addresses_are_unchanged() -> None:
    assert listen_address("", 8080, {}) == ("", 8080)
    assert listen_address("0.0.0.0", 9400, {POD_PORTS_ENV: '{"9400": 1}'}) == ("0.0.0.0", 9400)
    assert machine_port(8081, {}) == 8081


def test_a_client_of_the_pod_finds_the_port_that_stands_for_a_container_port() -> None:
    assert machine_port(8080, SANDBOX) == 41000
    assert machine_port(8081, SANDBOX) == 8081
