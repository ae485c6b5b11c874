"""The Kubernetes writers against the API server emulator over real HTTP: the NodeFeature
object (created, owned by the DaemonSet and Pod, not rewritten when unchanged, updated when the
labels change) and the direct node-label writer, which never touches a key it doesn't own."""

from __future__ import annotations

from typing import Any

import pytest
from lightkube import Client
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.apps_v1 import DaemonSetSpec
from lightkube.models.core_v1 import Container, PodSpec, PodTemplateSpec
from lightkube.models.meta_v1 import LabelSelector, ObjectMeta, OwnerReference
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.apps_v1 import DaemonSet
from lightkube.resources.core_v1 import Namespace, Node, Pod

from gpu_operator.discovery.kube_writers import (
    OWNED_KEYS_ANNOTATION,
    NodeFeatureWriter,
    NodeLabelWriter,
)
from gpu_operator.errors import ConfigError

NodeFeature = create_namespaced_resource(
    "nfd.k8s-sigs.io", "v1alpha1", "NodeFeature", "nodefeatures"
)
NODE = "gpu-node-1"
NAMESPACE = "gpu-operator"
NODE_FEATURE_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "nodefeatures.nfd.k8s-sigs.io"},
    "spec": {
        "group": "nfd.k8s-sigs.io",
        "names": {"kind": "NodeFeature", "plural": "nodefeatures", "singular": "nodefeature"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1alpha1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
            }
        ],
    },
}


@pytest.fixture
def client(client: Client) -> Client:
    """The shared emulator's client (tests/conftest.py), with NFD's CRD, a namespace and a node."""
    client.create(CustomResourceDefinition.from_dict(NODE_FEATURE_CRD))  # type: ignore[call-overload]
    client.create(Namespace(metadata=ObjectMeta(name=NAMESPACE)))
    client.create(
        Node(
            metadata=ObjectMeta(
                name=NODE,
                labels={
                    "kubernetes.io/hostname": NODE,
                    "nvidia.com/gpu.present": "true",
                    "nvidia.com/mig.config.state": "success",
                },
            )
        )
    )
    return client


def daemonset_pod(client: Client) -> tuple[Any, Any]:
    labels = {"app": "gpu-feature-discovery"}
    ds = client.create(
        DaemonSet(
            metadata=ObjectMeta(name="gpu-feature-discovery", namespace=NAMESPACE),
            spec=DaemonSetSpec(
                selector=LabelSelector(matchLabels=labels),
                template=PodTemplateSpec(
                    metadata=ObjectMeta(labels=labels),
                    spec=PodSpec(containers=[Container(name="gfd", image="gpu-operator")]),
                ),
            ),
        )
    )
    assert ds.metadata is not None
    assert ds.metadata.uid
    pod = client.create(
        Pod(
            metadata=ObjectMeta(
                name="gpu-feature-discovery-abcde",
                namespace=NAMESPACE,
                labels=labels,
                ownerReferences=[
                    OwnerReference(
                        apiVersion="apps/v1",
                        kind="DaemonSet",
                        name="gpu-feature-discovery",
                        uid=ds.metadata.uid,
                        controller=True,
                    )
                ],
            ),
            spec=PodSpec(containers=[Container(name="gfd", image="gpu-operator")]),
        )
    )
    return ds, pod


def node_feature(client: Client) -> Any:
    return client.get(NodeFeature, f"nvidia-features-for-{NODE}", namespace=NAMESPACE)


def test_the_node_feature_object_is_created_with_upstreams_name_label_and_spec(
    client: Client,
) -> None:
    writer = NodeFeatureWriter(client, NODE, NAMESPACE)

    assert writer.write({"nvidia.com/gpu.count": "8", "nvidia.com/gpu.family": "ampere"})

    obj = node_feature(client)
    assert obj["metadata"]["labels"] == {"nfd.node.kubernetes.io/node-name": NODE}
    assert obj["spec"]["labels"] == {"nvidia.com/gpu.count": "8", "nvidia.com/gpu.family": "ampere"}
    assert obj["spec"].get("features") in ({}, None)
    assert not obj["metadata"].get("ownerReferences")


