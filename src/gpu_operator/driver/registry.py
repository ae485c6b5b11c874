"""Does an image tag exist? The registry v2 API (``HEAD /v2/<name>/manifests/<reference>``) with
bearer-token auth: on a 401 the ``WWW-Authenticate: Bearer realm=…,service=…,scope=…`` challenge
names the token endpoint; one GET there (anonymous, or with basic credentials) gives the token
for the retry. Standard library HTTP only; the image reference parsing is pure."""

from __future__ import annotations

import base64
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from enum import StrEnum

from gpu_operator.errors import ConfigError

DOCKER_HUB = "registry-1.docker.io"
ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
_PARAM = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class ImageRef:
    registry: str
    name: str
    reference: str
    """A tag, or a digest ``sha256:…``."""

    def __str__(self) -> str:
        sep = "@" if self.reference.startswith("sha256:") else ":"
        return f"{self.registry}/{self.name}{sep}{self.reference}"


def parse_image(image: str) -> ImageRef:
    """``nvcr.io/nvidia/driver:595.91.07-rocky8`` → (nvcr.io, nvidia/driver, 595.91.07-rocky8);
    Docker Hub's short forms (``ubuntu``, ``library/ubuntu:22.04``) as docker does."""
    rest, at, digest = image.partition("@")
    first, slash, remainder = rest.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, remainder
    else:
        registry, path = DOCKER_HUB, rest
    name, colon, tag = path.rpartition(":") if ":" in path else (path, "", "")
    if not colon:
        name, tag = path, "latest"
    if registry == DOCKER_HUB and "/" not in name:
        name = f"library/{name}"
    reference = digest if at else tag
    if not name or not reference:
        raise ConfigError(f"image {image!r}: not a registry/name:tag or name@sha256 reference")
    return ImageRef(registry, name, reference)


def parse_challenge(header: str) -> dict[str, str]:
    """``Bearer realm="…",service="…",scope="…"`` → its parameters (empty if not Bearer)."""
    scheme, _, params = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return {}
    return dict(_PARAM.findall(params))


class Exists(StrEnum):
    YES = "yes"
    NO = "no"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class TagCheck:
    image: str
    exists: Exists
    detail: str = ""


@dataclass(frozen=True)
class RegistryAuth:
    """Basic credentials for the token endpoint (``None``: anonymous pulls)."""

    username: str
    password: str

    def header(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


def _request(
    url: str, method: str, headers: dict[str, str], timeout_s: float
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers.items()), b""


def _token(
    challenge: dict[str, str], ref: ImageRef, auth: RegistryAuth | None, timeout_s: float
) -> str:
    realm = challenge.get("realm")
    if not realm:
        raise ConfigError(f"{ref.registry}: 401 without a Bearer realm to get a token from")
    query = {
        "service": challenge.get("service", ""),
        "scope": challenge.get("scope") or f"repository:{ref.name}:pull",
    }
    url = f"{realm}?{urllib.parse.urlencode({k: v for k, v in query.items() if v})}"
    headers = {"Authorization": auth.header()} if auth else {}
    status, _, body = _request(url, "GET", headers, timeout_s)
    if status != 200:
        raise ConfigError(f"{ref.registry}: token endpoint {realm} answered {status}")
    data = json.loads(body or b"{}")
    token = data.get("token") or data.get("access_token")
    if not token:
        raise ConfigError(f"{ref.registry}: token endpoint {realm} gave no token")
    return str(token)


def check_tag(
    image: str,
    *,
    auth: RegistryAuth | None = None,
    plain_http: frozenset[str] = frozenset(),
    timeout_s: float = 10.0,
) -> TagCheck:
    """Whether ``image`` exists: ``yes`` (200), ``no`` (404), or ``unknown`` with the reason
    (unreachable, denied, unexpected status). ``plain_http``: registries spoken to over HTTP."""
    ref = parse_image(image)
    scheme = "http" if ref.registry in plain_http else "https"
    url = f"{scheme}://{ref.registry}/v2/{ref.name}/manifests/{ref.reference}"
    headers = {"Accept": ACCEPT}
    try:
        status, response_headers, _ = _request(url, "HEAD", headers, timeout_s)
        if status == 401:
            challenge = parse_challenge(
                next(
                    (v for k, v in response_headers.items() if k.lower() == "www-authenticate"), ""
                )
            )
            token = _token(challenge, ref, auth, timeout_s)
            headers["Authorization"] = f"Bearer {token}"
            status, _, _ = _request(url, "HEAD", headers, timeout_s)
    except (OSError, ConfigError, ValueError) as error:
        return TagCheck(image, Exists.UNKNOWN, f"{ref.registry}: {error}")
    if status == 200:
        return TagCheck(image, Exists.YES)
    if status == 404:
        return TagCheck(image, Exists.NO, f"{ref.registry} has no {ref.name}:{ref.reference}")
    return TagCheck(image, Exists.UNKNOWN, f"{ref.registry} answered {status} for {url}")
