"""Label writes touch only the keys we own, and nothing at all when nothing differs."""

from __future__ import annotations

import pytest
from lightkube import Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Node

from gpu_operator.errors import ConfigError
from gpu_operator.kube import owned_by_prefixes, patch_node_labels, plan_map_patch
from gpu_operator.sandbox.apiserver import ServerThread

pytestmark = pytest.mark.timeout(10)
OURS = owned_by_prefixes("nvidia.com/")


@pytest.mark.parametrize(
    ("observed", "desired", "patch"),
    [
        pytest.param(
            {}, {"nvidia.com/gpu.count": "8"}, {"nvidia.com/gpu.count": "8"}, id="new key"
        ),
        pytest.param(
            {"nvidia.com/gpu.count": "8"},
            {"nvidia.com/gpu.count": "8"},
            {},
            id="steady state is an empty patch",
        ),
        pytest.param(
            {"nvidia.com/gpu.count": "8", "nvidia.com/mig.capable": "true"},
            {"nvidia.com/gpu.count": "4"},
            {"nvidia.com/gpu.count": "4", "nvidia.com/mig.capable": None},
            id="owned key no longer desired is removed",
        ),
        pytest.param(
            {"kubernetes.io/hostname": "n1", "team": "a"},
            {},
            {},
            id="foreign keys are never touched",
        ),
    ],
)
def test_plan_map_patch(
    observed: dict[str, str], desired: dict[str, str], patch: dict[str, str | None]
) -> None:
    assert plan_map_patch(observed, desired, OURS) == patch


def test_desiring_a_foreign_key_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="team"):
        plan_map_patch({}, {"team": "a"}, OURS)


def test_patch_node_labels_keeps_other_writers_keys(
    client: Client, server_thread: ServerThread
) -> None:
    client.create(
        Node(
            metadata=ObjectMeta(
                name="gpu-1", labels={"kubernetes.io/hostname": "gpu-1", "nvidia.com/stale": "x"}
            )
        )
    )
    sent = patch_node_labels(client, "gpu-1", {"nvidia.com/gpu.present": "true"}, OURS)
    assert sent == {"nvidia.com/gpu.present": "true", "nvidia.com/stale": None}
    assert client.get(Node, "gpu-1").metadata.labels == {
        "kubernetes.io/hostname": "gpu-1",
        "nvidia.com/gpu.present": "true",
    }
    version = client.get(Node, "gpu-1").metadata.resourceVersion
    requests = server_thread.server.requests
    assert patch_node_labels(client, "gpu-1", {"nvidia.com/gpu.present": "true"}, OURS) == {}
    assert server_thread.server.requests == requests + 1, "steady state: one read, no write"
    assert client.get(Node, "gpu-1").metadata.resourceVersion == version


def test_patch_node_annotations(client: Client) -> None:
    client.create(Node(metadata=ObjectMeta(name="gpu-1")))
    patch_node_labels(client, "gpu-1", {"nvidia.com/note": "hi"}, OURS, field="annotations")
    assert client.get(Node, "gpu-1").metadata.annotations == {"nvidia.com/note": "hi"}
