"""Client construction from a kubeconfig, Events about our objects, and pods on a node."""

from __future__ import annotations

from pathlib import Path

import pytest
from lightkube import Client
from lightkube.models.core_v1 import Container, PodSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Event, Namespace, Node, Pod

from gpu_operator.errors import ConfigError
from gpu_operator.kube import (
    KubeSettings,
    build_client,
    build_event,
    load_config,
    pods_on_node,
    post_event,
)
from gpu_operator.sandbox.apiserver import ServerThread

pytestmark = pytest.mark.timeout(10)


def test_client_from_the_emulators_kubeconfig(server_thread: ServerThread, tmp_path: Path) -> None:
    path = server_thread.server.write_kubeconfig(tmp_path / "kubeconfig")
    client = build_client(KubeSettings(kubeconfig=path))
    try:
        assert client.get(Namespace, "default").metadata.name == "default"
    finally:
        client.close()


def test_kubeconfig_from_environment(
    server_thread: ServerThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = server_thread.server.write_kubeconfig(tmp_path / "kubeconfig")
    monkeypatch.setenv("KUBECONFIG", str(path))
    client = build_client(KubeSettings())
    try:
        assert client.get(Namespace, "kube-system").metadata.name == "kube-system"
    finally:
        client.close()


def test_an_empty_kubeconfig_counts_as_unset(
    server_thread: ServerThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upstream pod specs set KUBECONFIG="" to mean in-cluster; off-cluster that is
    ~/.kube/config, not a file named ""."""
    server_thread.server.write_kubeconfig(tmp_path / ".kube" / "config")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KUBECONFIG", "")
    client = build_client(KubeSettings(service_account=tmp_path / "no-service-account"))
    try:
        assert client.get(Namespace, "kube-system").metadata.name == "kube-system"
    finally:
        client.close()


def test_missing_kubeconfig_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nowhere\.yaml: no such file"):
        build_client(KubeSettings(kubeconfig=tmp_path / "nowhere.yaml"))


def test_unknown_context_is_a_config_error(server_thread: ServerThread, tmp_path: Path) -> None:
    path = server_thread.server.write_kubeconfig(tmp_path / "kubeconfig")
    with pytest.raises(ConfigError, match="no context 'prod'"):
        build_client(KubeSettings(kubeconfig=path, context="prod"))


def test_post_event_about_a_node(client: Client) -> None:
    node = client.create(Node(metadata=ObjectMeta(name="gpu-1")))
    post_event(client, node, "MigConfigApplied", "all-1g.10gb applied", type="Normal")
    events = list(client.list(Event, namespace="default", fields={"involvedObject.name": "gpu-1"}))
    assert len(events) == 1
    event = events[0]
    assert (event.reason, event.message, event.type) == (
        "MigConfigApplied",
        "all-1g.10gb applied",
        "Normal",
    )
    assert event.involvedObject.kind == "Node"
    assert event.involvedObject.uid == node.metadata.uid
    assert event.source.component == "gpu-operator"


def test_event_type_must_be_normal_or_warning() -> None:
    with pytest.raises(ConfigError, match="'Info'"):
        build_event(Node(metadata=ObjectMeta(name="n")), "R", "m", type="Info")  # type: ignore[arg-type]


def test_pods_on_node_filters_by_node_and_labels(client: Client) -> None:
    client.create(Namespace(metadata=ObjectMeta(name="gpu-operator")))

    def pod(name: str, namespace: str, node: str, app: str) -> None:
        client.create(
            Pod(
                metadata=ObjectMeta(name=name, namespace=namespace, labels={"app": app}),
                spec=PodSpec(nodeName=node, containers=[Container(name="c", image="i")]),
            )
        )

    pod("a", "default", "gpu-1", "train")
    pod("b", "gpu-operator", "gpu-1", "exporter")
    pod("c", "default", "gpu-2", "train")
    assert sorted(str(p.metadata.name) for p in pods_on_node(client, "gpu-1")) == ["a", "b"]
    assert [p.metadata.name for p in pods_on_node(client, "gpu-1", labels={"app": "train"})] == [
        "a"
    ]
    assert [p.metadata.name for p in pods_on_node(client, "gpu-1", namespace="gpu-operator")] == [
        "b"
    ]


def test_in_cluster_service_account_comes_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server_thread: ServerThread
) -> None:
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("pod-token")
    (account / "ca.crt").write_text("")
    (account / "namespace").write_text("gpu-operator")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    monkeypatch.setenv("KUBECONFIG", str(server_thread.server.write_kubeconfig(tmp_path / "kc")))
    single = load_config(KubeSettings(service_account=account)).get()
    assert single is not None
    assert single.cluster.server == "https://10.0.0.1:443"
    assert single.user.token == "pod-token"
    assert single.namespace == "gpu-operator"
