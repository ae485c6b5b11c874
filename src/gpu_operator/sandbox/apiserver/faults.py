"""Fault injection for tests: fail the next N requests (500 or 429), drop every open watch,
compact history so resumed watches get 410 Gone, and add latency to every request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gpu_operator.sandbox.apiserver.status import ApiStatus


@dataclass
class Faults:
    """What the emulator should get wrong next; read and changed only on the server's loop."""

    fail_next: int = 0
    fail_status: int = 500
    retry_after_s: int = 1
    latency_s: float = 0.0
    failed: int = 0
    exempt_paths: tuple[str, ...] = field(default=("/_sandbox/",))

    def fail(self, count: int, status: int = 500, retry_after_s: int = 1) -> None:
        """Answer the next ``count`` API requests with ``status`` (500 or 429)."""
        if status not in (429, 500, 503):
            raise ValueError(f"fault status must be 429, 500 or 503, not {status}")
        if count < 0:
            raise ValueError(f"fault count must be >= 0, not {count}")
        self.fail_next, self.fail_status, self.retry_after_s = count, status, retry_after_s

    def take(self, path: str) -> ApiStatus | None:
        """The injected failure for this request, if one is due."""
        if self.fail_next <= 0 or path.startswith(self.exempt_paths):
            return None
        self.fail_next -= 1
        self.failed += 1
        if self.fail_status == 429:
            return ApiStatus(429, "injected fault: too many requests, please try again later")
        return ApiStatus(self.fail_status, "injected fault: internal error")

    def describe(self) -> dict[str, Any]:
        return {
            "failNext": self.fail_next,
            "failStatus": self.fail_status,
            "latencyMs": round(self.latency_s * 1000, 3),
            "failed": self.failed,
        }
