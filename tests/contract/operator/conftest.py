"""Fixtures of the operator's contract tests: both kinds of lightkube client to the shared API
server emulator on its thread (``server_thread``, tests/conftest.py), retrying fast."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from lightkube import AsyncClient, Client

from gpu_operator.kube import KubeSettings, RetryPolicy, build_async_client, build_client
from gpu_operator.sandbox.apiserver import ServerThread

FAST = RetryPolicy(attempts=4, base_delay_s=0.01, max_delay_s=0.05)


@pytest.fixture
async def clients(server_thread: ServerThread) -> AsyncIterator[tuple[AsyncClient, Client]]:
    """An async and a synchronous client to the emulator, closed after the test."""
    settings = KubeSettings(server=server_thread.url, retry=FAST)
    aclient, client = build_async_client(settings), build_client(settings)
    yield aclient, client
    await aclient.close()
    client.close()
