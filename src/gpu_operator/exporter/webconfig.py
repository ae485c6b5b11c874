"""``--web-config-file``: TLS and basic auth in the Prometheus exporter-toolkit format.

    tls_server_config:
      cert_file: /etc/tls/tls.crt
      key_file: /etc/tls/tls.key
      client_ca_file: /etc/tls/ca.crt      # optional: require client certificates
    basic_auth_users:
      prometheus: $2y$10$...               # bcrypt hashes, as exporter-toolkit

Keys we do not implement (cipher suites, HTTP/2 settings, ...) are refused by name rather than
silently ignored, so a config never looks applied when it isn't.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpu_operator.errors import ConfigError

if TYPE_CHECKING:  # ssl is imported when TLS is configured: ~3 MiB of libcrypto otherwise
    import ssl

_TLS_KEYS = {"cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version"}
_MIN_VERSIONS = {"TLS12": "TLSv1_2", "TLS13": "TLSv1_3"}
"""exporter-toolkit's words → ``ssl.TLSVersion`` member names."""


@dataclass(frozen=True)
class WebConfig:
    cert_file: Path | None = None
    key_file: Path | None = None
    client_ca_file: Path | None = None
    min_version: str = "TLS12"
    users: dict[str, bytes] = field(default_factory=dict)

    def ssl_context(self) -> ssl.SSLContext | None:
        if self.cert_file is None or self.key_file is None:
            return None
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion[_MIN_VERSIONS[self.min_version]]
        try:
            context.load_cert_chain(self.cert_file, self.key_file)
            if self.client_ca_file is not None:
                context.load_verify_locations(self.client_ca_file)
                context.verify_mode = ssl.CERT_REQUIRED
        except (OSError, ssl.SSLError) as error:
            raise ConfigError(f"web config: cannot load TLS files: {error}") from error
        return context

    def authorized(self, header: str | None) -> bool:
        """Whether an ``Authorization`` header passes basic auth (always, without users)."""
        if not self.users:
            return True
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        hashed = self.users.get(user)
        if hashed is None:
            return False
        import bcrypt  # only needed when basic auth is configured

        return bool(bcrypt.checkpw(password.encode(), hashed))


def load_web_config(text: str, *, source: str) -> WebConfig:
    import yaml  # only when a web config is given: the exporter's footprint without one

    try:
        doc: Any = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: not valid YAML: {error}") from error
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    unknown = set(doc) - {"tls_server_config", "basic_auth_users"}
    if unknown:
        raise ConfigError(f"{source}: unsupported key(s): {', '.join(sorted(unknown))}")
    tls = doc.get("tls_server_config") or {}
    if not isinstance(tls, dict):
        raise ConfigError(f"{source}: tls_server_config: expected a mapping")
    unknown = set(tls) - _TLS_KEYS
    if unknown:
        raise ConfigError(
            f"{source}: tls_server_config: unsupported key(s): {', '.join(sorted(unknown))}"
        )
    if ("cert_file" in tls) != ("key_file" in tls):
        raise ConfigError(f"{source}: tls_server_config: cert_file and key_file go together")
    min_version = str(tls.get("min_version", "TLS12"))
    if min_version not in _MIN_VERSIONS:
        raise ConfigError(
            f"{source}: tls_server_config.min_version: {min_version!r} (TLS12 or TLS13)"
        )
    users_doc = doc.get("basic_auth_users") or {}
    if not isinstance(users_doc, dict):
        raise ConfigError(f"{source}: basic_auth_users: expected a mapping of user to bcrypt hash")
    users = {}
    for user, hashed in users_doc.items():
        if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise ConfigError(f"{source}: basic_auth_users.{user}: expected a bcrypt hash")
        users[str(user)] = hashed.replace("$2y$", "$2b$", 1).encode()
    return WebConfig(
        cert_file=Path(tls["cert_file"]) if "cert_file" in tls else None,
        key_file=Path(tls["key_file"]) if "key_file" in tls else None,
        client_ca_file=Path(tls["client_ca_file"]) if "client_ca_file" in tls else None,
        min_version=min_version,
        users=users,
    )


def read_web_config(path: Path) -> WebConfig:
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigError(f"--web-config-file {path}: {error.strerror or error}") from error
    return load_web_config(text, source=str(path))
