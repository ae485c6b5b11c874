"""An API server emulator per test, on its own thread (synchronous clients) or on the test's
loop (the operator), and clients built the way the agents build them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from lightkube import AsyncClient, Client

from gpu_operator.kube import KubeSettings, RetryPolicy, build_async_client, build_client
from gpu_operator.sandbox.apiserver import ApiServer, ServerThread

FAST_RETRY = RetryPolicy(attempts=4, base_delay_s=0.01, max_delay_s=0.05)


@pytest.fixture
def server_thread() -> Iterator[ServerThread]:
    with ServerThread(ApiServer(bookmark_interval_s=0.2)) as thread:
        yield thread


@pytest.fixture
def client(server_thread: ServerThread) -> Iterator[Client]:
    client = build_client(KubeSettings(server=server_thread.url, retry=FAST_RETRY))
    yield client
    client.close()


@pytest.fixture
async def apiserver() -> AsyncIterator[ApiServer]:
    async with ApiServer(bookmark_interval_s=0.2) as server:
        yield server


@pytest.fixture
async def aclient(apiserver: ApiServer) -> AsyncIterator[AsyncClient]:
    client = build_async_client(KubeSettings(server=apiserver.url, retry=FAST_RETRY))
    yield client
    await client.close()
