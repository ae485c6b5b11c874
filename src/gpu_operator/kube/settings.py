"""Where the API server is and how to retry it: plain settings, no client. Kept apart from
``client`` so that an agent can hold (and pass on) its Kubernetes settings without importing
lightkube until it talks to the API."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class RetryPolicy:
    """attempts: tries in all (1: no retry); delays double from ``base_delay_s`` up to
    ``max_delay_s``; a 429's ``Retry-After`` is honoured up to ``max_delay_s``."""

    attempts: int = 6
    base_delay_s: float = 0.1
    max_delay_s: float = 5.0

    def delay(self, attempt: int, error: BaseException) -> float:
        import httpx2  # loaded already wherever a request failed

        wait = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        response = (
            getattr(error, "response", None) if isinstance(error, httpx2.HTTPStatusError) else None
        )
        if response is not None:
            after = response.headers.get("Retry-After", "")
            if after.isdigit():
                wait = min(self.max_delay_s, float(after))
        return float(wait)


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
