"""An API server emulator per test: asyncio (``apiserver``) or on a thread for synchronous
clients (``server_thread``), with lightkube clients built the way every agent builds them, and
the real kubectl (``kubectl``: a runner bound to ``kube_cluster``'s kubeconfig)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from kubectl_helpers import Kubectl, kubectl_runner
from lightkube import AsyncClient, Client

from gpu_operator.kube import KubeSettings, RetryPolicy, build_async_client, build_client
from gpu_operator.sandbox.apiserver import ApiServer, ServerThread

FAST_RETRY = RetryPolicy(attempts=4, base_delay_s=0.01, max_delay_s=0.05)


@pytest.fixture
async def apiserver() -> AsyncIterator[ApiServer]:
    async with ApiServer(bookmark_interval_s=0.2) as server:
        yield server


@pytest.fixture
async def aclient(apiserver: ApiServer) -> AsyncIterator[AsyncClient]:
    client = build_async_client(KubeSettings(server=apiserver.url, retry=FAST_RETRY))
    yield client
    await client.close()


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
def kube_cluster(tmp_path: Path) -> Iterator[ServerThread]:
    """An emulator on its own thread with its kubeconfig at ``tmp_path/kubeconfig``."""
    with ServerThread(ApiServer(bookmark_interval_s=0.5)) as thread:
        thread.server.write_kubeconfig(tmp_path / "kubeconfig")
        yield thread


@pytest.fixture
def kubectl(kube_cluster: ServerThread, tmp_path: Path) -> Kubectl:
    return kubectl_runner(tmp_path / "kubeconfig", tmp_path / "cache")
