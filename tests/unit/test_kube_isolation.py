"""No test reaches a real API server through the caller's ``KUBECONFIG`` or ``~/.kube``: the
autouse guard in tests/conftest.py gives every test an empty ``HOME`` and a ``KUBECONFIG`` that
names no file, so an agent that looks for a cluster the way it does in production finds none."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gpu_operator.errors import ConfigError
from gpu_operator.kube import KubeSettings, build_client
from gpu_operator.sandbox.apiserver import ServerThread
from helpers.isolation import isolate_from_real_clusters


def test_every_test_gets_its_own_home_and_a_kubeconfig_that_names_no_file(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    home, kubeconfig = Path(os.environ["HOME"]), Path(os.environ["KUBECONFIG"])
    assert home.is_relative_to(tmp_path_factory.getbasetemp())
    assert list(home.iterdir()) == []
    assert kubeconfig.parent == home
    assert not kubeconfig.exists()
    assert Path("~").expanduser() == home
    assert "KUBERNETES_SERVICE_HOST" not in os.environ


def test_a_live_cluster_in_the_callers_kubeconfig_and_kube_dir_is_never_reached(
    server_thread: ServerThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The caller's shell points at a live API server through both ``KUBECONFIG`` and
    ``~/.kube/config`` (and says it is in a cluster); once isolated, the agents' own client
    construction refuses with one line and the server sees no request."""
    callers_home = tmp_path / "caller"
    kubeconfig = server_thread.server.write_kubeconfig(callers_home / ".kube" / "config")
    monkeypatch.setenv("HOME", str(callers_home))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    reachable = build_client(KubeSettings(service_account=tmp_path / "no-service-account"))
    reachable.close()  # the setup is live: without isolation, a client comes up

    isolate_from_real_clusters(monkeypatch, tmp_path / "home")
    with pytest.raises(ConfigError, match=r"no usable Kubernetes configuration .*\$KUBECONFIG"):
        build_client(KubeSettings(service_account=tmp_path / "no-service-account"))
    assert server_thread.server.requests == 0
