"""The real kubectl against the emulator (``kubectl``: a runner bound to ``kube_cluster``'s
kubeconfig); ``apiserver``, ``server_thread`` and their clients come from tests/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gpu_operator.sandbox.apiserver import ApiServer, ServerThread
from helpers.kubectl import Kubectl, kubectl_runner


@pytest.fixture
def kube_cluster(tmp_path: Path) -> Iterator[ServerThread]:
    """An emulator on its own thread with its kubeconfig at ``tmp_path/kubeconfig``."""
    with ServerThread(ApiServer(bookmark_interval_s=0.5)) as thread:
        thread.server.write_kubeconfig(tmp_path / "kubeconfig")
        yield thread


@pytest.fixture
def kubectl(kube_cluster: ServerThread, tmp_path: Path) -> Kubectl:
    return kubectl_runner(tmp_path / "kubeconfig", tmp_path / "cache")
