"""Validator tests talk to the API server emulator over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from lightkube import Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace

from gpu_operator.kube import KubeSettings, build_client
from gpu_operator.sandbox.apiserver import ServerThread


@pytest.fixture
def kube(server_thread: ServerThread) -> KubeSettings:
    return KubeSettings(server=server_thread.url)


@pytest.fixture
def client(kube: KubeSettings) -> Iterator[Client]:
    client = build_client(kube)
    client.create(Namespace(metadata=ObjectMeta(name="gpu-operator")))
    yield client
    client.close()
