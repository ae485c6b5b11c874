"""Kubernetes' timestamp format (RFC 3339, UTC, whole seconds), for every object the sandbox
writes."""

from __future__ import annotations

import time


def rfc3339(seconds: float | None = None) -> str:
    """``seconds`` since the epoch (default: now) as ``2026-11-27T14:00:00Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
