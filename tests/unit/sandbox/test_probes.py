"""The sandbox kubelet's probes against real handlers: an HTTP server that turns ready, a
closed port, exec commands; thresholds, the startup gate, and a liveness failure that stops a
real container process."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpu_operator.sandbox.containers import Container
from gpu_operator.sandbox.podspec import ProcessSpec
from gpu_operator.sandbox.probes import Probes, check


@pytest.fixture
def health() -> Iterator[tuple[int, list[int]]]:
    """A server whose GET /readyz answers the next status in the list (the last one repeats)."""
    statuses = [503, 503, 200]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
            self.send_response(status if self.path == "/readyz" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # shutdown() waits for the serving loop to look at its flag: every 50 ms, not the default 0.5 s
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server.server_address[1], statuses
    server.shutdown()
    server.server_close()


def test_readiness_over_http_follows_the_handler_from_its_initial_delay_and_named_port(
    health: tuple[int, list[int]],
) -> None:
    port, _ = health
    container = {
        "ports": [{"name": "health", "containerPort": port}],
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": "health"},
            "initialDelaySeconds": 5,
            "periodSeconds": 10,
        },
    }
    probes = Probes(container, started_at=100.0)
    assert probes.due(104.9) == [], "nothing before initialDelaySeconds"
    assert not probes.ready
    [failure] = probes.run(105.0, env={}, host="127.0.0.1")
    assert str(failure) == f"Readiness probe failed: http GET 127.0.0.1:{port}/readyz: status 503"
    assert (failure.streak, failure.restart) == (1, False), "readiness never restarts"
    assert not probes.ready, "503"
    assert probes.due(106.0) == [], "the period (capped at 2 s) has not passed"
    probes.run(107.0, env={}, host="127.0.0.1")
    probes.run(109.0, env={}, host="127.0.0.1")
    assert probes.ready, "200 once"


def test_a_wrong_path_a_closed_port_and_a_failing_command_are_each_named(
    health: tuple[int, list[int]],
) -> None:
    port, _ = health
    assert check(
        {"httpGet": {"path": "/nope", "port": port}}, env={}, host="127.0.0.1", ports={}
    ) == (f"http GET 127.0.0.1:{port}/nope: status 404")
    assert check({"tcpSocket": {"port": 1}}, env={}, host="127.0.0.1", ports={}).startswith(
        "tcp 1:"
    )
    assert check({"httpGet": {"port": "web"}}, env={}, host="h", ports={}) == (
        "http: no container port named 'web'"
    )
    assert check({"tcpSocket": {"port": "web"}}, env={}, host="h", ports={}) == (
        "tcp: no container port named 'web'"
    )
    assert check({"exec": {"command": ["sh", "-c", "exit 3"]}}, env={}, host="", ports={}) == (
        "exec ['sh', '-c', 'exit 3']: exit code 3"
    )
    assert (
        check(
            {"exec": {"command": ["sh", "-c", 'test "$X" = 1']}}, env={"X": "1"}, host="", ports={}
        )
        == ""
    )


def test_liveness_waits_for_the_startup_probe_and_a_startup_failing_its_threshold_restarts() -> (
    None
):
    container = {
        "startupProbe": {"exec": {"command": ["false"]}, "failureThreshold": 2},
        "livenessProbe": {"exec": {"command": ["false"]}, "failureThreshold": 1},
    }
    probes = Probes(container, started_at=0.0)
    assert [p.kind for p in probes.due(0.0)] == ["startup"], "liveness gated by startup"
    [first] = probes.run(0.0, env={}, host="")
    assert (first.kind, first.streak, first.restart) == ("startup", 1, False)
    [second] = probes.run(2.0, env={}, host="")
    assert (second.streak, second.restart) == (2, True), "failureThreshold 2 reached"
    assert not probes.started


def test_a_failing_liveness_probe_stops_the_real_container_process(tmp_path: Path) -> None:
    spec = ProcessSpec("sleeper", "img", "run", ["sleep", "60"], {})
    container = Container(
        spec,
        tmp_path,
        definition={"livenessProbe": {"exec": {"command": ["false"]}, "failureThreshold": 1}},
    )
    container.start()
    assert container.running
    assert container.ready, "no readiness probe: ready while running"
    [why] = container.probe(container.started_at or 0.0, host="127.0.0.1")
    assert str(why) == "Liveness probe failed: exec ['false']: exit code 1"
    assert why.restart
    assert container.poll() is not None, "the process was stopped"
    assert "kubelet: Liveness probe failed" in container.tail()
