"""Cluster helpers for validator tests: nodes with capacity, and the kubelet's part (pod phases)."""

from __future__ import annotations

from lightkube import Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Node, Pod
from lightkube.types import PatchType


def add_node(client: Client, name: str, capacity: dict[str, str]) -> None:
    client.create(Node(metadata=ObjectMeta(name=name)))
    set_capacity(client, name, capacity)


def set_capacity(client: Client, name: str, capacity: dict[str, str]) -> None:
    body = {"status": {"capacity": capacity, "allocatable": capacity}}
    client.patch(Node.Status, name, body, patch_type=PatchType.MERGE)


def mark_pods(client: Client, app: str, phase: str) -> list[str]:
    """What the kubelet would do: set the phase of every pod labelled ``app=<app>``."""
    names = []
    for pod in client.list(Pod, namespace="gpu-operator", labels={"app": app}):
        assert pod.metadata is not None
        assert pod.metadata.name is not None
        body = {"status": {"phase": phase}}
        client.patch(
            Pod.Status,
            pod.metadata.name,
            body,
            namespace="gpu-operator",
            patch_type=PatchType.MERGE,
        )
        names.append(pod.metadata.name)
    return names
