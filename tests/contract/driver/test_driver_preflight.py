"""The registry check and ``gpu-operator preflight`` against a small local registry that speaks
the v2 manifest API with bearer-token auth (401 + ``WWW-Authenticate`` → token → retry)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlparse

import pytest
from typer.testing import CliRunner

from gpu_operator.cli import app
from gpu_operator.driver.registry import Exists, check_tag, parse_challenge, parse_image

TOKEN = "s3cret-token"


class Registry(BaseHTTPRequestHandler):
    tags: ClassVar[dict[str, set[str]]] = {}
    token_scopes: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path != "/token":
            self.send_response(404)
            self.end_headers()
            return
        query = parse_qs(url.query)
        self.token_scopes.append(query["scope"][0])
        body = json.dumps({"token": TOKEN}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self) -> None:
        parts = self.path.split("/manifests/")
        name = parts[0].removeprefix("/v2/")
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            realm = f"http://{self.headers['Host']}/token"
            self.send_response(401)
            self.send_header(
                "WWW-Authenticate",
                f'Bearer realm="{realm}",service="test-registry",scope="repository:{name}:pull"',
            )
            self.end_headers()
            return
        found = len(parts) == 2 and parts[1] in self.tags.get(name, set())
        self.send_response(200 if found else 404)
        if found:
            self.send_header("Docker-Content-Digest", "sha256:" + "0" * 64)
        self.end_headers()


@pytest.fixture
def registry() -> Iterator[str]:
    Registry.tags = {"nvidia/driver": {"595.91.07-ubuntu22.04", "595.91.07-rhel9"}}
    Registry.token_scopes = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        pytest.param(
            "nvcr.io/nvidia/driver:595.91.07-rocky8",
            ("nvcr.io", "nvidia/driver", "595.91.07-rocky8"),
            id="nvcr tag",
        ),
        pytest.param(
            "ubuntu",
            ("registry-1.docker.io", "library/ubuntu", "latest"),
            id="docker hub short name",
        ),
        pytest.param(
            "localhost:5000/driver@sha256:abc",
            ("localhost:5000", "driver", "sha256:abc"),
            id="digest on a port",
        ),
    ],
)
def test_image_references_parse_as_docker_does(image: str, expected: tuple[str, str, str]) -> None:
    ref = parse_image(image)
    assert (ref.registry, ref.name, ref.reference) == expected


def test_a_bearer_challenge_gives_realm_service_and_scope() -> None:
    header = 'Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull"'
    assert parse_challenge(header) == {
        "realm": "https://auth.example/token",
        "service": "reg",
        "scope": "repository:a/b:pull",
    }


def test_an_existing_tag_is_found_after_the_token_dance(registry: str) -> None:
    result = check_tag(
        f"{registry}/nvidia/driver:595.91.07-ubuntu22.04", plain_http=frozenset({registry})
    )
    assert result.exists is Exists.YES
    assert Registry.token_scopes == ["repository:nvidia/driver:pull"]


def test_a_missing_tag_is_reported_as_missing(registry: str) -> None:
    result = check_tag(
        f"{registry}/nvidia/driver:595.91.07-rocky8", plain_http=frozenset({registry})
    )
    assert result.exists is Exists.NO
    assert result.detail == f"{registry} has no nvidia/driver:595.91.07-rocky8"


def test_an_unreachable_registry_is_unknown_not_missing() -> None:
    result = check_tag(
        "127.0.0.1:1/nvidia/driver:1", plain_http=frozenset({"127.0.0.1:1"}), timeout_s=2
    )
    assert result.exists is Exists.UNKNOWN


def test_preflight_names_the_missing_rocky_tag_before_install(
    registry: str, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "apiVersion: nvidia.com/v1\nkind: ClusterPolicy\nmetadata: {name: cluster-policy}\n"
        f"spec:\n  driver: {{repository: {registry}/nvidia, image: driver, version: 595.91.07}}\n"
    )
    result = CliRunner().invoke(
        app,
        [
            "preflight",
            "-f",
            str(policy),
            "--node-os",
            "ubuntu:22.04",
            "--node-os",
            "rocky:8.5",
            "--node-os",
            "rhel:9.4",
            "--check-registry",
            "--plain-http",
            registry,
        ],
    )
    assert result.exit_code == 1, result.output
    image = f"{registry}/nvidia/driver:595.91.07"
    assert result.stdout.splitlines() == [
        f"nvidia-driver-daemonset-rhel9        {image}-rhel9  nodes: os-0-0  exists: yes",
        f"nvidia-driver-daemonset-rocky8       {image}-rocky8  nodes: os-1-0  exists: no "
        f"({registry} has no nvidia/driver:595.91.07-rocky8)",
        f"nvidia-driver-daemonset-ubuntu22.04  {image}-ubuntu22.04  nodes: os-2-0  exists: yes",
    ]
    assert f"missing driver images: {registry}/nvidia/driver:595.91.07-rocky8" in result.stderr


def test_all_images_names_a_missing_operand_image_too(registry: str, tmp_path: Path) -> None:
    ours = f"{registry}/gpu-operator/gpu-operator:1.0.0"
    Registry.tags["gpu-operator/gpu-operator"] = {"1.0.0"}
    Registry.tags["nvidia/dcgm"] = set()  # the DCGM host engine image was never mirrored
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "apiVersion: nvidia.com/v1\nkind: ClusterPolicy\nmetadata: {name: cluster-policy}\n"
        f"spec:\n  driver: {{repository: {registry}/nvidia, image: driver, version: 595.91.07}}\n"
        f"  dcgm: {{enabled: true, repository: {registry}/nvidia, image: dcgm, version: 4.6.0}}\n"
    )
    operand_image_vars = (
        "DRIVER_MANAGER_IMAGE",
        "CONTAINER_TOOLKIT_IMAGE",
        "DEVICE_PLUGIN_IMAGE",
        "DCGM_EXPORTER_IMAGE",
        "GFD_IMAGE",
        "VALIDATOR_IMAGE",
        "MIG_MANAGER_IMAGE",
    )
    env = dict.fromkeys(operand_image_vars, ours)
    result = CliRunner().invoke(
        app,
        [
            "preflight",
            "-f",
            str(policy),
            "--node-os",
            "ubuntu:22.04",
            "--check-registry",
            "--all-images",
            "--plain-http",
            registry,
        ],
        env=env,
    )
    assert result.exit_code == 1, result.output
    assert f"image {ours}  used by:" in result.stderr
    assert "exists: yes" in result.stderr
    assert f"missing images: {registry}/nvidia/dcgm:4.6.0" in result.stderr
    assert "missing driver images" not in result.stderr  # the ubuntu22.04 driver tag exists