def test_the_node_feature_is_owned_by_the_daemonset_as_controller_and_by_the_pod(
    client: Client,
) -> None:
    ds, pod = daemonset_pod(client)

    NodeFeatureWriter(client, NODE, NAMESPACE, pod_name=pod.metadata.name).write({"a/b": "c"})

    refs = node_feature(client)["metadata"]["ownerReferences"]
    assert [(r["kind"], r["name"], r["uid"], r.get("controller")) for r in refs] == [
        ("DaemonSet", "gpu-feature-discovery", ds.metadata.uid, True),
        ("Pod", "gpu-feature-discovery-abcde", pod.metadata.uid, None),
    ]


def test_unchanged_labels_cause_no_update_and_changed_labels_one(client: Client) -> None:
    writer = NodeFeatureWriter(client, NODE, NAMESPACE)
    writer.write({"nvidia.com/gpu.count": "8"})
    version = node_feature(client)["metadata"]["resourceVersion"]

    assert writer.write({"nvidia.com/gpu.count": "8"}) is False
    assert node_feature(client)["metadata"]["resourceVersion"] == version

    assert writer.write({"nvidia.com/gpu.count": "7"}) is True
    updated = node_feature(client)
    assert updated["metadata"]["resourceVersion"] != version
    assert updated["spec"]["labels"] == {"nvidia.com/gpu.count": "7"}


def test_the_node_feature_writer_needs_a_node_name(client: Client) -> None:
    with pytest.raises(ConfigError, match="NODE_NAME"):
        NodeFeatureWriter(client, "", NAMESPACE)


# --- direct node labels ----------------------------------------------------------------------


def node_labels(client: Client) -> dict[str, str]:
    meta = client.get(Node, NODE).metadata
    assert meta is not None
    return dict(meta.labels or {})


def test_node_labels_are_added_without_touching_foreign_keys(client: Client) -> None:
    writer = NodeLabelWriter(client, NODE)

    writer.write({"nvidia.com/gpu.count": "8", "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB"})

    assert node_labels(client) == {
        "kubernetes.io/hostname": NODE,
        "nvidia.com/gpu.present": "true",
        "nvidia.com/mig.config.state": "success",
        "nvidia.com/gpu.count": "8",
        "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB",
    }


def test_keys_the_writer_wrote_before_and_no_longer_produces_are_removed(client: Client) -> None:
    writer = NodeLabelWriter(client, NODE)
    writer.write({"nvidia.com/gpu.count": "8", "nvidia.com/mig-1g.5gb.count": "16"})

    writer.write({"nvidia.com/gpu.count": "8"})

    labels = node_labels(client)
    assert "nvidia.com/mig-1g.5gb.count" not in labels
    assert labels["nvidia.com/gpu.count"] == "8"
    assert labels["nvidia.com/gpu.present"] == "true", "the operator's label stays"
    assert labels["nvidia.com/mig.config.state"] == "success", "the MIG manager's label stays"
    meta = client.get(Node, NODE).metadata
    assert meta is not None
    assert meta.annotations is not None
    assert meta.annotations[OWNED_KEYS_ANNOTATION] == "nvidia.com/gpu.count"


def test_a_foreign_nvidia_key_is_never_removed_even_when_not_produced(client: Client) -> None:
    writer = NodeLabelWriter(client, NODE)

    writer.write({"nvidia.com/gpu.count": "8"})
    writer.write({})

    labels = node_labels(client)
    assert "nvidia.com/gpu.count" not in labels
    assert labels["nvidia.com/gpu.present"] == "true"
    assert labels["nvidia.com/mig.config.state"] == "success"


def test_unchanged_node_labels_cause_no_write(client: Client) -> None:
    writer = NodeLabelWriter(client, NODE)
    writer.write({"nvidia.com/gpu.count": "8"})
    version = client.get(Node, NODE).metadata.resourceVersion  # type: ignore[union-attr]

    assert writer.write({"nvidia.com/gpu.count": "8"}) is False
    assert client.get(Node, NODE).metadata.resourceVersion == version  # type: ignore[union-attr]


def test_the_node_label_writer_refuses_keys_outside_nvidia_com(client: Client) -> None:
    with pytest.raises(ConfigError, match=r"refusing to write non-nvidia\.com keys"):
        NodeLabelWriter(client, NODE).write({"example.com/x": "1"})
