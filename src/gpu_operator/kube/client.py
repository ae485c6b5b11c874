"""Build the one lightkube client every agent uses: in-cluster config, ``KUBECONFIG`` (or
``~/.kube/config``), or an explicit server URL — always with our field manager."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from lightkube import AsyncClient, Client
from lightkube.config.kubeconfig import KubeConfig, SingleConfig
from lightkube.core.exceptions import ConfigError as LightkubeConfigError

from gpu_operator.errors import ConfigError
from gpu_operator.kube.retry import RetryPolicy

FIELD_MANAGER = "gpu-operator"
SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass(frozen=True)
class KubeSettings:
    """Where the API server is and how to talk to it.

    server: explicit URL (e.g. the sandbox emulator's); wins over everything else.
    kubeconfig: a kubeconfig file; else in-cluster service account, then ``$KUBECONFIG``, then
        ``~/.kube/config`` (lightkube's ``KubeConfig.from_env`` order).
    context: the kubeconfig context to use; ``None``: the file's current context.
    field_manager: the name our writes are recorded under in ``managedFields``.
    timeout_s: per-request timeout, seconds (watches have no read timeout).
    service_account: the in-cluster service account directory (token, ca.crt, namespace).
    retry: backoff for 409/429/5xx and dropped connections.
    """

    server: str | None = None
    kubeconfig: Path | None = None
    context: str | None = None
    namespace: str | None = None
    field_manager: str = FIELD_MANAGER
    timeout_s: float = 10.0
    service_account: Path = SERVICE_ACCOUNT
    retry: RetryPolicy = field(default_factory=RetryPolicy)


def _server_config(server: str, namespace: str | None) -> KubeConfig:
    """An explicit server with an anonymous user (lightkube's ``from_server`` has no user)."""
    context = {"cluster": "default", "user": "default", "namespace": namespace or "default"}
    return KubeConfig.from_dict(
        {
            "clusters": [{"name": "default", "cluster": {"server": server}}],
            "users": [{"name": "default", "user": {}}],
            "contexts": [{"name": "default", "context": context}],
            "current-context": "default",
        }
    )


def load_config(settings: KubeSettings) -> KubeConfig:
    """The lightkube config ``settings`` name; a missing or broken one is a ``ConfigError``."""
    try:
        if settings.server is not None:
            return _server_config(settings.server, settings.namespace)
        if settings.kubeconfig is not None:
            if not settings.kubeconfig.is_file():
                raise ConfigError(f"kubeconfig {settings.kubeconfig}: no such file")
            return KubeConfig.from_file(settings.kubeconfig)
        try:
            return KubeConfig.from_service_account(service_account=settings.service_account)
        except LightkubeConfigError:
            # An empty KUBECONFIG counts as unset: upstream pod specs set it empty to mean
            # in-cluster, which lightkube's from_env would read as a file named "".
            return KubeConfig.from_file(os.environ.get("KUBECONFIG") or "~/.kube/config")
    except (LightkubeConfigError, OSError, KeyError, ValueError) as error:
        where = settings.kubeconfig or "the environment (in-cluster, $KUBECONFIG, ~/.kube/config)"
        raise ConfigError(f"no usable Kubernetes configuration from {where}: {error}") from error


def _single(settings: KubeSettings) -> SingleConfig:
    config = load_config(settings)
    try:
        single = config.get(context_name=settings.context)
    except (LightkubeConfigError, KeyError):
        single = None
    if single is None:
        raise ConfigError(f"kubeconfig has no context {settings.context!r}")
    return single


def build_client(settings: KubeSettings) -> Client:
    """A synchronous lightkube client for ``settings``."""
    import httpx2

    return Client(
        config=_single(settings),
        namespace=settings.namespace,
        field_manager=settings.field_manager,
        timeout=httpx2.Timeout(settings.timeout_s),
        trust_env=False,
    )


def build_async_client(settings: KubeSettings) -> AsyncClient:
    """An asyncio lightkube client for ``settings``."""
    import httpx2

    return AsyncClient(
        config=_single(settings),
        namespace=settings.namespace,
        field_manager=settings.field_manager,
        timeout=httpx2.Timeout(settings.timeout_s),
        trust_env=False,
    )
