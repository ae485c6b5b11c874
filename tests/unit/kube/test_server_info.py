"""``kube.server_info`` asks the API server about itself through the client's own connection:
``/version``, and a group's discovery document (``None`` for a group the server does not serve,
which is how the operator learns ``resource.k8s.io/v1`` is missing)."""

from __future__ import annotations

import pytest
from lightkube import Client

from gpu_operator.errors import KubeError
from gpu_operator.kube.server_info import get_path, served_versions
from gpu_operator.operator.dra_refusals import parse_version
from gpu_operator.sandbox.apiserver import ServerThread


def test_the_version_and_the_dra_group_are_read(client: Client) -> None:
    assert parse_version(get_path(client, "/version") or {}) == (1, 37)
    assert served_versions(get_path(client, "/apis/resource.k8s.io")) == ["v1"]


def test_a_group_the_server_does_not_serve_is_none(client: Client) -> None:
    assert get_path(client, "/apis/no.such.group") is None
    assert served_versions(None) == []


def test_a_server_error_is_one_kube_error(client: Client, server_thread: ServerThread) -> None:
    server_thread.call(server_thread.server.fail_next, 1, 500)
    with pytest.raises(KubeError, match=r"^GET /version: HTTP 500"):
        get_path(client, "/version")
