"""The API server emulator as tests use it: one retry policy fast enough for tests and the
clients built the way every agent builds them. The fixtures (``server_thread``, ``client``,
``apiserver``, ``aclient``) live in tests/conftest.py and use these."""

from __future__ import annotations

from gpu_operator.kube import KubeSettings, RetryPolicy
from gpu_operator.sandbox.apiserver import ApiServer

FAST_RETRY = RetryPolicy(attempts=4, base_delay_s=0.01, max_delay_s=0.05)
"""Retries as the agents do them, with delays short enough for a test."""

BOOKMARK_INTERVAL_S = 0.2


def new_apiserver() -> ApiServer:
    """An empty emulator (not yet started) with bookmarks often enough for watch tests."""
    return ApiServer(bookmark_interval_s=BOOKMARK_INTERVAL_S)


def settings_for(url: str) -> KubeSettings:
    """Settings that reach the emulator at ``url`` directly, with the fast retry policy."""
    return KubeSettings(server=url, retry=FAST_RETRY)
