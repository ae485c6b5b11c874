"""Build the one lightkube client every agent uses: in-cluster config, ``KUBECONFIG`` (or
``~/.kube/config``), or an explicit server URL — always with our field manager."""

from __future__ import annotations

import os

from lightkube import AsyncClient, Client
from lightkube.config.kubeconfig import KubeConfig, SingleConfig
from lightkube.core.exceptions import ConfigError as LightkubeConfigError

from gpu_operator.errors import ConfigError
from gpu_operator.kube.settings import KubeSettings


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
