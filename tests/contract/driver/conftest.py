"""A small GPU cluster on a per-test emulator (``client`` from tests/conftest.py)."""

from __future__ import annotations

import pytest
from lightkube import Client

from helpers.driver_cluster import Cluster


@pytest.fixture
def cluster(client: Client) -> Cluster:
    return Cluster(client)
