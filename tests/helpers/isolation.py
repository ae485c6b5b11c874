"""Keep tests away from real clusters: no test reads the caller's ``KUBECONFIG``,
``~/.kube/config`` or in-cluster service environment (tests/conftest.py applies this to every
test; a test that means to reach a cluster passes its own kubeconfig explicitly)."""

from __future__ import annotations

from pathlib import Path

import pytest

IN_CLUSTER_VARS = ("KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT")


def isolate_from_real_clusters(monkeypatch: pytest.MonkeyPatch, home: Path) -> Path:
    """Point ``HOME`` at the empty directory ``home`` (created) and ``KUBECONFIG`` at a file that
    does not exist under it, and drop the in-cluster variables; returns ``home``."""
    home.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KUBECONFIG", str(home / "no-kubeconfig"))
    for var in IN_CLUSTER_VARS:
        monkeypatch.delenv(var, raising=False)
    return home
