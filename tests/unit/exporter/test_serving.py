"""The exporter over real HTTP: /metrics serves the snapshot, /health tells a stalled sampler,
basic auth and TLS follow the web config (the command as a process: tests/cli/exporter)."""

from __future__ import annotations

import base64
import shutil
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from gpu_operator.errors import ConfigError
from gpu_operator.exporter.sampling import Pass
from gpu_operator.exporter.serving import Exporter, ExporterService
from gpu_operator.exporter.webconfig import WebConfig, load_web_config
from gpu_operator.gpu import Nvml
from helpers.exporter import get
from helpers.polling import wait_until

MakeExporter = Callable[..., tuple[Exporter, Nvml]]


@pytest.fixture
def serve(make_exporter: MakeExporter) -> Iterator[Callable[..., ExporterService]]:
    services: list[ExporterService] = []

    def _serve(
        spec: str = "h200", web: WebConfig | None = None, **settings: Any
    ) -> ExporterService:
        exporter, nvml = make_exporter(spec, address="127.0.0.1:0", **settings)
        service = ExporterService(exporter, nvml, web)
        service.start()
        services.append(service)
        return service

    yield _serve
    for service in services:
        service.stop()


def test_metrics_health_and_index_are_served(serve: Callable[..., ExporterService]) -> None:
    service = serve()
    base = f"http://127.0.0.1:{service.port}"
    status, body = get(base + "/metrics")
    assert status == 200
    assert b"DCGM_FI_DEV_GPU_TEMP{" in body
    assert b"gpu_operator_exporter_scrapes_total 1\n" in body
    assert get(base + "/metrics")[1].count(b"gpu_operator_exporter_scrapes_total 2\n") == 1
    assert get(base + "/health") == (200, b"OK")
    assert get(base + "/")[0] == 200
    assert get(base + "/nope")[0] == 404


def test_health_fails_when_the_sampler_stops_keeping_up(
    make_exporter: MakeExporter, clock: Any
) -> None:
    """The sampler thread's first pass (right after start) is awaited before the frozen clock
    jumps, and its next is a minute away: no pass can land between the jump and the probe."""
    exporter, nvml = make_exporter("h200", address="127.0.0.1:0", collect_interval_ms=60_000)
    passes: list[float] = []
    step = exporter.step

    def counted_step() -> Pass:
        result = step()
        passes.append(clock())
        return result

    exporter.step = counted_step  # type: ignore[method-assign]
    service = ExporterService(exporter, nvml, None)
    service.start()
    try:
        assert wait_until(lambda: len(passes) >= 2), "start's pass and the sampler's first"
        clock.advance(600)  # the frozen clock says ten minutes passed with no pass
        status, body = get(f"http://127.0.0.1:{service.port}/health")
        assert status == 503
        assert b"last sample is 600 s old (limit 190 s)" in body
    finally:
        service.stop()


def test_basic_auth_refuses_without_the_password(serve: Callable[..., ExporterService]) -> None:
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    web = load_web_config(f"basic_auth_users:\n  prom: {hashed}\n", source="web.yml")
    service = serve(web=web)
    url = f"http://127.0.0.1:{service.port}/metrics"
    assert get(url)[0] == 401
    bad = base64.b64encode(b"prom:wrong").decode()
    assert get(url, {"Authorization": f"Basic {bad}"})[0] == 401
    good = base64.b64encode(b"prom:s3cret").decode()
    assert get(url, {"Authorization": f"Basic {good}"})[0] == 200


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_tls_serves_metrics_over_https(
    serve: Callable[..., ExporterService], tmp_path: Path
) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",  # a P-256 key is made at once; RSA-2048's prime search took up to a second
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    web = load_web_config(
        f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n", source="web.yml"
    )
    service = serve(web=web)
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    status, body = get(f"https://127.0.0.1:{service.port}/metrics", context=context)
    assert status == 200
    assert b"DCGM_FI_DEV_GPU_TEMP" in body


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "http_server_config: {}\n",
            "unsupported key\\(s\\): http_server_config",
            id="unknown top key",
        ),
        pytest.param(
            "tls_server_config:\n  cert_file: a\n",
            "cert_file and key_file go together",
            id="half TLS",
        ),
        pytest.param(
            "basic_auth_users:\n  u: plain\n",
            "basic_auth_users.u: expected a bcrypt hash",
            id="plain pw",
        ),
        pytest.param(
            "tls_server_config:\n  cipher_suites: []\n",
            "unsupported key\\(s\\): cipher_suites",
            id="ciphers",
        ),
    ],
)
def test_a_web_config_we_cannot_honour_is_refused_by_name(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_web_config(text, source="web.yml")


def test_scrapes_during_sampling_always_get_a_whole_snapshot(make_exporter: MakeExporter) -> None:
    import http.client
    import threading

    exporter, nvml = make_exporter("dgx-a100", address="127.0.0.1:0", collect_interval_ms=100)
    service = ExporterService(exporter, nvml)
    service.start()
    stop = threading.Event()
    steps = 0

    def resample() -> None:  # a sampler flat out, beside the service's own timer
        nonlocal steps
        while not stop.is_set():
            exporter.step()
            steps += 1
            time.sleep(0)  # hand the GIL over: the scrapes run between steps, not after 5 ms

    sampler = threading.Thread(target=resample, daemon=True)
    sampler.start()
    try:
        assert wait_until(lambda: steps > 0, 10), "the sampler never stepped"
        before = steps
        connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=10)
        for _ in range(25):
            connection.request("GET", "/metrics")
            body = connection.getresponse().read().decode()
            assert body.count("DCGM_FI_DEV_GPU_TEMP{") == 8
            assert (
                body.rstrip()
                .splitlines()[-1]
                .startswith("gpu_operator_exporter_last_scrape_duration_seconds ")
            )
        connection.close()
        during = steps - before
    finally:
        stop.set()
        sampler.join(timeout=5)
        service.stop()
    assert during > 0, "no sample was taken while the scrapes ran"
